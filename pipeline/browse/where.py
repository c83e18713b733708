"""`--where`: a small filter language over a job output's columns, compiled to SQL.

    lang = 'en' and n_words > 100
    reason like 'gopher%' or not (lang_score >= 0.9 or lang in ('de', 'fr'))
    duplicate_of is not null and quality_lorem_ipsum

Grammar (keywords in any case):

    expr      := term ('or' term)*
    term      := factor ('and' factor)*
    factor    := 'not' factor | '(' expr ')' | predicate
    predicate := column op value | value op column
               | column 'is' ['not'] 'null'
               | column ['not'] 'in' '(' value (',' value)* ')'
               | column ['not'] ('like' | 'ilike') string
               | column ['not'] 'between' value 'and' value
               | column                                      (a boolean column)
    op        := '=' | '==' | '!=' | '<>' | '<' | '<=' | '>' | '>='
    value     := number | '-' number | 'string' | true | false

Columns are names the output has (bare, or "quoted"). Nothing the user typed is pasted into
SQL: the parser rebuilds the condition from its tree, with quoted column names it looked up
and every value as a bound parameter. So `;`, function calls (`read_csv(...)`), subqueries
and unknown names are errors with their position, and the query can only read the columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pipeline.browse.output import BrowseError

MAX_LENGTH = 2000
MAX_DEPTH = 32  # nested parentheses and `not`s
KEYWORDS = {"and", "or", "not", "in", "is", "null", "like", "ilike", "between", "true", "false"}
COMPARISONS = {"=": "=", "==": "=", "!=": "<>", "<>": "<>", "<": "<", "<=": "<=", ">": ">",
               ">=": ">="}
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:[^']|'')*')
  | (?P<quoted>"(?:[^"]|"")+")
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<symbol><=|>=|<>|!=|==|[=<>(),-])
""", re.VERBOSE)
_NUMERIC = re.compile(r"^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|"
                      r"UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL.*)$")


@dataclass(frozen=True)
class Token:
    kind: str  # number, string, column, keyword, symbol, end
    text: str
    at: int  # position in the expression, for messages
    value: Any = None


@dataclass
class Condition:
    """SQL with `?` placeholders, and the values to bind to them in order."""

    sql: str
    params: list = field(default_factory=list)


def compile_where(text: str, columns: dict[str, str]) -> Condition:
    """The condition `text` states over `columns` (name -> DuckDB type)."""
    if len(text) > MAX_LENGTH:
        raise BrowseError(f"--where is longer than {MAX_LENGTH} characters")
    parser = _Parser(_tokens(text, columns), columns)
    condition = parser.expr(0)
    if parser.peek().kind != "end":
        raise parser.error("expected `and`, `or` or the end")
    return condition


def _tokens(text: str, columns: dict[str, str]) -> list[Token]:
    out, at = [], 0
    while at < len(text):
        if text.startswith(("--", "/*"), at):
            raise BrowseError(f"--where: comments are not allowed (position {at + 1})")
        found = _TOKEN.match(text, at)
        if found is None:
            raise BrowseError(f"--where: unexpected {text[at]!r} at position {at + 1}; "
                              "only comparisons, and/or/not, in, like, between and is null "
                              "over column names are allowed")
        kind, piece = found.lastgroup, found.group()
        if kind == "number":
            out.append(Token("number", piece, at, float(piece) if re.search(r"[.eE]", piece)
                             else int(piece)))
        elif kind == "string":
            out.append(Token("string", piece, at, piece[1:-1].replace("''", "'")))
        elif kind == "quoted":
            out.append(_column(piece[1:-1].replace('""', '"'), at, columns, text))
        elif kind == "word":
            lower = piece.lower()
            out.append(Token("keyword", lower, at) if lower in KEYWORDS
                       else _column(piece, at, columns, text))
        elif kind == "symbol":
            out.append(Token("symbol", piece, at))
        at = found.end()
    return out + [Token("end", "", len(text))]


def _column(name: str, at: int, columns: dict[str, str], text: str) -> Token:
    rest = text[at + len(name):].lstrip()
    if rest.startswith("("):
        raise BrowseError(f"--where: function calls are not allowed ({name}(...) at position "
                          f"{at + 1})")
    if name.lower() in ("select", "from", "with", "union"):
        raise BrowseError(f"--where: subqueries and statements are not allowed ({name!r} at "
                          f"position {at + 1})")
    if name not in columns:
        raise BrowseError(f"--where: unknown column {name!r} at position {at + 1}; columns: "
                          f"{', '.join(sorted(columns))}")
    return Token("column", name, at, name)


def _kind(column_type: str) -> str:
    if _NUMERIC.match(column_type):
        return "number"
    if column_type == "VARCHAR":
        return "string"
    if column_type == "BOOLEAN":
        return "bool"
    return "other"  # lists, structs, dates: `is null` only


