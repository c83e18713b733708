"""The `license` stage: every signal on self-made pages, conflicts, SPDX normalisation,
domain rules, policies, and the stage end to end through the runner."""

from __future__ import annotations


import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.runner import run_job
from pipeline.spec import SpecError, load_spec
from stages._license.spdx import spdx_from_text, spdx_from_url
from stages.license import License, LicenseConfig
from tests.conftest import assert_accounting, write_jsonl, write_spec

ARTICLE = "<article><h1>Sourdough at home</h1><p>Feed the starter twice a day.</p></article>"


def page(head: str = "", body: str = "", footer: str = "") -> str:
    return (f"<!doctype html><html><head><title>t</title>{head}</head><body>{ARTICLE}{body}"
            f"<footer id='site-footer'>{footer}</footer></body></html>")


def detect(html, url="https://blog.example.net/post", **config):
    stage = License(LicenseConfig(**config))
    stage.setup()
    return stage.detect(html, url)


# -- one page per signal -----------------------------------------------------------------------
@pytest.mark.parametrize("html, expected, kind", [
    (page(head='<link rel="license" href="https://creativecommons.org/licenses/by/4.0/">'),
     "CC-BY-4.0", "link_rel"),
    (page(footer='<a rel="license" href="http://creativecommons.org/licenses/by-nc-sa/3.0/">'
                 'Some rights reserved</a>'), "CC-BY-NC-SA-3.0", "a_rel"),
    (page(footer='<a href="https://creativecommons.org/licenses/by-sa/4.0/"><img alt="cc" '
                 'src="https://licensebuttons.net/l/by-sa/4.0/88x31.png"></a>'),
     "CC-BY-SA-4.0", "badge"),
    (page(body='<img src="https://i.creativecommons.org/l/by-nd/3.0/88x31.png">'),
     "CC-BY-ND-3.0", "badge"),
    (page(head='<meta name="DC.rights" content="https://creativecommons.org/publicdomain/'
               'zero/1.0/">'), "CC0-1.0", "meta"),
    (page(head='<meta name="dcterms.license" content="CC BY-NC 4.0">'), "CC-BY-NC-4.0", "meta"),
    (page(head='<meta property="og:license" content="http://creativecommons.org/'
               'publicdomain/mark/1.0/">'), "CC-PDM-1.0", "meta"),
    (page(head='<script type="application/ld+json">{"@context": "https://schema.org", '
               '"@type": "BlogPosting", "license": "https://creativecommons.org/licenses/'
               'by/3.0/de/"}</script>'), "CC-BY-3.0-DE", "json_ld"),
    (page(footer="<p>Soweit nicht anders gekennzeichnet, stehen unsere Texte unter einer "
                 "Creative Commons Namensnennung - Keine Bearbeitung 3.0 Deutschland Lizenz."
                 "</p>"), "CC-BY-ND-3.0-DE", "text"),
    (page(footer="<p>Except where otherwise noted, content on this site is licensed under a "
                 "Creative Commons Attribution-ShareAlike 4.0 International License.</p>"),
     "CC-BY-SA-4.0", "text"),
    (page(body="<p>All texts on this blog are released under CC BY 4.0, unless stated.</p>"),
     "CC-BY-4.0", "text"),
])
def test_each_license_signal_is_found(html, expected, kind):
    spdx, evidence = detect(html)
    assert spdx == expected
    assert evidence.startswith(kind), evidence


def test_json_ld_license_of_an_image_is_not_the_page_license():
    html = page(head='<script type="application/ld+json">{"@graph": [{"@type": "ImageObject", '
                     '"license": "https://creativecommons.org/licenses/by/2.0/"}, '
                     '{"@type": "Article", "headline": "x"}]}</script>')
    assert detect(html) == (None, None)


@pytest.mark.parametrize("body", [
    "<figure><img src='a.jpg'><figcaption>Photo: Jane Doe, "
    "<a href='https://creativecommons.org/licenses/by/2.0/'>CC BY 2.0</a></figcaption></figure>",
    "<p>Foto: Max Muster / Wikimedia Commons, CC BY-SA 3.0, lizenziert unter CC BY-SA 3.0</p>",
    "<p>Music: Lights (<a href='https://creativecommons.org/licenses/by/3.0/'>CC BY</a>)</p>",
    "<p>We discuss whether CC BY-NC-SA 4.0 suits teaching material.</p>",
])
def test_credits_and_mentions_are_not_the_page_license(body):
    assert detect(page(body=body)) == (None, None)


def test_pages_without_signals_have_no_license():
    assert detect(page()) == (None, None)
    assert detect(None) == (None, None)
    assert detect(b"") == (None, None)
    assert detect(b"\x00\xff\xfe garbage \x89PNG") == (None, None)


