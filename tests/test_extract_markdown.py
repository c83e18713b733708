"""`extract` with `format: markdown`: math from every source as LaTeX, code blocks fenced with
their language, GFM tables (nested, layout, header-less), lists and headings, on pages shaped
like the real ones (the markup MathJax 2/3, KaTeX, Wikipedia, Prism and GitHub write), through
the stage and through the runner; and `format: text` untouched by any of it."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from lxml import etree

from pipeline.runner import run_job
from pipeline.spec import load_spec
from stages._extract.markdown import (clean_tex, code_language, finish_markdown,
                                      prepare_for_markdown)
from stages._extract.mathml import mathml_to_latex
from stages.extract import Extract, ExtractConfig
from tests.conftest import assert_accounting, make_text, write_spec
from tests.warc_files import response, write_warc

INTRO, OUTRO = make_text(1, 60), make_text(2, 60)


def page(body: str, mathjax_config: str = "tex2jax: {}") -> str:
    """A blog post around `body`: MathJax loaded in the head, navigation, footer."""
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>Notes on series</title>
<script type="text/x-mathjax-config">MathJax.Hub.Config({{{mathjax_config}}});</script>
<script src="https://cdn.example.org/mathjax/2.7.9/MathJax.js?config=TeX-AMS_HTML"></script>
</head><body><header><nav><a href="/">Home</a> <a href="/blog">Blog</a>
<a href="/about">About</a></nav></header>
<main><article><h1>Notes on series</h1><p>{INTRO}</p>
{body}
<p>{OUTRO}</p></article></main>
<footer><p>Copyright 2024 Example. Contact us.</p></footer></body></html>"""


def extract(html: str, **config) -> str:
    """The text the stage writes for one page (markdown unless told)."""
    config.setdefault("format", "markdown")
    stage = Extract(ExtractConfig(**config))
    stage.setup()
    out = stage.process(pa.table({"id": ["1"], "html": [html],
                                  "url": ["https://example.org/notes"]}))
    assert out.reasons is None or out.reasons.to_pylist() == [None]
    text = out.table.column("text")[0].as_py()
    assert INTRO in text and OUTRO in text and "Contact us" not in text  # main content only
    return text


MATHJAX2 = r"""<p>The famous relation <span class="MathJax_Preview" style="color: inherit;"></span><span class="MathJax" id="MathJax-Element-1-Frame" tabindex="0" role="presentation"><nobr><span class="math"><span class="mi">E</span><span class="mo">=</span><span class="mi">m</span><span class="msubsup"><span class="mi">c</span><span class="mn">2</span></span></span></nobr></span><script type="math/tex" id="MathJax-Element-1">E = mc^2</script> links mass and energy.</p>
<p>Summing the geometric series gives</p>
<span class="MathJax_Preview"></span><div class="MathJax_Display" style="text-align: center;"><span class="MathJax" id="MathJax-Element-2-Frame"><nobr><span class="math">rendered glyphs</span></nobr></span></div><script type="math/tex; mode=display" id="MathJax-Element-2">
  \sum_{k=0}^{\infty} x^k   % the geometric series
  = \frac{1}{1-x}
</script>
<p>for every real number of absolute value below one.</p>"""


def test_mathjax2_scripts_become_inline_and_display_latex():
    text = extract(page(MATHJAX2))
    assert "The famous relation $E = mc^2$ links mass and energy." in text
    assert ("Summing the geometric series gives\n\n"
            "$$\n\\sum_{k=0}^{\\infty} x^k = \\frac{1}{1-x}\n$$\n\n"
            "for every real number of absolute value below one.") in text
    assert "rendered glyphs" not in text and "Em" not in text  # MathJax's renderings dropped


