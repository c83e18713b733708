"""url_filter: URL normalisation, domain and sub-domain matching with the bundled Public Suffix
List, exact URLs, list formats and UT1 folders, URL words, allowlists, accounting through the
runner, and hostile URLs."""

from __future__ import annotations

import gzip
import socket
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.runner import run_job
from pipeline.spec import SpecError, load_spec
from stages._shared.hashed_set import HashedSet
from stages._shared.text_hash import word_hash
from stages._url_filter.matcher import UrlLists, UrlMatcher
from stages._url_filter.urls import parse_url
from stages.url_filter import UrlFilter, UrlFilterConfig
from tests.conftest import assert_accounting, write_jsonl, write_spec


def write_list(path, *lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def judge(urls, **config):
    stage = UrlFilter(UrlFilterConfig(**config))
    out = stage.process(pa.table({"url": pa.array(urls, pa.string())}))
    reasons = out.reasons.to_pylist() if out.reasons is not None else [None] * len(urls)
    return reasons, out.counters


# -- normal form --------------------------------------------------------------------------------
@pytest.mark.parametrize("a, b", [
    ("https://Example.COM/Page", "http://example.com/Page"),           # case of scheme and host
    ("http://example.com:80/a", "https://example.com:443/a"),          # default ports
    ("http://user:secret@example.com/a", "example.com/a"),             # user-info, no scheme
    ("http://example.com./a", "http://example.com/a"),                 # trailing dot
    ("http://bücher.de/x", "http://xn--bcher-kva.de/x"),               # IDN -> punycode
    ("http://BÜCHER.DE/x", "http://xn--bcher-kva.de/x"),
    ("http://例え。テスト/p", "http://xn--r8jz45g.xn--zckzah/p"),        # full-width dot (UTS 46)
    ("http://example.com/a%2fb", "http://example.com/a%2Fb"),          # escape case
    ("http://example.com/a/", "http://example.com/a"),                 # trailing slash
    ("http://example.com", "http://example.com/"),
    ("http://example.com/a#frag", "http://example.com/a"),             # fragment
    ("http://[2001:DB8::1]:80/x", "http://[2001:db8::1]/x"),           # IPv6 literal
])
def test_urls_that_name_the_same_page_have_one_key(a, b):
    assert parse_url(a).key == parse_url(b).key


@pytest.mark.parametrize("a, b", [
    ("http://example.com:8080/a", "http://example.com/a"),   # another port
    ("http://example.com/Page", "http://example.com/page"),  # path case matters
    ("http://example.com/a?x=1", "http://example.com/a"),    # query matters
    ("http://www.example.com/a", "http://example.com/a"),    # another host
])
def test_urls_that_differ_keep_different_keys(a, b):
    assert parse_url(a).key != parse_url(b).key


def test_unreadable_urls_have_no_host():
    assert parse_url("http://[::1") is None
    assert parse_url("http:///path-only") is None
    assert parse_url("http://user@:80/") is None


# -- domains ------------------------------------------------------------------------------------
def test_a_domain_blocks_itself_and_every_sub_domain_but_no_look_alike(tmp_path):
    block = write_list(tmp_path / "block.txt", "example.com")
    urls = ["https://example.com/", "http://www.example.com/a", "https://a.b.c.example.com/",
            "HTTPS://WWW.EXAMPLE.COM./", "http://user:pw@example.com:8443/x",
            "https://notexample.com/", "https://example.com.evil.net/", "https://example.co/",
            "https://example.com.au/", "https://myexample.com/example.com"]
    reasons, _ = judge(urls, blocklist=[block])
    assert reasons == ["url_blocklist:domain=example.com"] * 5 + [None] * 5


def test_a_listed_sub_domain_blocks_below_it_only(tmp_path):
    block = write_list(tmp_path / "block.txt", "shop.example.org")
    reasons, _ = judge(["https://shop.example.org/", "https://eu.shop.example.org/",
                        "https://example.org/", "https://www.example.org/"], blocklist=[block])
    assert reasons == ["url_blocklist:domain=shop.example.org"] * 2 + [None, None]


def test_registered_domains_follow_the_public_suffix_list(tmp_path):
    # co.uk is a public suffix: listing it blocks nothing; blogspot.com is a private suffix,
    # which a blocklist treats as a domain of its own.
    block = write_list(tmp_path / "block.txt", "co.uk", "example.co.uk", "spam.blogspot.com",
                       "github.io")
    reasons, _ = judge(["https://www.example.co.uk/", "https://other.co.uk/",
                        "https://spam.blogspot.com/", "https://ham.blogspot.com/",
                        "https://someone.github.io/"], blocklist=[block])
    assert reasons == ["url_blocklist:domain=example.co.uk", None,
                       "url_blocklist:domain=spam.blogspot.com", None,
                       "url_blocklist:domain=github.io"]


def test_idn_entries_and_urls_meet_in_punycode(tmp_path):
    block = write_list(tmp_path / "block.txt", "bücher.de", "xn--mnchen-3ya.de")
    reasons, _ = judge(["https://www.xn--bcher-kva.de/", "https://BÜCHER.de/",
                        "https://münchen.de/", "https://buecher.de/"], blocklist=[block])
    assert reasons == ["url_blocklist:domain=xn--bcher-kva.de"] * 2 + \
        ["url_blocklist:domain=xn--mnchen-3ya.de", None]


def test_ip_addresses_match_only_themselves(tmp_path):
    block = write_list(tmp_path / "block.txt", "192.0.2.7", "2001:db8::1")
    reasons, _ = judge(["http://192.0.2.7/x", "http://192.0.2.8/x", "http://10.192.0.2.7/",
                        "http://[2001:db8::1]:8080/", "http://[2001:db8::2]/"],
                       blocklist=[block])
    assert reasons == ["url_blocklist:domain=192.0.2.7", None, None,
                       "url_blocklist:domain=2001:db8::1", None]


# -- exact URLs and list formats -------------------------------------------------------------
def test_a_listed_url_blocks_that_page_only(tmp_path):
    block = write_list(tmp_path / "block.txt", "example.org/bad/page",
                       "https://Example.NET:443/Shop?id=7")
    reasons, _ = judge(["https://example.org/bad/page", "http://example.org/bad/page/",
                        "http://example.org/bad/page2", "https://example.org/",
                        "http://example.net/Shop?id=7", "http://example.net/Shop?id=8"],
                       blocklist=[block])
    assert reasons == ["url_blocklist:url=example.org/bad/page"] * 2 + [None, None] + \
        ["url_blocklist:url=example.net/Shop?id=7", None]


def test_every_published_list_format_is_read(tmp_path):
    block = write_list(tmp_path / "block.txt",
                       "\ufeff# a header comment", "", "plain.com   # why it is listed",
                       "*.wild.com", ".dot.com", "||adblock.com^", "||adblock2.com^$third-party",
                       "0.0.0.0 hosts.com", "127.0.0.1\thosts2.com", "  spaced.com  ",
                       "example.org/page#fragment-stays")
    zipped = tmp_path / "more.txt.gz"
    zipped.write_bytes(gzip.compress(b"zipped.com\n\xff\xfebroken.com\n"))
    urls = [f"http://www.{d}/" for d in ("plain.com", "wild.com", "dot.com", "adblock.com",
                                         "adblock2.com", "hosts.com", "hosts2.com",
                                         "spaced.com", "zipped.com")]
    reasons, _ = judge(urls + ["http://header/", "http://broken.com/"],
                       blocklist=[block, str(zipped)])
    assert reasons[:9] == [f"url_blocklist:domain={u.split('www.')[1][:-1]}" for u in urls]
    assert reasons[9:] == [None, None]


def test_ut1_folders_read_the_chosen_categories(tmp_path):
    ut1 = tmp_path / "blacklists"
    write_list(ut1 / "adult" / "domains", "adult.example")
    write_list(ut1 / "adult" / "urls", "ok.example/adult-page")
    write_list(ut1 / "gambling" / "domains", "casino.example")
    write_list(ut1 / "adult" / "expressions", "(porn|sex)")  # regexes: not read
    (ut1 / "README").write_text("not a category")
    urls = ["http://www.adult.example/", "http://ok.example/adult-page", "http://ok.example/",
            "http://casino.example/", "http://porn.example/"]
    every, _ = judge(urls, blocklist=[str(ut1)])
    assert every == ["url_blocklist:domain=adult.example",
                     "url_blocklist:url=ok.example/adult-page", None,
                     "url_blocklist:domain=casino.example", None]
    chosen, _ = judge(urls, blocklist=[str(ut1)], categories=["gambling"])
    assert chosen == [None, None, None, "url_blocklist:domain=casino.example", None]
    one_category, _ = judge(urls, blocklist=[str(ut1 / "adult")])
    assert one_category == every[:3] + [None, None]


# -- words --------------------------------------------------------------------------------------
def test_banned_words_are_whole_url_words_and_sub_words_are_substrings(tmp_path):
    urls = ["https://www.sussex.ac.uk/essex", "https://example.com/Sex-Education",
            "https://example.com/%53EX", "https://freesextube.example/",
            "https://example.com/hot-girls-live", "https://example.com/hot-cars"]
    words, _ = judge(urls, banned_words=["sex"], soft_words=["hot", "girls", "live"],
                     soft_word_threshold=2)
    assert words == [None, "url_word:word=sex", "url_word:word=sex", None,
                     "url_soft_words:count=3", None]
    files = write_list(tmp_path / "sub.txt", "sex tube")  # normalised to "sextube"
    sub, _ = judge(urls, banned_subwords_files=[files])
    assert sub == [None, None, None, "url_subword:word=sextube", None, None]


# -- allowlists, counters -----------------------------------------------------------------------
def test_allowlists_win_over_every_block_rule(tmp_path):
    block = write_list(tmp_path / "block.txt", "example.com", "other.org/page")
    allow = write_list(tmp_path / "allow.txt", "good.example.com", "other.org/page",
                       "sussex.ac.uk")
    reasons, counters = judge(
        ["https://www.good.example.com/", "https://bad.example.com/", "https://other.org/page",
         "https://www.sussex.ac.uk/sex", "https://example.net/sex"],
        blocklist=[block], allowlist=[allow], banned_words=["sex"])
    assert reasons == [None, "url_blocklist:domain=example.com", None, None,
                       "url_word:word=sex"]
    assert counters["allowlisted"] == 3


def test_rows_without_a_url_pass_and_are_counted():
    reasons, counters = judge([None, "", "   ", "http://[::1", "https://ok.example/"],
                              banned_words=["porn"])
    assert reasons == [None] * 5
    assert counters == {"no_url": 3, "allowlisted": 0, "unparsed_url": 1}


def test_an_unparsable_url_still_meets_the_word_rules():
    reasons, counters = judge(["http://[porn::1"], banned_words=["porn"])
    assert reasons == ["url_word:word=porn"] and counters["unparsed_url"] == 1


def test_verdicts_hold_when_the_host_cache_starts_again(tmp_path, monkeypatch):
    from stages._url_filter import matcher
    monkeypatch.setattr(matcher, "HOST_CACHE", 3)
    stage = UrlFilter(UrlFilterConfig(blocklist=[write_list(tmp_path / "b.txt", "bad.example")]))
    urls = [f"https://h{i}.bad.example/" if i % 2 else f"https://h{i}.good.example/"
            for i in range(8)]
    for batch in (urls[:2], urls[:5], urls, urls[3:]):  # seen and unseen hosts mixed
        out = stage.process(pa.table({"url": batch}))
        assert out.reasons.to_pylist() == [
            "url_blocklist:domain=bad.example" if ".bad." in u else None for u in batch]
    assert len(stage.matcher.hosts) <= 8


# -- configuration ------------------------------------------------------------------------------
def test_spec_errors_name_the_missing_list_and_its_line(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"text": "x", "url": "http://a.example/"}])
    spec = write_spec(tmp_path / "job.yaml", """\
name: url-test
input: {format: jsonl, paths: ["a.jsonl"]}
output: {path: out}
stages:
  - url_filter: {blocklist: [lists/missing.txt]}
""")
    with pytest.raises(SpecError, match=r"line 5.*list file not found: .*lists/missing\.txt"):
        load_spec(spec)


