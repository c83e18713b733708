"""Structure-preserving markdown for `extract` with `format: markdown` (trafilatura engine).

trafilatura's markdown keeps headings, lists, tables and code blocks, but it deletes
`<script>` (where MathJax 2 keeps a formula's TeX), cannot read MathML without a TeX
annotation, loses a code block's language, turns a one-line `<pre><code>` into inline code,
and mangles nested and header-less tables. This module fixes that around it, and leaves
the choice of the main content to trafilatura:

- `prepare_for_markdown(tree)`, on the parsed page before extraction, rewrites in place:
  math of every source (MathJax 2 scripts, MathJax 3 containers, KaTeX, MathML, TeX typed
  in the text as `$$..$$`, or `$..$` where the page configures it)
  into text `\\(tex\\)` / `\\[tex\\]` where the formula was; trafilatura's markdown writer turns
  those into `$tex$` / `$$tex$$` and leaves the TeX unescaped. Code blocks get a marker with
  their language at the start of their text. Tables are normalised (see `_normalize_tables`).
- `finish_markdown(text)`, on trafilatura's markdown: markers become the fence's language,
  lines outside code lose trailing blanks, and a fenced block is set apart by blank lines.

Plain text (`format: text`) never passes through here, so it stays what trafilatura gives.
"""

from __future__ import annotations

import re

from lxml import etree

from stages._extract.mathml import local_name, mathml_to_latex

# Brackets around a code block's language inside its text until the output: printable
# (trafilatura drops unprintable characters) and never seen in real code
MARK_OPEN, MARK_CLOSE = "\u27eclang:", "\u27ed"
# ... and a code block's empty line, which trafilatura would drop
BLANK_LINE = "\u27ecblank\u27ed"
_LEFTOVER_MARK = re.compile(f"{MARK_OPEN}[^{MARK_CLOSE}\n]*{MARK_CLOSE}\n?")
_FENCE_WITH_MARK = re.compile(f"(^|\n)(`{{3,}})\n{MARK_OPEN}([^{MARK_CLOSE}\n]*){MARK_CLOSE}\n")
_FENCE = re.compile(r"^(`{3,})([^`]*)$")

# MathJax 2's renderings of a formula, next to the script that holds its TeX
_MATHJAX2_RENDERINGS = frozenset((
    "MathJax_Preview", "MathJax", "MathJax_Display", "MathJax_SVG", "MathJax_SVG_Display",
    "MathJax_CHTML", "MathJax_MathML", "MathJax_PHTML", "MathJax_MathContainer", "mjx-chtml",
    "MJXc-display", "MJX_Assistive_MathML"))
# A display formula inside these stays in its text; elsewhere (div, section...) it becomes
# a paragraph of its own, which trafilatura keeps like any other paragraph.
_TEXT_PARENTS = frozenset((
    "p", "span", "a", "b", "i", "em", "strong", "font", "small", "big", "sub", "sup", "u",
    "label", "li", "td", "th", "dd", "dt", "caption", "figcaption", "blockquote",
    "h1", "h2", "h3", "h4", "h5", "h6"))


def _has_class(name: str) -> str:
    """XPath test: the element's class list holds `name`."""
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


# XPath (C speed: these run on every page) for the few nodes the passes rewrite
_RAW_TEX_TEXTS = etree.XPath(
    "//text()[contains(., $delimiter)][not(ancestor::script or ancestor::style or ancestor::pre"
    " or ancestor::code or ancestor::textarea or ancestor::math)]")
_KATEX = etree.XPath(f"//*[{_has_class('katex')}]")
_MATHJAX2_RENDERED = etree.XPath(
    "//*[" + " or ".join(_has_class(name) for name in _MATHJAX2_RENDERINGS) + "]")
# Line numbers beside or inside a code block: Pygments' table (td.linenos, div.linenodiv) and
# inline (span.linenos) forms, hexo's td.gutter; they would come out as code or numbers
_LINE_NUMBERS = etree.XPath(
    f"//td[{_has_class('gutter')} or {_has_class('linenos')}] | //*[{_has_class('linenodiv')}]"
    f" | //pre//span[{_has_class('linenos')} or {_has_class('lineno')}]")