KATEX = r"""<p>The sequence <span class="katex"><span class="katex-mathml"><math xmlns="http://www.w3.org/1998/Math/MathML"><semantics><mrow><msub><mi>a</mi><mi>n</mi></msub><mo>=</mo><mfrac><mn>1</mn><mi>n</mi></mfrac></mrow><annotation encoding="application/x-tex">a_n = \frac{1}{n}</annotation></semantics></math></span><span class="katex-html" aria-hidden="true"><span class="base"><span class="mord"><span class="mord mathnormal">a</span><span class="msupsub">n</span></span><span class="mrel">=</span></span></span></span> tends to zero.</p>
<p><span class="katex-display"><span class="katex"><span class="katex-mathml"><math xmlns="http://www.w3.org/1998/Math/MathML" display="block"><semantics><mrow><munderover><mo>∑</mo><mrow><mi>k</mi><mo>=</mo><mn>1</mn></mrow><mi>n</mi></munderover><mi>k</mi></mrow><annotation encoding="application/x-tex">\sum_{k=1}^{n} k = \frac{n(n+1)}{2}</annotation></semantics></math></span><span class="katex-html" aria-hidden="true"><span class="base">∑k=1nk</span></span></span></span></p>"""


def test_katex_annotations_become_inline_and_display_latex():
    text = extract(page(KATEX))
    assert "The sequence $a_n = \\frac{1}{n}$ tends to zero." in text
    assert "$$\n\\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}\n$$" in text
    assert "∑k=1nk" not in text and "an=" not in text  # KaTeX's HTML rendering dropped


MATHML = r"""<p>Wikipedia writes <span class="mwe-math-element"><span class="mwe-math-mathml-inline mwe-math-mathml-a11y" style="display: none;"><math xmlns="http://www.w3.org/1998/Math/MathML" alttext="{\displaystyle e^{i\pi }+1=0}"><semantics><mrow><msup><mi>e</mi><mrow><mi>i</mi><mi>π</mi></mrow></msup><mo>+</mo><mn>1</mn><mo>=</mo><mn>0</mn></mrow></semantics></math></span><img src="/media/math/render/svg/1a2b" class="mwe-math-fallback-image-inline" alt="{\displaystyle e^{i\pi }+1=0}"></span> for Euler's identity.</p>
<p>The roots of a quadratic are</p>
<math xmlns="http://www.w3.org/1998/Math/MathML" display="block"><mrow><mi>x</mi><mo>=</mo><mfrac><mrow><mo>−</mo><mi>b</mi><mo>±</mo><msqrt><msup><mi>b</mi><mn>2</mn></msup><mo>−</mo><mn>4</mn><mo>&InvisibleTimes;</mo><mi>a</mi><mo>&#x2062;</mo><mi>c</mi></msqrt></mrow><mrow><mn>2</mn><mi>a</mi></mrow></mfrac></mrow></math>
<p>where each coefficient <math><msub><mi>a</mi><mi>i</mi></msub></math> is real and <math><msubsup><mi>x</mi><mn>1</mn><mn>2</mn></msubsup></math> is the first root squared.</p>"""


def test_mathml_with_alttext_and_without_becomes_latex():
    text = extract(page(MATHML))
    # alttext, without Wikipedia's {\displaystyle ...} wrapper; its fallback image is gone
    assert "Wikipedia writes $e^{i\\pi }+1=0$ for Euler's identity." in text
    # no alttext: converted (fraction, square root, power, invisible times dropped)
    assert "The roots of a quadratic are\n\n$$\nx=\\frac{-b\\pm\\sqrt{b^2-4ac}}{2a}\n$$" in text
    assert "each coefficient $a_i$ is real and $x_1^2$ is the first root squared." in text


