"""Presentation MathML -> LaTeX, for `extract` with `format: markdown`.

Pages that ship MathML without its TeX source (MathJax 3's assistive MathML, hand-written or
generated `<math>` without `alttext`) still carry the formula's structure; this turns it into
the LaTeX a language model reads in papers. It covers the presentation elements real pages use
(tokens, rows, fractions, scripts, roots, over/under scripts, tables, fences, enclosures) and
maps the common Unicode symbols to their commands; an unknown element contributes its
children, so a formula degrades to its symbols rather than disappearing.

Elements arrive from lxml's HTML parser (tags lowercase, a namespace prefix such as `m:` kept
in the tag name), so tags are compared by their local name.
"""

from __future__ import annotations

import re

# Identifiers set upright in LaTeX by a command of their own
FUNCTIONS = frozenset(
    "sin cos tan cot sec csc arcsin arccos arctan sinh cosh tanh coth log ln lg exp lim "
    "liminf limsup max min sup inf det gcd deg dim ker arg hom Pr".split())
# Operators whose limits go below/above (munder/mover) as sub/superscripts
LARGE_OPERATORS = frozenset(r"\sum \prod \coprod \int \iint \iiint \oint \bigcup \bigcap "
                            r"\bigoplus \bigotimes \lim \max \min \sup \inf \liminf \limsup".split())
# Invisible operators (function application, invisible times/separator/plus): no glyph
INVISIBLE = frozenset("\u2061\u2062\u2063\u2064")

_GREEK = dict(zip(
    "αβγδεζηθικλμνξπρστυφχψωΓΔΘΛΞΠΣΥΦΨΩϵϑϕϖϱςϝ",
    r"\alpha \beta \gamma \delta \varepsilon \zeta \eta \theta \iota \kappa \lambda \mu \nu "
    r"\xi \pi \rho \sigma \tau \upsilon \varphi \chi \psi \omega \Gamma \Delta \Theta \Lambda "
    r"\Xi \Pi \Sigma \Upsilon \Phi \Psi \Omega \epsilon \vartheta \phi \varpi \varrho "
    r"\varsigma \digamma".split()))
_SYMBOLS = {
    "±": r"\pm", "∓": r"\mp", "×": r"\times", "÷": r"\div", "·": r"\cdot", "⋅": r"\cdot",
    "∗": "*", "∘": r"\circ", "•": r"\bullet", "≤": r"\leq", "≥": r"\geq", "≠": r"\neq",
    "≈": r"\approx", "≡": r"\equiv", "∼": r"\sim", "≃": r"\simeq", "≅": r"\cong",
    "∝": r"\propto", "≪": r"\ll", "≫": r"\gg", "≺": r"\prec", "≻": r"\succ", "∈": r"\in",
    "∉": r"\notin", "∋": r"\ni", "⊂": r"\subset", "⊃": r"\supset", "⊆": r"\subseteq",
    "⊇": r"\supseteq", "∪": r"\cup", "∩": r"\cap", "∅": r"\emptyset", "∀": r"\forall",
    "∃": r"\exists", "¬": r"\neg", "∧": r"\wedge", "∨": r"\vee", "⇒": r"\Rightarrow",
    "⇐": r"\Leftarrow", "⇔": r"\Leftrightarrow", "→": r"\to", "←": r"\leftarrow",
    "↔": r"\leftrightarrow", "↦": r"\mapsto", "⟶": r"\longrightarrow", "∞": r"\infty",
    "∂": r"\partial", "∇": r"\nabla", "∑": r"\sum", "∏": r"\prod", "∐": r"\coprod",
    "∫": r"\int", "∬": r"\iint", "∭": r"\iiint", "∮": r"\oint", "⋃": r"\bigcup",
    "⋂": r"\bigcap", "⨁": r"\bigoplus", "⨂": r"\bigotimes", "√": r"\surd", "…": r"\ldots",
    "⋯": r"\cdots", "⋮": r"\vdots", "⋱": r"\ddots", "′": "'", "″": "''", "‴": "'''",
    "ℝ": r"\mathbb{R}", "ℕ": r"\mathbb{N}", "ℤ": r"\mathbb{Z}", "ℚ": r"\mathbb{Q}",
    "ℂ": r"\mathbb{C}", "⊕": r"\oplus", "⊗": r"\otimes", "⊥": r"\perp", "∥": r"\parallel",
    "∣": r"\mid", "∠": r"\angle", "°": r"^{\circ}", "ℏ": r"\hbar", "ℓ": r"\ell",
    "⟨": r"\langle", "⟩": r"\rangle", "⌊": r"\lfloor", "⌋": r"\rfloor", "⌈": r"\lceil",
    "⌉": r"\rceil", "∖": r"\setminus", "†": r"\dagger", "−": "-",
    "≔": ":=", "ℵ": r"\aleph", "∴": r"\therefore", "⊢": r"\vdash", "⊨": r"\models",
    "⟹": r"\implies", "⟺": r"\iff", "↑": r"\uparrow", "↓": r"\downarrow",
    "⇌": r"\rightleftharpoons", "⋆": r"\star", "△": r"\triangle", "□": r"\square",
    "‖": r"\|", "{": r"\{", "}": r"\}", "#": r"\#", "$": r"\$", "%": r"\%", "&": r"\&",
    "_": r"\_", "\\": r"\backslash", "^": r"\hat{}", "~": r"\sim",
    **_GREEK,
}
# mover/munder with one of these as the script: an accent on the base
_ACCENTS_OVER = {"^": r"\hat", "ˆ": r"\hat", "̂": r"\hat", "¯": r"\overline", "‾": r"\overline",
                 "̅": r"\overline", "→": r"\vec", "⃗": r"\vec", "˙": r"\dot", "̇": r"\dot",
                 "¨": r"\ddot", "~": r"\tilde", "˜": r"\tilde", "̃": r"\tilde",
                 "⏞": r"\overbrace", "ˇ": r"\check", "˘": r"\breve"}