def test_config_errors(tmp_path):
    block = write_list(tmp_path / "block.txt", "example.com")
    with pytest.raises(ValueError, match="nothing to reject with"):
        UrlFilterConfig(allowlist=[block])
    with pytest.raises(ValueError, match=r"categories \['adult'\] are in no blocklist folder"):
        UrlFilterConfig(blocklist=[block], categories=["adult"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no category lists under folder"):
        UrlFilterConfig(blocklist=[str(tmp_path / "empty")])
    with pytest.raises(ValueError, match="word list not found"):
        UrlFilterConfig(banned_words_files=[str(tmp_path / "nope.txt")])


def test_the_public_suffix_list_is_read_without_the_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("url_filter tried to open a network connection")
    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    matcher = UrlMatcher(UrlLists(), soft_word_threshold=2)
    assert matcher.levels("a.b.example.co.uk") == ["example.co.uk", "b.example.co.uk",
                                                   "a.b.example.co.uk"]
    assert matcher.levels("www.city.kawasaki.jp") == ["city.kawasaki.jp",
                                                      "www.city.kawasaki.jp"]


def test_hashed_sets_hash_entries_as_the_scalar_word_hash_does():
    entries = ["example.com", "a" * 8, "b" * 9, "x" * 64, "y" * 65, "bücher.de", ""]
    hashed = HashedSet(entries)
    assert all(entry in hashed for entry in entries)
    assert "examp1e.com" not in hashed and "a" * 7 not in hashed
    assert sorted(hashed.hashes.tolist()) == sorted({word_hash(e.encode()) for e in entries})


# -- through the runner -----------------------------------------------------------------------
def test_url_filter_through_the_runner_accounts_for_every_document(tmp_path, ray_cluster):
    write_list(tmp_path / "lists" / "block.txt", "spam.example", "example.org/ad")
    write_list(tmp_path / "lists" / "allow.txt", "good.spam.example")
    urls = ["https://www.spam.example/1", "https://good.spam.example/2", "http://example.org/ad",
            "http://example.org/article", None, "https://casino-poker.example/", ""]
    write_jsonl(tmp_path / "in" / "a.jsonl", [{"id": f"d{i}", "text": f"page {i}", "url": u}
                                              for i, u in enumerate(urls)])
    spec = write_spec(tmp_path / "job.yaml", """\
name: url-filter
input: {format: jsonl, paths: ["in/*.jsonl"]}
output: {path: out}
stages:
  - url_filter: {blocklist: [lists/block.txt], allowlist: [lists/allow.txt],
                 soft_words: [casino, poker], soft_word_threshold: 2}
""")
    run_job(load_spec(spec), progress=False)
    out = tmp_path / "out"
    kept = pq.read_table(out / "data").to_pylist()
    rejected = pq.read_table(out / "rejected").to_pylist()
    assert sorted(r["id"] for r in kept) == ["d1", "d3", "d4", "d6"]
    assert {r["id"]: r["reason"] for r in rejected} == {
        "d0": "url_blocklist:domain=spam.example", "d2": "url_blocklist:url=example.org/ad",
        "d5": "url_soft_words:count=2"}
    (manifest,) = assert_accounting(out)
    step = next(s for s in manifest["stages"] if s["stage"] == "url_filter")
    assert (step["in"], step["kept"], step["rejected"]) == (7, 4, 3)
    assert step["counters"] == {"no_url": 2, "allowlisted": 1, "unparsed_url": 0}


# -- hostile input --------------------------------------------------------------------------
def test_hundred_thousand_character_urls_are_judged(tmp_path):
    block = write_list(tmp_path / "block.txt", "example.com", "example.net/" + "p" * 5000)
    long_path = "https://www.example.com/" + "a/" * 50_000
    many_labels = "https://" + "a." * 50_000 + "example.com/"
    long_unicode_host = "https://" + "ü" * 100_000 + ".example.org/"
    long_words = "https://ok.example/" + "-".join(["word"] * 20_000) + "-porn"
    long_listed = "http://example.net/" + "p" * 5000
    reasons, counters = judge([long_path, many_labels, long_unicode_host, long_words,
                               long_listed], blocklist=[block], banned_words=["porn"],
                              soft_words=["word", "other"], banned_subwords=["zzz"])
    assert reasons[:3] == ["url_blocklist:domain=example.com"] * 2 + [None]
    assert reasons[3] == "url_word:word=porn"
    assert reasons[4].startswith("url_blocklist:url=example.net/ppp") and \
        reasons[4].endswith("…") and len(reasons[4]) < 250
    assert Counter(counters) == Counter({"no_url": 0, "allowlisted": 0, "unparsed_url": 0})