MATHJAX3 = r"""<p>The norm <mjx-container class="MathJax CtxtMenu_Attached_0" jax="CHTML" style="font-size: 119.5%; position: relative;"><mjx-math class="MJX-TEX" aria-hidden="true"><mjx-msqrt><mjx-sqrt><mjx-surd><mjx-mo class="mjx-n"><mjx-c class="mjx-c221A"></mjx-c></mjx-mo></mjx-surd></mjx-sqrt></mjx-msqrt></mjx-math><mjx-assistive-mml unselectable="on" display="inline"><math xmlns="http://www.w3.org/1998/Math/MathML"><msqrt><msup><mi>x</mi><mn>2</mn></msup><mo>+</mo><msup><mi>y</mi><mn>2</mn></msup></msqrt></math></mjx-assistive-mml></mjx-container> is never negative.</p>
<mjx-container class="MathJax CtxtMenu_Attached_0" jax="CHTML" display="true"><mjx-math display="true" class="MJX-TEX" aria-hidden="true"></mjx-math><mjx-assistive-mml unselectable="on" display="block"><math xmlns="http://www.w3.org/1998/Math/MathML" display="block"><mover><mi>x</mi><mo>¯</mo></mover><mo>=</mo><mfrac><mn>1</mn><mi>n</mi></mfrac><munderover><mo data-mjx-texclass="OP">∑</mo><mrow><mi>i</mi><mo>=</mo><mn>1</mn></mrow><mi>n</mi></munderover><msub><mi>x</mi><mi>i</mi></msub></math></mjx-assistive-mml></mjx-container>"""


def test_mathjax3_containers_become_latex_from_their_assistive_mathml():
    text = extract(page(MATHJAX3))
    assert "The norm $\\sqrt{x^2+y^2}$ is never negative." in text
    assert "$$\n\\overline{x}=\\frac{1}{n}\\sum_{i=1}^n x_i\n$$" in text


def test_raw_display_tex_in_the_text_is_not_escaped():
    # MathJax typesets $$..$$ and \(..\) typed into the page in the browser
    text = extract(page(r"<p>Raw TeX: $$a_1 + a_2 = b_*$$ and \(x_1\) inline, "
                        r"while $5 and $10 stay prices.</p>"))
    assert "Raw TeX:\n$$\na_1 + a_2 = b_*\n$$\nand $x_1$ inline, while $5 and $10 stay prices." \
        in text


def test_single_dollar_tex_is_math_where_the_page_configures_it():
    # Math StackExchange's configuration; `\$` is a literal dollar there (processEscapes)
    config = (r'tex2jax: { inlineMath: [ ["\\(","\\)"], ["$", "$"] ], '
              r'displayMath: [ ["$$","$$"] ], processEscapes: true }')
    body = r"<p>Let $f(x) = x_1^2 + \alpha$ for all $x \in \mathbb{R}$; it costs \$5.</p>"
    text = extract(page(body, config))
    assert r"Let $f(x) = x_1^2 + \alpha$ for all $x \in \mathbb{R}$; it costs \$5." in text
    # KaTeX's auto-render with `$` as an inline delimiter
    katex_config = ('<script>renderMathInElement(document.body, {delimiters: [{left: "$$", '
                    'right: "$$", display: true}, {left: "$", right: "$", display: false}]});'
                    '</script>')
    text = extract(page(body.replace("<p>", katex_config + "<p>")))
    assert r"Let $f(x) = x_1^2 + \alpha$" in text
    # without such a configuration a dollar is a dollar, and the TeX is escaped as prose
    assert r"Let $f(x) = x\_1^2 + \alpha$" in extract(page(body))


def test_mathml_converter_covers_the_presentation_elements():
    def latex(markup: str) -> str:
        return mathml_to_latex(etree.fromstring(f"<math>{markup}</math>"))

    assert latex("<mroot><mi>x</mi><mn>3</mn></mroot>") == r"\sqrt[3]{x}"
    assert latex("<mover><mi>v</mi><mo>→</mo></mover>") == r"\vec{v}"
    assert latex("<mover><mi>x</mi><mo>^</mo></mover>") == r"\hat{x}"
    assert latex("<munder><mo>lim</mo><mrow><mi>n</mi><mo>→</mo><mi>∞</mi></mrow></munder>"
                 "<msub><mi>a</mi><mi>n</mi></msub>") == r"\lim_{n\to\infty}a_n"
    assert latex("<munderover><mo>∫</mo><mn>0</mn><mn>1</mn></munderover>") == r"\int_0^1"
    assert latex("<mi>sin</mi><mo>&#x2061;</mo><mi>θ</mi><mo>≤</mo><mn>1</mn>") \
        == r"\sin\theta\leq1"
    assert latex("<mi>α</mi><mi>x</mi>") == r"\alpha x"
    assert latex("<mtable><mtr><mtd><mn>1</mn></mtd><mtd><mn>0</mn></mtd></mtr>"
                 "<mtr><mtd><mn>0</mn></mtd><mtd><mn>1</mn></mtd></mtr></mtable>") \
        == r"\begin{matrix} 1 & 0 \\ 0 & 1 \end{matrix}"
    assert latex("<mfrac linethickness='0'><mi>n</mi><mi>k</mi></mfrac>") == r"\binom{n}{k}"
    assert latex("<mtext>if x_1 &gt; 0</mtext>") == r"\text{if x\_1 > 0}"
    assert latex("<mfenced><mi>a</mi><mi>b</mi></mfenced>") == "(a,b)"
    assert latex("<mi mathvariant='double-struck'>R</mi>") == r"\mathbb{R}"
    assert latex("<mi>span</mi>") == r"\mathrm{span}"
    assert latex("<m:mi xmlns:m='http://www.w3.org/1998/Math/MathML'>y</m:mi>") == "y"