_ACCENTS_UNDER = {"_": r"\underline", "̲": r"\underline", "¯": r"\underline",
                  "‾": r"\underline", "⏟": r"\underbrace"}
_VARIANTS = {"normal": r"\mathrm", "bold": r"\mathbf", "double-struck": r"\mathbb",
             "script": r"\mathcal", "fraktur": r"\mathfrak", "sans-serif": r"\mathsf",
             "monospace": r"\mathtt", "bold-italic": r"\boldsymbol"}
_CONTROL_WORD_END = re.compile(r"\\[A-Za-z]+$")
_BARE_SCRIPT_END = re.compile(r"[_^][A-Za-z0-9]$")
_SPACES = re.compile(r"\s+")


def mathml_to_latex(math) -> str:
    """LaTeX for a `<math>` element (or any MathML element), whitespace-normalised."""
    return _SPACES.sub(" ", _convert(math)).strip()


def local_name(element) -> str:
    """'math' for `math`, `m:math` and `{http://www.w3.org/1998/Math/MathML}math`."""
    tag = element.tag if isinstance(element.tag, str) else ""
    return tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1].lower()


def _children(element) -> list:
    return [child for child in element if isinstance(child.tag, str)]


def _join(parts) -> str:
    """Concatenate LaTeX pieces, keeping a control word apart from a following letter."""
    out = ""
    for part in parts:
        if not part:
            continue
        if _CONTROL_WORD_END.search(out) and part[0].isalpha() \
                or _BARE_SCRIPT_END.search(out) and part[0].isalnum():
            out += " "  # `\alpha x`, not `\alphax`; `^n x`, not `^nx`
        out += part
    return out


def _group(latex: str) -> str:
    """A script argument or base: braces unless it is one character or one command."""
    if len(latex) == 1 or re.fullmatch(r"\\[A-Za-z]+", latex):
        return latex
    return "{" + latex + "}"


def _text(element) -> str:
    return _SPACES.sub(" ", "".join(element.itertext())).strip()


def _symbols(text: str) -> str:
    return _join(_SYMBOLS.get(char, char) for char in text if char not in INVISIBLE)


def _identifier(element) -> str:
    text = _text(element)
    if text in FUNCTIONS:
        return "\\" + text
    variant = _VARIANTS.get(element.get("mathvariant", ""))
    if len(text) > 1 and not variant and text.isalpha():
        return r"\mathrm{" + text + "}"
    latex = _symbols(text)
    return f"{variant}{{{latex}}}" if variant and latex else latex


def _operator(element) -> str:
    text = _text(element)
    if text in FUNCTIONS:
        return "\\" + text
    if len(text) > 1 and text.isalpha():
        return r"\operatorname{" + text + "}"
    return _symbols(text)


def _plain_text(element) -> str:
    text = _text(element)
    if not text:
        return " " if len(element.text or "") else ""
    escaped = "".join(_SYMBOLS.get(char, char) if char in "{}#$%&_\\^~" else char
                      for char in text)
    return r"\text{" + escaped + "}"