def test_html_as_bytes_in_a_declared_legacy_encoding():
    html = page(head='<meta charset="windows-1252">',
                footer="<p>Lizenz: CC BY-SA 3.0 \u00d6sterreich \u2013 Gr\u00fc\u00dfe</p>")
    spdx, evidence = detect(html.encode("cp1252"))
    assert spdx == "CC-BY-SA-3.0"
    assert "Grüße" not in evidence  # only the part that names the license


# -- conflicts: which signal wins --------------------------------------------------------------
def test_page_metadata_outranks_a_footer_badge():
    # <link rel=license> in the head is the page's own machine-readable declaration
    html = page(head='<link rel="license" href="https://creativecommons.org/licenses/by-sa/'
                     '4.0/">',
                footer='<a href="https://creativecommons.org/licenses/by-nc/4.0/"><img src='
                       '"https://licensebuttons.net/l/by-nc/4.0/88x31.png"></a>')
    spdx, evidence = detect(html)
    assert spdx == "CC-BY-SA-4.0"
    assert "outranks CC-BY-NC-4.0 (badge in footer(footer#site-footer))" in evidence


def test_rel_license_outranks_a_plain_license_link():
    html = page(body='<p>Licensed under <a href="https://creativecommons.org/licenses/by/4.0/">'
                     'CC BY</a></p>',
                footer='<a rel="license" href="https://creativecommons.org/licenses/by-nd/4.0/">'
                       'license</a>')
    assert detect(html)[0] == "CC-BY-ND-4.0"


def test_footer_signal_outranks_one_in_the_body_at_the_same_level():
    # the page's own notice sits in the footer; an RDFa link in the article is an embed
    html = page(body='<p><a rel="license" href="https://creativecommons.org/licenses/by/2.0/">'
                     'embed</a></p>',
                footer='<a rel="license" href="https://creativecommons.org/licenses/by-sa/3.0/">'
                       'site</a>')
    assert detect(html)[0] == "CC-BY-SA-3.0"


def test_a_versionless_name_defers_to_the_versioned_badge_of_the_same_license():
    html = page(footer='<p>Lizenz: CC BY-NC-ND</p><a href="https://creativecommons.org/'
                       'licenses/by-nc-nd/3.0/de/"><img src="https://i.creativecommons.org/l/'
                       'by-nc-nd/3.0/de/88x31.png"></a>')
    assert detect(html)[0] == "CC-BY-NC-ND-3.0-DE"


def test_body_links_that_disagree_decide_nothing():
    html = page(body="<ul><li>Licence: <a href='https://creativecommons.org/licenses/by/4.0/'>"
                     "BY</a></li><li>Licence: <a href='https://creativecommons.org/licenses/"
                     "by-nc/4.0/'>BY-NC</a></li></ul>")
    assert detect(html) == (None, None)


# -- SPDX normalisation ------------------------------------------------------------------------
@pytest.mark.parametrize("url, expected", [
    ("https://creativecommons.org/licenses/by-sa/3.0/deed.en", "CC-BY-SA-3.0"),
    ("http://creativecommons.org/licenses/by-sa/3.0/", "CC-BY-SA-3.0"),
    ("https://creativecommons.org/licenses/by-sa/3.0", "CC-BY-SA-3.0"),
    ("//www.creativecommons.org/licenses/by-sa/3.0/legalcode", "CC-BY-SA-3.0"),
    ("HTTPS://CreativeCommons.org/licenses/BY-SA/3.0/?ref=chooser#x", "CC-BY-SA-3.0"),
    ("https://creativecommons.org/licenses/by-nc-nd/4.0/legalcode.de", "CC-BY-NC-ND-4.0"),
    ("http://creativecommons.org/licenses/by-sa/3.0/de/", "CC-BY-SA-3.0-DE"),
    ("http://creativecommons.org/licenses/by-sa/3.0/de/deed.en", "CC-BY-SA-3.0-DE"),
    ("http://creativecommons.org/licenses/by/2.0/de/", "CC-BY-2.0"),  # port SPDX lacks
    ("http://creativecommons.org/licenses/by-nd-nc/1.0/", "CC-BY-NC-ND-1.0"),
    ("https://licensebuttons.net/l/by-nc/4.0/88x31.png", "CC-BY-NC-4.0"),
    ("https://i.creativecommons.org/l/by/3.0/at/80x15.png", "CC-BY-3.0-AT"),
    ("https://licensebuttons.net/p/zero/1.0/88x31.png", "CC0-1.0"),
    ("https://creativecommons.org/publicdomain/zero/1.0/deed.fr", "CC0-1.0"),
    ("https://creativecommons.org/publicdomain/mark/1.0/", "CC-PDM-1.0"),
    ("https://mirrors.creativecommons.org/presskit/buttons/88x31/png/by-sa.png", "CC-BY-SA"),
    ("https://web.archive.org/web/2016/http://creativecommons.org/licenses/by-nc/3.0/de/",
     "CC-BY-NC-3.0-DE"),
    ("https://www.govdata.de/dl-de/by-2-0", "DL-DE-BY-2.0"),
    ("https://opensource.org/licenses/MIT", "MIT"),
    ("https://creativecommons.org/about/", None),
    ("https://example.org/licenses/by/4.0/", None),
])
def test_license_urls_normalise_to_spdx(url, expected):
    assert spdx_from_url(url) == expected