def test_tex_is_cleaned_to_one_line():
    assert clean_tex("a % comment\n + b\n\n") == "a + b"
    assert clean_tex(r"50\% of {\displaystyle x^{2}}") == r"50\% of {\displaystyle x^{2}}"
    assert clean_tex(r"{\displaystyle x^{2}}") == "x^{2}"
    assert clean_tex(r"{\displaystyle a}{b}") == r"{\displaystyle a}{b}"  # not one wrapper


CODE = """<p>Install it, then define the function:</p>
<pre><code>pip install example</code></pre>
<pre class="line-numbers"><code class="language-python"><span class="token keyword">def</span> <span class="token function">scale</span><span class="token punctuation">(</span>values<span class="token punctuation">,</span> a_b<span class="token operator">=</span><span class="token number">2</span><span class="token punctuation">)</span><span class="token punctuation">:</span>
    <span class="token comment"># keep *every* value &lt; 10</span>
    out <span class="token operator">=</span> <span class="token punctuation">[</span><span class="token punctuation">]</span>

    <span class="token keyword">return</span> <span class="token punctuation">[</span>v <span class="token operator">*</span> a_b <span class="token keyword">for</span> v <span class="token keyword">in</span> values<span class="token punctuation">]</span>
</code></pre>
<p>The same in JavaScript, as GitHub shows it:</p>
<div class="highlight highlight-source-js notranslate position-relative overflow-auto"><pre><span class="pl-k">const</span> <span class="pl-en">scale</span> <span class="pl-c1">=</span> <span class="pl-s1">values</span> <span class="pl-c1">=&gt;</span> <span class="pl-s1">values</span><span class="pl-kos">.</span><span class="pl-en">map</span><span class="pl-kos">(</span><span class="pl-s1">v</span> <span class="pl-c1">=&gt;</span> <span class="pl-s1">v</span> <span class="pl-c1">*</span> <span class="pl-c1">2</span><span class="pl-kos">)</span><span class="pl-kos">;</span></pre></div>
<p>and once more with a data attribute:</p>
<pre data-lang="js"><code>console.log(scale([1, 2]));</code></pre>"""


def test_code_blocks_are_fenced_with_their_language_and_kept_verbatim():
    text = extract(page(CODE))
    assert "Install it, then define the function:\n\n```\npip install example\n```\n\n" in text
    assert ("```python\n"
            "def scale(values, a_b=2):\n"
            "    # keep *every* value < 10\n"
            "    out = []\n"
            "\n"  # the empty line stays, the markdown specials are not escaped
            "    return [v * a_b for v in values]\n"
            "```\n\nThe same in JavaScript") in text
    assert "```js\nconst scale = values => values.map(v => v * 2);\n```" in text
    assert "```js\nconsole.log(scale([1, 2]));\n```" in text