def _over(base, script) -> str:
    return _set_on(base, script, "^", _ACCENTS_OVER, r"\overset")


def _under(base, script) -> str:
    return _set_on(base, script, "_", _ACCENTS_UNDER, r"\underset")


def _set_on(base, script, limit: str, accents: dict[str, str], command: str) -> str:
    """<mover>/<munder>: a large operator's limit, an accent, or the script set above/below."""
    base_latex, script_text = _convert(base), _text(script)
    if base_latex in LARGE_OPERATORS:
        return f"{base_latex}{limit}{_group(_convert(script))}"
    if script_text in accents:
        return f"{accents[script_text]}{{{base_latex}}}"
    return f"{command}{{{_convert(script)}}}{{{base_latex}}}"


def _under_over(base, under, over) -> str:
    base_latex = _convert(base)
    if base_latex in LARGE_OPERATORS:
        return f"{base_latex}_{_group(_convert(under))}^{_group(_convert(over))}"
    return rf"\overset{{{_convert(over)}}}{{\underset{{{_convert(under)}}}{{{base_latex}}}}}"


def _table(element) -> str:
    rows = []
    for row in _children(element):
        if local_name(row) not in ("mtr", "mlabeledtr"):
            continue
        cells = _children(row)
        if local_name(row) == "mlabeledtr":
            cells = cells[1:]  # the first cell is the equation's label
        rows.append(" & ".join(_convert(cell) for cell in cells))
    return r"\begin{matrix} " + r" \\ ".join(rows) + r" \end{matrix}"


def _fenced(element) -> str:
    opening, closing = element.get("open", "("), element.get("close", ")")
    separators = (element.get("separators", ",") or "").replace(" ", "")
    parts = []
    for index, child in enumerate(_children(element)):
        if index and separators:
            parts.append(_symbols(separators[min(index - 1, len(separators) - 1)]))
        parts.append(_convert(child))
    return _join([_symbols(opening), *parts, _symbols(closing)])


def _enclosed(element) -> str:
    inner = _join(_convert(child) for child in _children(element))
    notation = element.get("notation", "longdiv")
    if "radical" in notation:
        return r"\sqrt{" + inner + "}"
    if "box" in notation or "roundedbox" in notation:
        return r"\boxed{" + inner + "}"
    return inner


def _scripted(element, name: str) -> str:
    parts = _children(element)
    if len(parts) < 2:
        return _join(_convert(child) for child in parts)
    base = _group(_convert(parts[0]))
    if name == "msub":
        return f"{base}_{_group(_convert(parts[1]))}"
    if name == "msup":
        return f"{base}^{_group(_convert(parts[1]))}"
    if len(parts) < 3:
        return f"{base}_{_group(_convert(parts[1]))}"
    return f"{base}_{_group(_convert(parts[1]))}^{_group(_convert(parts[2]))}"


def _convert(element) -> str:
    name = local_name(element)
    children = _children(element)
    if name == "mi":
        return _identifier(element)
    if name == "mn":
        return _symbols(_text(element))
    if name == "mo":
        return _operator(element)
    if name in ("mtext", "ms"):
        return _plain_text(element)
    if name == "mspace":
        return " "
    if name in ("annotation", "annotation-xml", "mphantom", "none", "mprescripts"):
        return ""
    if name == "semantics":
        return _convert(children[0]) if children else ""
    if name == "maction":
        return _convert(children[0]) if children else ""
    if name in ("msub", "msup", "msubsup"):
        return _scripted(element, name)
    if name == "mfrac" and len(children) == 2:
        numerator, denominator = (_convert(child) for child in children)
        if element.get("linethickness") in ("0", "0px", "0em"):
            return rf"\binom{{{numerator}}}{{{denominator}}}"
        return rf"\frac{{{numerator}}}{{{denominator}}}"
    if name == "msqrt":
        return r"\sqrt{" + _join(_convert(child) for child in children) + "}"
    if name == "mroot" and len(children) == 2:
        return rf"\sqrt[{_convert(children[1])}]{{{_convert(children[0])}}}"
    if name == "mover" and len(children) == 2:
        return _over(children[0], children[1])
    if name == "munder" and len(children) == 2:
        return _under(children[0], children[1])
    if name == "munderover" and len(children) == 3:
        return _under_over(*children)
    if name == "mtable":
        return _table(element)
    if name == "mfenced":
        return _fenced(element)
    if name == "menclose":
        return _enclosed(element)
    # math, mrow, mstyle, mpadded, merror, mtd, unknown elements: their children in order
    return _join(_convert(child) for child in children)