class _Parser:
    def __init__(self, tokens: list[Token], columns: dict[str, str]):
        self.tokens, self.columns, self.at = tokens, columns, 0

    def peek(self) -> Token:
        return self.tokens[min(self.at, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.peek()
        self.at += 1
        return token

    def accept(self, kind: str, text: str) -> bool:
        if self.peek().kind == kind and self.peek().text == text:
            self.at += 1
            return True
        return False

    def expect(self, kind: str, text: str, what: str) -> None:
        if not self.accept(kind, text):
            raise self.error(f"expected {what}")

    def error(self, message: str) -> BrowseError:
        token = self.peek()
        found = "the end" if token.kind == "end" else repr(token.text)
        return BrowseError(f"--where: {message}, found {found} at position {token.at + 1}")

    # expr := term ('or' term)*; term := factor ('and' factor)*
    def expr(self, depth: int) -> Condition:
        return self._joined("or", self.term, depth)

    def term(self, depth: int) -> Condition:
        return self._joined("and", self.factor, depth)

    def _joined(self, keyword: str, part, depth: int) -> Condition:
        parts = [part(depth)]
        while self.accept("keyword", keyword):
            parts.append(part(depth))
        if len(parts) == 1:
            return parts[0]
        return Condition("(" + f" {keyword.upper()} ".join(p.sql for p in parts) + ")",
                         [v for p in parts for v in p.params])

    def factor(self, depth: int) -> Condition:
        if depth > MAX_DEPTH:
            raise self.error(f"nested more than {MAX_DEPTH} deep")
        if self.accept("keyword", "not"):
            inner = self.factor(depth + 1)
            return Condition(f"(NOT {inner.sql})", inner.params)
        if self.accept("symbol", "("):
            inner = self.expr(depth + 1)
            self.expect("symbol", ")", "`)`")
            return inner
        return self.predicate()

    def predicate(self) -> Condition:
        left = self.operand()
        if self.peek().kind == "symbol" and self.peek().text in COMPARISONS:
            op = COMPARISONS[self.take().text]
            right = self.operand()
            return self._comparison(left, op, right)
        if left.kind != "column":
            raise self.error("expected a comparison after a value")
        column, kind = quote_column(left.value), _kind(self.columns[left.value])
        if self.accept("keyword", "is"):
            negated = self.accept("keyword", "not")
            self.expect("keyword", "null", "`null` after `is`")
            return Condition(f"({column} IS {'NOT ' if negated else ''}NULL)")
        negated = self.accept("keyword", "not")
        if self.accept("keyword", "in"):
            self.expect("symbol", "(", "`(` after `in`")
            values = [self.value_for(left)]
            while self.accept("symbol", ","):
                values.append(self.value_for(left))
            self.expect("symbol", ")", "`,` or `)`")
            marks = ", ".join("?" * len(values))
            return Condition(f"({column} {'NOT ' if negated else ''}IN ({marks}))", values)
        for keyword in ("like", "ilike"):
            if self.accept("keyword", keyword):
                if kind != "string":
                    raise self.error(f"`{keyword}` needs a text column, {left.value} is "
                                     f"{self.columns[left.value]}")
                pattern = self.take()
                if pattern.kind != "string":
                    self.at -= 1
                    raise self.error(f"expected a 'quoted pattern' after `{keyword}`")
                return Condition(f"({column} {'NOT ' if negated else ''}{keyword.upper()} ?)",
                                 [pattern.value])
        if self.accept("keyword", "between"):
            low = self.value_for(left)
            self.expect("keyword", "and", "`and` in `between ... and ...`")
            high = self.value_for(left)
            return Condition(f"({column} {'NOT ' if negated else ''}BETWEEN ? AND ?)",
                             [low, high])
        if negated:
            raise self.error("expected `in`, `like`, `ilike` or `between` after `not`")
        if kind != "bool":
            raise self.error(f"expected a comparison after column {left.value} (only a "
                             "boolean column stands alone)")
        return Condition(f"({column})")

    def operand(self) -> Token:
        token = self.peek()
        if token.kind == "column":
            return self.take()
        return Token("value", token.text, token.at, self.value())

    def value(self) -> Any:
        token = self.take()
        if token.kind in ("number", "string"):
            return token.value
        if token.kind == "symbol" and token.text == "-" and self.peek().kind == "number":
            return -self.take().value
        if token.kind == "keyword" and token.text in ("true", "false"):
            return token.text == "true"
        self.at -= 1
        if token.kind == "keyword" and token.text == "null":
            raise self.error("compare with null through `is null` / `is not null`")
        raise self.error("expected a column, a number, a 'string', true or false")

    def value_for(self, column: Token) -> Any:
        start = self.peek()
        value = self.value()
        self._check_type(column.value, value, start)
        return value

    def _comparison(self, left: Token, op: str, right: Token) -> Condition:
        if left.kind != "column" and right.kind != "column":
            raise BrowseError(f"--where: a comparison needs a column (position {left.at + 1})")
        sides, params = [], []
        for token, other in ((left, right), (right, left)):
            if token.kind == "column":
                sides.append(quote_column(token.value))
            else:
                self._check_type(other.value, token.value, token)
                sides.append("?")
                params.append(token.value)
        if left.kind == right.kind == "column" and \
                _kind(self.columns[left.value]) != _kind(self.columns[right.value]):
            raise BrowseError(f"--where: cannot compare {left.value} "
                              f"({self.columns[left.value]}) with {right.value} "
                              f"({self.columns[right.value]})")
        return Condition(f"({sides[0]} {op} {sides[1]})", params)

    def _check_type(self, column: str, value: Any, token: Token) -> None:
        kind = _kind(self.columns[column])
        given = "bool" if isinstance(value, bool) else \
            "number" if isinstance(value, (int, float)) else "string"
        if kind == "other":
            raise BrowseError(f"--where: column {column} is {self.columns[column]}; only "
                              "`is null` / `is not null` apply to it")
        if given != kind:
            raise BrowseError(f"--where: column {column} is {self.columns[column]}, compared "
                              f"with {token.text} at position {token.at + 1}")


def quote_column(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'