GUTTERS = """<p>hexo:</p>
<figure class="highlight python"><table><tr><td class="gutter"><pre><span class="line">1</span><br><span class="line">2</span><br></pre></td><td class="code"><pre><span class="line"><span class="keyword">def</span> <span class="title function_">f</span>(<span class="params">x</span>):</span><br><span class="line">    <span class="keyword">return</span> x</span><br></pre></td></tr></table></figure>
<p>Pygments with a line-number table (Sphinx, Jekyll):</p>
<div class="highlight-python notranslate"><table class="highlighttable"><tr><td class="linenos"><div class="linenodiv"><pre><span class="normal">1</span>
<span class="normal">2</span></pre></div></td><td class="code"><div class="highlight"><pre><span></span><span class="kn">import</span> <span class="nn">os</span>
<span class="nb">print</span><span class="p">(</span><span class="n">os</span><span class="o">.</span><span class="n">sep</span><span class="p">)</span>
</pre></div></td></tr></table></div>
<p>Pygments with inline numbers:</p>
<div class="highlight"><pre><span></span><span class="linenos">1</span><span class="kn">import</span> <span class="nn">sys</span>
<span class="linenos">2</span><span class="nb">print</span><span class="p">(</span><span class="n">sys</span><span class="p">)</span>
</pre></div>"""


def test_line_numbers_are_dropped_and_the_language_found_on_the_wrapper():
    text = extract(page(GUTTERS))
    assert "hexo:\n\n```python\ndef f(x):\n    return x\n```" in text
    assert "(Sphinx, Jekyll):\n\n```python\nimport os\nprint(os.sep)\n```" in text
    assert "inline numbers:\n\n```\nimport sys\nprint(sys)\n```" in text


@pytest.mark.parametrize("markup, language", [
    ('<pre><code class="language-rust">', "rust"),
    ('<pre class="prettyprint lang-go"><code>', "go"),
    ('<div class="highlight-python3 notranslate"><div class="highlight"><pre>', "python3"),
    ('<pre class="brush: ruby; gutter: false">', "ruby"),
    ('<pre class="sourceCode haskell"><code class="sourceCode haskell">', "haskell"),
    ('<div class="mw-highlight mw-highlight-lang-bash"><pre>', "bash"),
    ('<pre><code class="language-none">', None),
    ('<pre><code class="hljs">', None),
])
def test_code_language_conventions(markup, language):
    tree = etree.HTML(markup + "x = 1")
    pre = next(tree.iter("pre"))
    assert code_language(pre, next(pre.iter("code"), None)) == language


TABLE = """<table class="wikitable"><caption>Planets and moons</caption>
<thead><tr><th>Planet</th><th>Moons</th><th>Notes</th></tr></thead>
<tbody><tr><th scope="row">Earth</th><td>1</td><td>home | water</td></tr>
<tr><th scope="row">Mars</th><td>2</td><td><em>red</em> dust</td></tr></tbody></table>"""


def test_table_becomes_a_gfm_table_with_one_header_row():
    text = extract(page(TABLE))
    assert ("Planets and moons\n\n"
            "| Planet | Moons | Notes |\n"
            "|---|---|---|\n"
            "| Earth | 1 | home \\| water |\n"
            "| Mars | 2 | *red* dust |\n") in text


NESTED = f"""<p>Results by team:</p>
<table><tr><td>Team</td><td>Results</td></tr>
<tr><td>Red</td><td><table><tr><td>Won</td><td>3</td></tr><tr><td>Lost</td><td>1</td></tr></table></td></tr>
<tr><td>Blue</td><td>none</td></tr></table>
<table width="100%"><tr><td class="sidebar"><a href="/a">Archive</a></td>
<td><h2>Old layout</h2><p>{make_text(7, 30)}</p><p>{make_text(8, 30)}</p></td></tr></table>"""