@pytest.mark.parametrize("text, expected", [
    ("CC BY-SA 4.0", "CC-BY-SA-4.0"),
    ("CC-BY-NC-ND-4.0-DE", "CC-BY-NC-ND-4.0"),          # 4.0 has no ports
    ("(CC BY-NC-SA 2.0 DE)", "CC-BY-NC-SA-2.0-DE"),
    ("CC-BY-SA", "CC-BY-SA"),                          # no version stated: none invented
    ("CC0", "CC0-1.0"),
    ("Creative Commons Attribution-NonCommercial 3.0 Unported License", "CC-BY-NC-3.0"),
    ("Creative Commons Namensnennung - Weitergabe unter gleichen Bedingungen 3.0 Deutschland",
     "CC-BY-SA-3.0-DE"),
    ("Creative Commons Paternité - Pas d'Utilisation Commerciale 2.0 France",
     "CC-BY-NC-2.0"),
    ("Creative Commons Reconocimiento-CompartirIgual 4.0 Internacional", "CC-BY-SA-4.0"),
])
def test_license_names_in_text_normalise_to_spdx(text, expected):
    assert spdx_from_text(text)[0][0] == expected


@pytest.mark.parametrize("text", ["Creative Commons", "cc by the way", "CC-BYE",
                                  "a Creative Commons license by the author"])
def test_words_that_name_no_license(text):
    assert spdx_from_text(text) == []


# -- domain rules ------------------------------------------------------------------------------
def test_domain_rules_apply_when_the_page_says_nothing(tmp_path):
    stage = License(LicenseConfig())
    stage.setup()
    plain = page()
    assert stage.detect(plain, "https://de.wikipedia.org/wiki/Brot")[0] == "CC-BY-SA-4.0"
    assert stage.detect(plain, "https://en.wikipedia.org/wiki/Bread", None,
                        "2015-03-01T10:00:00Z")[0] == "CC-BY-SA-3.0"
    assert stage.detect(plain, "https://www.wikidata.org/wiki/Q7802")[0] == "CC0-1.0"
    assert stage.detect(plain, "https://www.nasa.gov/news")[0] == "CC-PDM-1.0"
    assert stage.detect(plain, "https://www.army.mil/article/1")[0] == "CC-PDM-1.0"
    assert stage.detect(plain, "https://pubmed.ncbi.nlm.nih.gov/123/")[0] is None
    assert stage.detect(plain, "https://www.ca.gov/")[0] is None  # a state, not federal
    # an archived copy is judged by the archived site and the capture date
    assert stage.detect(plain, "https://web.archive.org/web/20120101000000/"
                               "http://en.wikipedia.org/wiki/Bread")[0] == "CC-BY-SA-3.0"


def test_page_signal_outranks_the_domain_rule():
    html = page(footer='<a rel="license" href="//creativecommons.org/licenses/by-sa/3.0/">x</a>')
    spdx, evidence = detect(html, "https://en.wikipedia.org/wiki/Bread")
    assert spdx == "CC-BY-SA-3.0"
    assert "CC-BY-SA-4.0 (domain in wikipedia.org)" in evidence