# <math> as lxml's HTML parser names it: bare, or with the prefixes XHTML pages use
_MATH_TAGS = ("math", "m:math", "mml:math")
_RAW_DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.DOTALL)
_RAW_INLINE_MATH = re.compile(r"(?<![\\$])\$(?!\$)((?:\\.|[^$\\])+?)\$(?!\$)")
# The page's own MathJax (2 or 3) or KaTeX auto-render configuration makes `$` delimit
# inline math: inlineMath: [..., ['$','$']] / {left: "$", right: "$", display: false}
_DOLLAR_INLINE_CONFIG = re.compile(
    r"""inlineMath["']?\s*:\s*\[(?:\s*\[[^\]]*\]\s*,)*\s*\[\s*["']\$["']"""
    r"""|left["']?\s*:\s*["']\$["']\s*,\s*right["']?\s*:\s*["']\$["']\s*,"""
    r"""\s*display["']?\s*:\s*false""")
_TEX_COMMENT = re.compile(r"(?<!\\)%[^\n]*")
_SPACES = re.compile(r"\s+")

# Class conventions that name a code block's language: Prism/highlight.js/markdown renderers
# (language-x, lang-x), GitHub (highlight-source-x), Sphinx (highlight-x on a wrapper),
# MediaWiki (mw-highlight-lang-x), SyntaxHighlighter (brush: x), pandoc (sourceCode x)
_LANGUAGE_CLASS = re.compile(
    r"^(?:language|lang|highlight-source|mw-highlight-lang|highlight)-([A-Za-z0-9][\w+#.-]*)$")
_BRUSH = re.compile(r"brush:\s*([A-Za-z0-9][\w+#.-]*)")
_NOT_A_LANGUAGE = frozenset(("none", "nohighlight", "plain", "plaintext", "text", "txt",
                             "default", "auto", "source"))

# Wrappers above a <pre> that may name its language, while they hold no other block
_LANGUAGE_WRAPPER_LEVELS = 5