def test_nested_and_layout_tables():
    text = extract(page(NESTED))
    # header-less data table: its first row is the header; the inner table is flattened into
    # its cell (cells ", ", rows "; ")
    assert ("| Team | Results |\n"
            "|---|---|\n"
            "| Red | Won, 3; Lost, 1 |\n"
            "| Blue | none |\n") in text
    # flattened as inline elements: a link stays a link (trafilatura weighs link density)
    tree = etree.HTML("<table><tr><th>Shelf</th><th>Books</th></tr>"
                      "<tr><td>Left</td><td><table><thead><tr><th>Title</th></tr>"
                      "</thead><tbody><tr><td><a href='/a'>Tribes</a></td><td></td>"
                      "<td>2008</td></tr></tbody></table></td></tr></table>")
    prepare_for_markdown(tree)
    cell = tree.findall(".//td")[1]
    assert cell.xpath("string()") == " Title; Tribes, 2008 " and cell.find(".//a") is not None
    # a table holding headings and paragraphs is layout: its cells become blocks
    assert f"## Old layout\n\n{make_text(7, 30)}\n\n{make_text(8, 30)}" in text
    assert "| Old layout" not in text


LISTS = f"""<h2>Steps</h2><ol><li>Open the file</li><li>Edit it<ul><li>keep <strong>headers</strong></li>
<li>drop blanks</li></ul></li><li>Save</li></ol><h3>Notes</h3><ul><li>one</li><li>two</li></ul>
<h4>Small print</h4><p>{make_text(5, 30)}</p>"""


def test_lists_and_headings_are_kept():
    text = extract(page(LISTS))
    assert text.startswith("# Notes on series\n")
    assert ("## Steps\n\n1. Open the file\n2. Edit it\n  - keep **headers**\n  - drop blanks\n"
            "3. Save\n\n### Notes\n\n- one\n- two\n\n#### Small print\n\n") in text


def test_markdown_with_metadata_or_tables_off():
    html = page(MATHJAX2 + TABLE)
    full = extract(html)
    assert extract(html, metadata=False) == full  # the same passes on the same parse
    no_tables = extract(html, include_tables=False)
    assert "| Earth" not in no_tables and "Planets and moons" not in no_tables
    assert "$E = mc^2$" in no_tables


def test_finish_leaves_code_alone_and_tidies_the_rest():
    raw = ("Text  \n```\n\u27eclang:c\u27ed\nint x;  \n\u27ecblank\u27ed\nx++;\n"
           "\u27ecblank\u27ed\n```\nafter\n| a | b | \n\n\n\nend")
    assert finish_markdown(raw) == ("Text\n\n```c\nint x;  \n\nx++;\n```\n\nafter\n| a | b |\n"
                                    "\nend")


def test_plain_text_is_what_trafilatura_gives():
    """`format: text` never runs the markdown passes: the trafilatura engine's text is
    trafilatura's own."""
    import trafilatura
    from trafilatura.settings import Extractor

    html = page(MATHJAX2 + KATEX + MATHML + CODE + TABLE + NESTED + LISTS)
    options = Extractor(output_format="python", formatting=False, comments=False, tables=True,
                        url="https://example.org/notes")
    direct = trafilatura.bare_extraction(html, options=options).text
    assert extract(html, format="text", engine="trafilatura") == direct
    assert "$" not in direct and "```" not in direct  # really the plain path


def test_markdown_job_through_the_runner(tmp_path, ray_cluster):
    warc = tmp_path / "math.warc.gz"
    write_warc(warc, [response(1, page(MATHJAX2 + CODE)), response(2, page(KATEX + TABLE))])
    spec = write_spec(tmp_path / "md.yaml", f"""
name: md
input: {{format: warc, paths: ["{warc}"]}}
output: {{path: out-md}}
stages:
  - extract: {{format: markdown}}
resources: {{cpus: 2}}
""")
    result = run_job(load_spec(spec), progress=False)
    assert not result.failed
    assert_accounting(tmp_path / "out-md")
    texts = sorted(pq.read_table(tmp_path / "out-md" / "data").column("text").to_pylist())
    assert len(texts) == 2
    first, second = sorted(texts, key=lambda t: "KaTeX" in t or "sequence" in t)
    assert "$E = mc^2$" in first and "```python\ndef scale(values, a_b=2):" in first
    assert "$a_n = \\frac{1}{n}$" in second and "| Earth | 1 | home \\| water |" in second