def test_user_domain_rules_extend_and_override_the_built_in_table(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("example.org: CC-BY-4.0\nnasa.gov: null\nblog.example.com:\n"
                     "  - {license: CC-BY-SA-3.0, since: 2010-01-01}\n"
                     "  - {license: CC-BY-4.0, since: 2019-05-01}\n")
    stage = License(LicenseConfig(domain_rules=str(rules)))
    stage.setup()
    assert stage.detect(page(), "https://docs.example.org/a")[0] == "CC-BY-4.0"
    assert stage.detect(page(), "https://www.nasa.gov/news")[0] is None
    assert stage.detect(page(), "https://blog.example.com/", None, "2015-06-01")[0] \
        == "CC-BY-SA-3.0"
    assert stage.detect(page(), "https://blog.example.com/")[0] == "CC-BY-4.0"


def test_a_broken_domain_rules_file_fails_validation(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("example.org: [1, 2]\n")
    with pytest.raises(ValueError, match="example.org"):
        LicenseConfig(domain_rules=str(rules))
    with pytest.raises(ValueError, match="not found"):
        LicenseConfig(domain_rules=str(tmp_path / "missing.yaml"))


# -- policies ----------------------------------------------------------------------------------
LICENSED = {
    "cc-by-sa": page(footer='<a rel="license" href="https://creativecommons.org/licenses/'
                            'by-sa/4.0/">x</a>'),
    "cc0": page(head='<meta name="dc.rights" content="CC0 1.0">'),
    "cc-by-nc": page(footer='<a rel="license" href="https://creativecommons.org/licenses/'
                            'by-nc/4.0/">x</a>'),
    "cc-by-nd": page(footer='<a rel="license" href="https://creativecommons.org/licenses/'
                            'by-nd/4.0/">x</a>'),
    "none": page(),
}


def reasons_under(policy) -> dict[str, str | None]:
    stage = License(LicenseConfig(policy=policy))
    stage.setup()
    table = pa.table({"id": list(LICENSED), "html": list(LICENSED.values()),
                      "url": ["https://example.net/x"] * len(LICENSED)})
    out = stage.process(table)
    reasons = out.reasons.to_pylist() if out.reasons is not None else [None] * len(LICENSED)
    return dict(zip(LICENSED, reasons))


def test_policies_keep_what_they_name():
    assert reasons_under("permissive") == {
        "cc-by-sa": None, "cc0": None, "cc-by-nc": "license:CC-BY-NC-4.0",
        "cc-by-nd": "license:CC-BY-ND-4.0", "none": "license:unknown"}
    assert reasons_under("non_commercial") == {
        "cc-by-sa": None, "cc0": None, "cc-by-nc": None, "cc-by-nd": "license:CC-BY-ND-4.0",
        "none": "license:unknown"}
    assert set(reasons_under("any").values()) == {None}
    assert reasons_under(["CC0-1.0", "CC-BY-N?-*", "unknown"]) == {
        "cc-by-sa": "license:CC-BY-SA-4.0", "cc0": None, "cc-by-nc": None, "cc-by-nd": None,
        "none": None}


# -- through the runner ------------------------------------------------------------------------
def test_license_first_on_html_input_accounts_for_every_page(tmp_path, ray_cluster):
    rows = [{"id": f"p{i}", "html": html, "url": f"https://example.net/{i}"}
            for i, html in enumerate(list(LICENSED.values()) * 3)]
    write_jsonl(tmp_path / "in" / "a.jsonl", rows[:8])
    write_jsonl(tmp_path / "in" / "b.jsonl", rows[8:])
    spec = write_spec(tmp_path / "job.yaml", """\
name: license-job
input: {format: jsonl, paths: ["in/*.jsonl"]}
output: {path: out}
stages:
  - license: {policy: permissive}
""")
    run_job(load_spec(spec), progress=False)
    out = tmp_path / "out"
    manifests = assert_accounting(out)
    assert len(manifests) == 2
    kept = pq.read_table(out / "data").to_pylist()
    rejected = pq.read_table(out / "rejected").to_pylist()
    assert sorted(r["license"] for r in kept) == ["CC-BY-SA-4.0"] * 3 + ["CC0-1.0"] * 3
    assert all(r["license_evidence"] for r in kept)
    assert sorted(r["reason"] for r in rejected) == sorted(
        ["license:CC-BY-NC-4.0", "license:CC-BY-ND-4.0", "license:unknown"] * 3)
    assert {r["stage"] for r in rejected} == {"license"}


def test_spec_validation_needs_html_before_the_license_stage(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"text": "hello", "url": "https://x.org"}])
    spec = write_spec(tmp_path / "job.yaml", """\
name: bad-order
input: {format: jsonl, paths: ["in.jsonl"]}
output: {path: out}
stages:
  - length_filter: {min_words: 1}
  - license: {policy: permissive}
""")
    with pytest.raises(SpecError, match="line 6: stage 'license' needs column 'html'"):
        load_spec(spec)


def test_a_huge_page_is_read_by_its_head_and_its_footer():
    filler = "<p>" + "Grüße aus Köln. " * 50 + "</p>"
    html = page(body=filler * 4000,
                footer='<a rel="license" href="https://creativecommons.org/licenses/by/4.0/">x</a>')
    data = html.encode("utf-8")
    assert len(data) > 3_000_000
    spdx, evidence = detect(data, max_html_bytes=200_000)
    assert spdx == "CC-BY-4.0" and evidence.startswith("a_rel in footer")