_LAYOUT_BLOCKS = frozenset(("h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "form"))
_TABLE_PARTS = ("thead", "tbody", "tfoot", "tr", "td", "th", "caption")


def prepare_for_markdown(tree, *, tables: bool = True, html: str | None = None) -> None:
    """Rewrite a parsed page (lxml) in place so trafilatura's markdown keeps math, code
    languages and tables; `tables` false leaves tables to trafilatura (it drops them).

    `html`, the page's source, lets a pass that searches the whole tree run only where the
    source mentions what it looks for (a substring test costs microseconds, a scan of the
    tree about half a millisecond, and most pages have no math)."""
    def mentions(word: str) -> bool:
        return html is None or word in html

    _rewrite_math(tree, mentions, html)
    if mentions("<pre") or mentions("<PRE"):
        if mentions("lineno") or mentions("gutter"):
            for numbers in _LINE_NUMBERS(tree):
                _remove(numbers)
        _mark_code_blocks(tree)
    if tables:
        _normalize_tables(tree)


def finish_markdown(text: str) -> str:
    """trafilatura's markdown of a prepared page -> the final markdown."""
    text = _FENCE_WITH_MARK.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}\n", text)
    text = _LEFTOVER_MARK.sub("", text)
    text = re.sub(f"(?:\n{BLANK_LINE})+(?=\n`{{3,}}\n|\n`{{3,}}$)", "", text)  # none at the end
    text = text.replace(BLANK_LINE, "")
    out: list[str] = []
    fence = None  # the opening fence while inside a code block
    display_math = False  # between the $$ lines of a display formula
    for line in text.split("\n"):
        match = _FENCE.match(line)
        if fence is None and not match:
            line = line.rstrip()
            if line == "$$":
                display_math = not display_math
            elif out and out[-1] == "$$" and not display_math:
                line = line.lstrip()  # the rest of a paragraph after its display formula
        if fence is None and match:
            if out and out[-1].strip():
                out.append("")
            fence = match.group(1)
        elif fence is not None:
            if match and match.group(1).startswith(fence) and not match.group(2).strip():
                fence = None
                out.append(line)
                out.append("")  # collapsed below when a blank line follows anyway
                continue
        if fence is None and not line.strip() and out and not out[-1].strip():
            continue  # no double blank lines outside code (only the ones added above)
        out.append(line)
    return "\n".join(out).strip("\n") + ("\n" if text.endswith("\n") else "")


# -- math -------------------------------------------------------------------------------------
def _rewrite_math(tree, mentions, html: str | None) -> None:
    for container in list(tree.iter("mjx-container")):  # MathJax 3: only MathML survives
        math = _first_math(container)
        if math is not None:
            display = container.get("display") == "true" or _is_display(math)
            _put_math(container, _tex_of_mathml(math), display)

    scripts = [script for script in (tree.iter("script") if mentions("math/tex") else ())
               if (script.get("type") or "").lower().replace(" ", "").startswith("math/tex")]
    if scripts:  # MathJax 2: the TeX is in the script; its renderings would double it
        for element in _MATHJAX2_RENDERED(tree):
            _remove(element)
        for script in scripts:
            display = "mode=display" in script.get("type").lower().replace(" ", "")
            _put_math(script, script.text or "", display)

    for katex in _KATEX(tree) if mentions("katex") else ():
        parent = katex.getparent()
        wrapper = parent if parent is not None and "katex-display" in _classes(parent) else None
        math = _first_math(katex)
        tex = _tex_of_mathml(math) if math is not None else ""
        if tex:
            _put_math(wrapper if wrapper is not None else katex, tex, wrapper is not None)

    for math in list(tree.iter(*_MATH_TAGS)):
        if not _attached(math, tree):
            continue
        target = math
        for ancestor in list(math.iterancestors())[:3]:  # Wikipedia's wrapper holds an image too
            if "mwe-math-element" in _classes(ancestor):
                target = ancestor
                break
        _put_math(target, _tex_of_mathml(math), _is_display(math))

    if mentions("$$"):
        _rewrite_raw_tex(tree, "$$", _RAW_DISPLAY_MATH, " \\[{}\\] ")
    if html is not None and ("inlineMath" in html or "renderMathInElement" in html) \
            and _DOLLAR_INLINE_CONFIG.search(html):
        _rewrite_raw_tex(tree, "$", _RAW_INLINE_MATH, "\\({}\\)")


def _tex_of_mathml(math) -> str:
    """A MathML formula's TeX: its TeX annotation, its alttext, else converted."""
    for element in math.iter():
        if local_name(element) == "annotation" and \
                (element.get("encoding") or "").lower() in ("application/x-tex", "tex"):
            if (element.text or "").strip():
                return element.text
    return math.get("alttext") or mathml_to_latex(math)


def _is_display(math) -> bool:
    return math.get("display") == "block" or math.get("mode") == "display"


def _first_math(element):
    return next((child for child in element.iter() if local_name(child) == "math"), None)


def clean_tex(tex: str) -> str:
    """One line of TeX: comments dropped, whitespace collapsed, a `{\\displaystyle ...}`
    wrapper (Wikipedia's alttext) removed."""
    tex = _SPACES.sub(" ", _TEX_COMMENT.sub("", tex)).strip()
    for style in ("{\\displaystyle", "{\\textstyle"):
        if tex.startswith(style) and _closing_brace(tex, 0) == len(tex) - 1:
            tex = tex[len(style):-1].strip()
    return tex


def _closing_brace(tex: str, opening: int) -> int:
    depth = 0
    index = opening
    while index < len(tex):
        char = tex[index]
        if char == "\\":
            index += 2
            continue
        depth += char == "{"
        depth -= char == "}"
        if depth == 0:
            return index
        index += 1
    return -1


def _put_math(element, tex: str, display: bool) -> None:
    """Replace a formula's element by its TeX in the delimiters trafilatura converts."""
    tex = clean_tex(tex)
    if not tex:
        _remove(element)
        return
    if not display:
        _replace_with_text(element, f"\\({tex}\\)")
        return
    parent = element.getparent()
    if parent is None:
        return
    if parent.tag in _TEXT_PARENTS:
        # trafilatura reads \[ as display math only after a blank or at the start of a text
        _replace_with_text(element, f" \\[{tex}\\] ")
        return
    paragraph = etree.Element("p")
    paragraph.text = f"\\[{tex}\\]"
    paragraph.tail = element.tail
    parent.replace(element, paragraph)


def _rewrite_raw_tex(tree, delimiter: str, pattern: re.Pattern, placeholder: str) -> None:
    """TeX typed in the page, which MathJax or KaTeX renders in the browser (`$$tex$$`;
    `$tex$` where the page's configuration says so) -> the placeholder trafilatura turns
    into Markdown math, so it does not escape the TeX as prose."""
    def rewrite(text: str) -> str:
        return pattern.sub(lambda m: placeholder.format(clean_tex(m.group(1))), text)

    for found in _RAW_TEX_TEXTS(tree, delimiter=delimiter):
        owner = found.getparent()  # the element whose text or tail this is
        if found.is_tail:
            owner.tail = rewrite(owner.tail)
        else:
            owner.text = rewrite(owner.text)


# -- code -------------------------------------------------------------------------------------
def _mark_code_blocks(tree) -> None:
    """Every `<pre>` with a `<code>` inside or a language becomes a fenced block: a marker
    with the language (empty if none) opens its text, and its newline makes trafilatura fence
    even a one-line block; `lang` tells trafilatura it is code."""
    for pre in list(tree.iter("pre")):
        code = next(pre.iter("code"), None)
        language = code_language(pre, code)
        if code is None and language is None:
            continue  # preformatted prose: trafilatura decides
        marker = f"{MARK_OPEN}{language or ''}{MARK_CLOSE}\n"
        holder = code if code is not None and code is _only_child(pre) \
            and not (pre.text or "").strip() else pre
        holder.text = (holder.text or "").lstrip("\n")
        _mark_blank_lines(pre, after_newline=True)
        holder.text = marker + holder.text
        if pre.get("lang") is None:
            pre.set("lang", language or "code")
        for figure in pre.iterancestors("figure"):
            figure.tag = "div"  # trafilatura deletes figures (hexo wraps code in one)


def _mark_blank_lines(element, after_newline: bool) -> bool:
    """Put BLANK_LINE on the empty lines of a block's text, in reading order across its
    elements; returns whether the text read so far ends with a newline."""
    def mark(text: str) -> str:
        if after_newline and text.startswith("\n"):
            text = BLANK_LINE + text
        return re.sub("\n(?=\n)", "\n" + BLANK_LINE, text)

    if element.text:
        element.text = mark(element.text)
        after_newline = element.text.endswith("\n")
    for child in element:
        if isinstance(child.tag, str):
            after_newline = _mark_blank_lines(child, after_newline)
        if child.tail:
            child.tail = mark(child.tail)
            after_newline = child.tail.endswith("\n")
    return after_newline


def code_language(pre, code=None) -> str | None:
    """The language a page names for a `<pre>` block, or None: on its `<code>`, on itself,
    or on a wrapper (up to five levels) that holds no other `<pre>`."""
    candidates = [code, pre]
    for level, wrapper in enumerate(pre.iterancestors()):
        if level == _LANGUAGE_WRAPPER_LEVELS or sum(1 for _ in wrapper.iter("pre")) > 1:
            break
        candidates.append(wrapper)
    for element in candidates:
        if element is None:
            continue
        for attribute in ("data-lang", "data-language"):
            found = _language(element.get(attribute) or "")
            if found:
                return found
        classes = _classes(element)
        brush = _BRUSH.search(element.get("class") or "")
        if brush and _language(brush.group(1)):
            return _language(brush.group(1))
        for index, name in enumerate(classes):
            match = _LANGUAGE_CLASS.match(name)
            if match and _language(match.group(1)):
                return _language(match.group(1))
            if name == "sourceCode" and index + 1 < len(classes):
                return _language(classes[index + 1])
        if element.tag == "figure" and len(classes) == 2 and "highlight" in classes:
            found = _language(classes[1 - classes.index("highlight")])  # hexo
            if found:
                return found
    return None


def _language(name: str) -> str | None:
    name = name.strip().lower()
    if not name or name in _NOT_A_LANGUAGE or not re.fullmatch(r"[a-z0-9][\w+#.-]{0,29}", name):
        return None
    return name


def _only_child(element):
    children = [child for child in element if isinstance(child.tag, str)]
    return children[0] if len(children) == 1 else None


# -- tables -----------------------------------------------------------------------------------
def _normalize_tables(tree) -> None:
    """Tables as GFM tables:
    - a layout table (a cell holds a heading, a `<pre>`, a quote, a form or two paragraphs)
      is unwrapped: its cells become blocks in reading order;
    - a data table inside another data table's cell is flattened into that cell as text
      (cells joined by ", ", rows by "; ");
    - the first row is the header row (GFM needs one): its cells become `<th>`, and a `<th>`
      in a later row (a row header) a `<td>`, so no row but the first draws a separator.
    Tables marked role=presentation/none are left to trafilatura (it unwraps them)."""
    for table in reversed(list(tree.iter("table"))):  # inner tables first
        if table.get("role") in ("presentation", "none"):
            continue
        if _is_layout(table):
            for element in [table, *_own_parts(table)]:
                element.tag = "div"
    for table in reversed(list(tree.iter("table"))):
        if table.get("role") in ("presentation", "none"):
            continue
        if any(ancestor.tag in ("td", "th") for ancestor in table.iterancestors()):
            _flatten_into_cell(table)
        else:
            _caption_before(table)
            _set_header_row(table)


def _own_parts(table) -> list:
    """The table's rows, cells and sections, not those of tables nested in its cells."""
    parts = []
    for element in table.iter(*_TABLE_PARTS):
        if element is not table and _owning_table(element) is table:
            parts.append(element)
    return parts


def _owning_table(element):
    return next(element.iterancestors("table"), None)


def _is_layout(table) -> bool:
    for cell in (part for part in _own_parts(table) if part.tag in ("td", "th")):
        paragraphs = 0
        for element in cell.iter():
            if element is cell or not isinstance(element.tag, str):
                continue
            if element.tag == "table" or _owning_table(element) is not table:
                continue
            if element.tag in _LAYOUT_BLOCKS:
                return True
            paragraphs += element.tag == "p"
        if paragraphs >= 2:
            return True
    return False


def _flatten_into_cell(table) -> None:
    """The table's parts become inline spans with separators, so its text joins the cell
    and its links stay links (trafilatura judges boilerplate by their density)."""
    rows = []
    for row in (part for part in _own_parts(table) if part.tag == "tr"):
        cells = [cell for cell in row if cell.tag in ("td", "th")]
        for cell in cells:
            if not "".join(cell.itertext()).strip():
                _remove(cell)
        cells = [cell for cell in cells if cell.getparent() is not None]
        for cell in cells[:-1]:
            cell.tail = ", "
        if cells:
            cells[-1].tail = None
            rows.append(row)
        else:
            _remove(row)
    for row in rows[:-1]:
        row.tail = "; "
    if rows:
        rows[-1].tail = None
    for part in [table, *_own_parts(table)]:
        if part.tag == "caption":
            part.tail = ": "
        elif part.tag in ("thead", "tbody", "tfoot"):
            part.tail = None  # the rows carry the separators
        part.tag = "span"
    table.text = " "
    table.tail = " " + (table.tail or "")


def _caption_before(table) -> None:
    """A caption becomes a paragraph before its table (trafilatura makes it a row)."""
    for caption in [part for part in _own_parts(table) if part.tag == "caption"]:
        text = _SPACES.sub(" ", "".join(caption.itertext())).strip()
        _remove(caption)
        if text:
            paragraph = etree.Element("p")
            paragraph.text = text
            table.addprevious(paragraph)


def _set_header_row(table) -> None:
    rows = [part for part in _own_parts(table) if part.tag == "tr"]
    for index, row in enumerate(rows):
        for cell in row:
            if cell.tag in ("td", "th"):
                cell.tag = "th" if index == 0 else "td"


# -- tree helpers -----------------------------------------------------------------------------
def _classes(element) -> list[str]:
    return (element.get("class") or "").split()


def _attached(element, tree) -> bool:
    root = tree.getroot() if hasattr(tree, "getroot") else tree
    for ancestor in element.iterancestors():
        if ancestor is root:
            return True
    return element is root


def _replace_with_text(element, text: str) -> None:
    """Put `text` where `element` was (before its tail) and remove the element."""
    parent = element.getparent()
    if parent is None:
        return
    text += element.tail or ""
    previous = element.getprevious()
    if previous is not None:
        previous.tail = (previous.tail or "") + text
    else:
        parent.text = (parent.text or "") + text
    parent.remove(element)


def _remove(element) -> None:
    _replace_with_text(element, "")
