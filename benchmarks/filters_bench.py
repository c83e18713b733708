"""Filter stages on real pages: documents per second per core, each beside a baseline run on
the same documents in the same invocation (DataTrove's filter where it has one).

    python benchmarks/filters_bench.py [--eval-dir DIR] [--only url_filter,keyword_filter]
        [--passes 5] [--rounds 3] [--dt-venv PATH] [--workdir DIR] [--out figures.json]

Documents: the 990 pages of trafilatura's evaluation set (DIR/extraction/trafilatura-eval and
trafilatura-eval-rest; DIR: $CURATION_EVAL_DIR or ../shared/eval), each with its real URL and
its main text (resiliparse). They are written once to WORKDIR/docs.jsonl, which DataTrove's
side reads too.

Each stage has one function, `bench_<stage>(bench) -> dict`, listed in BENCHES: it prints
one line per figure and returns them. Times are CPU seconds of the process doing the work
(this one for ours, DataTrove's subprocess for theirs), the median of `--passes`, so "per
core" holds on a machine shared with other work; loading lists is timed apart. CPU time
still stretches when a neighbour shares the core, so a baseline in another process runs in
`--rounds` rounds, each the baseline then ours, and the ratio is printed round by round.

DataTrove runs in its own venv (`--dt-venv`, created with DataTrove 0.10.1 when missing, as
compare_datatrove.py does) through benchmarks/_datatrove_filters.py, which imports nothing
from this repository.

- url_filter: against DataTrove's URLFilter with its integrated lists (FineWeb's
  configuration: 4.56M domains, 19.6k URLs, banned words, sub-words and soft words, which
  DataTrove ships) and ours reading the same files. The documents are the 990 real URLs plus
  one planted URL per four real ones on listed domains and listed pages, so both sides do
  their blocking work; the host cache of ours is emptied before every pass (every host is
  new to it). Also printed: where the two disagree, and the cost of loading the lists.
- keyword_filter: lists of 100, 1,000 and 10,000 phrases (the LDNOOBW lists of all
  languages in ../shared/data/ldnoobw, then word pairs drawn from the pages), against two
  plain baselines: one Python regex alternation with word boundaries (timed on every 10th
  page, once: it takes minutes at 10,000 phrases), and a lookup of every word 1..n-gram of
  the text in a set (n = the longest phrase).
- badwords: C4's rule (any hit rejects) with each page's language from our `langid`,
  against DataTrove's C4BadWordsFilter given the same language and the same list files (the
  LDNOOBW copies our package ships, put where it would download them). Pages the two judge
  differently are printed with the reason.
- pii: docs/s per core of `mode: redact` with every kind, and with e-mails and IPs only
  (what DataTrove's PIIFormatter looks for), against PIIFormatter; then precision and recall
  on the planted set of benchmarks/_pii_planted.py: the real pages with Faker's e-mails,
  phones, IPs, cards, IBANs and SSNs from ten locales planted in them, and the same pages
  clean, whose findings are checked against benchmarks/pii_clean_audit.tsv (real contact
  data on a page is no false redaction; anything not audited counts as one).
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import psutil
import pyarrow as pa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _eval_pages import eval_dir  # noqa: E402
from _pii_planted import LOCALES, covered, digest, phone_family, plant, read_audit  # noqa: E402
from compare_datatrove import DATATROVE, datatrove_python  # noqa: E402
from stages._badwords.lists import entries, list_name  # noqa: E402
from stages._keyword_filter.phrases import spaced_words  # noqa: E402
from stages._pii.detect import PiiFinder  # noqa: E402
from stages._shared.list_files import list_entries  # noqa: E402
from stages.badwords import Badwords, BadwordsConfig  # noqa: E402
from stages.keyword_filter import KeywordFilter, KeywordFilterConfig  # noqa: E402
from stages.langid import LangId, LangIdConfig  # noqa: E402
from stages.pii import Pii, PiiConfig  # noqa: E402
from stages.url_filter import UrlFilter, UrlFilterConfig  # noqa: E402

DEFAULT_DT_VENV = Path(tempfile.gettempdir()) / "curation-bench-datatrove-0.10.1"
EVAL_SETS = (("trafilatura-eval", "evaldata-subset.json"),
             ("trafilatura-eval-rest", "evaldata-rest.json"))


@dataclass(frozen=True)
class Doc:
    id: str
    url: str
    text: str


@dataclass(frozen=True)
class Bench:
    """What every stage's benchmark gets: the documents, where they lie, and the settings."""

    docs: list[Doc]
    docs_file: Path
    eval_dir: Path
    work: Path
    dt_python: Path
    passes: int
    rounds: int


# -- shared -----------------------------------------------------------------------------------
def real_documents(folder: Path) -> list[Doc]:
    """Every page of trafilatura's evaluation set: its URL and main text."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    docs = []
    for name, index in EVAL_SETS:
        base = folder / "extraction" / name
        if not (base / index).exists():
            raise SystemExit(f"no {base / index}; pass the eval folder as --eval-dir or set "
                             "CURATION_EVAL_DIR")
        for number, (url, entry) in enumerate(sorted(json.loads((base / index).read_text())
                                                     .items())):
            raw = gzip.open(base / "html" / f"{entry['file']}.gz").read()
            text = extract_plain_text(bytes_to_str(raw, detect_encoding(raw)),
                                      main_content=True)
            docs.append(Doc(f"{name}/{number}", url, text))
    return docs


def write_docs(path: Path, docs: list[Doc]) -> Path:
    path.write_text("".join(json.dumps({"id": d.id, "url": d.url, "text": d.text}) + "\n"
                            for d in docs), encoding="utf-8")
    return path


def table_of(docs: list[Doc]) -> pa.Table:
    return pa.table({"id": [d.id for d in docs], "url": [d.url for d in docs],
                     "text": [d.text for d in docs]})


def median_cpu(fn: Callable[[], object], passes: int, before: Callable[[], object] = None):
    """Median CPU seconds of `fn` over `passes` (`before` runs untimed ahead of each)."""
    times = []
    for _ in range(passes):
        if before is not None:
            before()
        started = time.process_time()
        fn()
        times.append(time.process_time() - started)
    return statistics.median(times)


def run_datatrove(bench: Bench, name: str, docs_file: Path, options: dict) -> dict:
    result = bench.work / f"datatrove-{name}.json"
    env = dict(os.environ, HF_HOME=str(bench.work / "hf"), HF_HUB_OFFLINE="1")
    subprocess.run([str(bench.dt_python), str(HERE / "_datatrove_filters.py"), "--filter", name,
                    "--docs", str(docs_file), "--passes", str(bench.passes), "--options",
                    json.dumps(options), "--result", str(result)], check=True, env=env)
    return json.loads(result.read_text())


def rss_mb() -> float:
    """This process's resident memory now, in MiB."""
    return psutil.Process().memory_info().rss / 2**20


def line(stage: str, text: str) -> None:
    print(f"{stage:<15} {text}", flush=True)


# -- url_filter --------------------------------------------------------------------------------
def bench_url_filter(bench: Bench) -> dict:
    lists = datatrove_url_lists(bench)
    docs = bench.docs + planted_urls(lists, bench.docs, len(bench.docs) // 4)
    docs_file = write_docs(bench.work / "url_docs.jsonl", docs)
    before = rss_mb()
    stage = UrlFilter(UrlFilterConfig(
        blocklist=[str(lists / "domains"), str(lists / "urls")],
        banned_words_files=[str(lists / "banned_words.txt")],
        soft_words_files=[str(lists / "soft_banned_words.txt")],
        banned_subwords_files=[str(lists / "banned_subwords.txt")], soft_word_threshold=2))
    started = time.process_time()
    stage.prepared = stage.prepare()
    load_s = time.process_time() - started
    grown = rss_mb() - before
    stage.setup()
    table = table_of(docs)

    rounds, their_rss = [], []  # DataTrove then ours: both meet the same load
    for _ in range(bench.rounds):
        theirs = run_datatrove(bench, "url_filter", docs_file, {"use_integrated_lists": True})
        their_rss.append(theirs["loaded_mb"])
        ours_s = median_cpu(lambda: stage.process(table), bench.passes,
                            before=stage.matcher.hosts.clear)
        rounds.append((len(docs) / ours_s, len(docs) / statistics.median(theirs["pass_s"])))
    ours_rate, theirs_rate = (statistics.median(side) for side in zip(*rounds))
    ratios = [ours / theirs for ours, theirs in rounds]
    block = stage.prepared.block
    hashes_mb = (block.domains.hashes.nbytes + block.urls.hashes.nbytes) / 2**20
    line("url_filter", f"docs/s per core: ours {ours_rate:,.0f}, DataTrove URLFilter "
                       f"{theirs_rate:,.0f}; ratio by round "
                       f"{', '.join(f'{r:.2f}x' for r in ratios)} ({len(docs):,} docs: "
                       f"{len(bench.docs):,} real URLs + {len(docs) - len(bench.docs):,} "
                       f"planted; same lists: {len(block.domains):,} domains, "
                       f"{len(block.urls):,} URLs, banned/soft/sub-words)")
    line("url_filter", f"loading the lists: ours {load_s:.1f} CPU s, resident memory "
                       f"+{grown:,.0f} MiB ({hashes_mb:.0f} MiB of hashes); DataTrove "
                       f"{theirs['load_s']:.1f} CPU s, +{min(their_rss):,.0f}-"
                       f"{max(their_rss):,.0f} MiB (Python sets of str)")
    out = stage.process(table)
    ours_decisions = dict(zip(table["id"].to_pylist(), out.reasons.to_pylist()))
    agreement = compare_decisions(ours_decisions, theirs["decisions"], docs)
    return {"docs": len(docs), "ours_docs_per_s": ours_rate,
            "datatrove_docs_per_s": theirs_rate, "ratios": ratios,
            "ours_load_s": load_s, "datatrove_load_s": theirs["load_s"],
            "ours_hashes_mb": hashes_mb, "ours_loaded_mb": grown,
            "datatrove_loaded_mb": their_rss,
            "agreement": agreement}


def datatrove_url_lists(bench: Bench) -> Path:
    """DataTrove's bundled URL lists, unpacked under the work folder."""
    assets = subprocess.run([str(bench.dt_python), "-c", "from datatrove.utils._import_utils "
                             "import ASSETS_PATH; print(ASSETS_PATH)"], check=True,
                            capture_output=True, text=True).stdout.strip()
    target = bench.work / "url_lists"
    if not (target / "domains").exists():
        import tarfile
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(Path(assets) / "url_filterblacklistsv0_3_0.tar.gz") as tar:
            tar.extractall(target, filter="data")
    for name in ("banned_words.txt", "soft_banned_words.txt", "banned_subwords.txt"):
        (target / name).write_bytes((Path(assets) / name).read_bytes())
    return target


def planted_urls(lists: Path, real: list[Doc], count: int) -> list[Doc]:
    """URLs on listed domains (some on a sub-domain) and listed pages (with a scheme, as a
    crawl records them), each with a real page's text and path."""
    rng = random.Random(19)
    domains = rng.sample(list(list_entries(str(lists / "domains"))), count * 4 // 5)
    pages = rng.sample(list(list_entries(str(lists / "urls"))), count - len(domains))
    planted = []
    for number, domain in enumerate(domains):
        source = rng.choice(real)
        path = source.url.split("/", 3)[3] if source.url.count("/") >= 3 else ""
        host = rng.choice(("", "www.", "m.", "en.")) + domain
        planted.append(Doc(f"planted/{number}", f"https://{host}/{path}", source.text))
    for number, page in enumerate(pages):
        planted.append(Doc(f"planted-page/{number}", f"http://{page}", rng.choice(real).text))
    return planted


def compare_decisions(ours: dict, theirs: dict, docs: list[Doc]) -> dict:
    both = [d for d in docs if ours[d.id] and theirs[d.id]]
    only_ours = [d for d in docs if ours[d.id] and not theirs[d.id]]
    only_theirs = [d for d in docs if theirs[d.id] and not ours[d.id]]
    line("url_filter", f"decisions: both reject {len(both):,}, only ours {len(only_ours):,}, "
                       f"only DataTrove {len(only_theirs):,}, both keep "
                       f"{len(docs) - len(both) - len(only_ours) - len(only_theirs):,}")
    for name, group, reasons in (("only ours", only_ours, ours),
                                 ("only DataTrove", only_theirs, theirs)):
        kinds: dict[str, int] = {}
        for d in group:
            kind = reasons[d.id].split("=")[0]
            kinds[kind] = kinds.get(kind, 0) + 1
        examples = "; ".join(f"{d.url[:70]} ({reasons[d.id]})" for d in group[:3])
        if group:
            line("url_filter", f"  {name}: {kinds}; e.g. {examples}")
    return {"both": len(both), "only_ours": len(only_ours), "only_datatrove": len(only_theirs)}


# -- keyword_filter ----------------------------------------------------------------------------
def bench_keyword_filter(bench: Bench) -> dict:
    texts = [d.text for d in bench.docs]
    table = pa.table({"text": texts})
    pool = phrase_pool(bench.eval_dir, texts)
    figures = {}
    for size in (100, 1_000, 10_000):
        phrases = pool[:size]
        path = bench.work / f"topic_{size}.txt"
        path.write_text("\n".join(phrases) + "\n", encoding="utf-8")
        stage = KeywordFilter(KeywordFilterConfig(lists=[str(path)], mode="annotate"))
        stage.setup()
        ours_s = median_cpu(lambda: stage.process(table), bench.passes)
        hits = stage.process(table).table["keyword_hits"].to_pylist()

        pattern = regex_of(phrases)  # slow at thousands of phrases: every 10th page, once
        regex_s = median_cpu(lambda: [regex_hits(pattern, t) for t in texts[::10]], 1) * 10
        grams = set(phrases)
        longest = max(p.count(" ") + 1 for p in phrases)
        ngram_s = median_cpu(lambda: [ngram_hits(grams, longest, t) for t in texts],
                             bench.passes)
        same = sum(h == ngram_hits(grams, longest, t) for h, t in zip(hits, texts))
        rates = {k: len(texts) / s for k, s in (("ours", ours_s), ("regex", regex_s),
                                                  ("ngram_set", ngram_s))}
        line("keyword_filter", f"{size:>6,} phrases: docs/s per core ours {rates['ours']:,.0f}, "
                               f"regex alternation {rates['regex']:,.0f} "
                               f"({rates['ours'] / rates['regex']:.1f}x), n-gram set "
                               f"{rates['ngram_set']:,.0f} "
                               f"({rates['ours'] / rates['ngram_set']:.1f}x); "
                               f"{sum(h > 0 for h in hits):,} of {len(texts):,} docs hit; "
                               f"distinct hits equal to the n-gram set's in {same:,}")
        figures[size] = rates | {"docs_hit": sum(h > 0 for h in hits), "agree": same}
    return figures


def phrase_pool(folder: Path, texts: list[str]) -> list[str]:
    """LDNOOBW's entries (every language), then word pairs from the pages, shuffled apart."""
    rng = random.Random(4)
    ldnoobw = folder.parent / "data" / "ldnoobw"
    bad = sorted({spaced_words(e) for f in sorted(ldnoobw.glob("*")) if len(f.name) <= 3
                  for e in list_entries(str(f))} - {""}) if ldnoobw.is_dir() else []
    rng.shuffle(bad)
    pairs = set()
    while len(pairs) < 10_000:
        words = spaced_words(rng.choice(texts)).split()
        if len(words) > 2:
            at = rng.randrange(len(words) - 1)
            pairs.add(" ".join(words[at:at + 2]))
    pairs = sorted(pairs - set(bad))
    rng.shuffle(pairs)
    return bad + pairs


def regex_of(phrases: list[str]) -> re.Pattern:
    alternatives = "|".join(re.escape(p).replace(r"\ ", r"\W+")
                            for p in sorted(phrases, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def regex_hits(pattern: re.Pattern, text: str) -> int:
    return len({m.group(0).casefold() for m in pattern.finditer(text)})


def ngram_hits(grams: set[str], longest: int, text: str) -> int:
    words = spaced_words(text).split()
    return len({g for n in range(1, longest + 1) for i in range(len(words) - n + 1)
                if (g := " ".join(words[i:i + n])) in grams})


# -- badwords ----------------------------------------------------------------------------------
def bench_badwords(bench: Bench) -> dict:
    """C4's rule (any hit rejects) on the real pages, each with the list of the language
    `langid` gives it, beside DataTrove's C4BadWordsFilter reading the same list files (its
    `language` metadata set from the same `lang`)."""
    langs = page_languages(bench)
    rows = [{"id": d.id, "url": d.url, "text": d.text, "language": lang or "unknown"}
            for d, lang in zip(bench.docs, langs)]
    docs_file = bench.work / "badwords_docs.jsonl"
    docs_file.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    lists = Path(importlib.util.find_spec("stages._badwords").submodule_search_locations[0],
                 "lists")
    table = pa.table({"id": [d.id for d in bench.docs], "text": [d.text for d in bench.docs],
                      "lang": langs})
    stage = Badwords(BadwordsConfig())
    stage.process(table)  # builds each language's matcher (DataTrove's regexes: pass 1)
    ours_rate, theirs_rate, ratios, theirs = versus_datatrove(
        bench, "c4_badwords", docs_file, {"lists": str(lists)}, lambda: stage.process(table),
        len(rows))
    out = stage.process(table)
    ours = dict(zip(table["id"].to_pylist(), out.reasons.to_pylist()))
    line("badwords", f"docs/s per core: ours {ours_rate:,.0f}, DataTrove C4BadWordsFilter "
                     f"{theirs_rate:,.0f}; ratio by round "
                     f"{', '.join(f'{r:.2f}x' for r in ratios)} ({len(rows):,} pages, "
                     f"languages {language_mix(langs)})")
    both = [i for i in ours if ours[i] and theirs["decisions"][i]]
    only_ours = [i for i in ours if ours[i] and not theirs["decisions"][i]]
    only_theirs = [i for i in ours if theirs["decisions"][i] and not ours[i]]
    line("badwords", f"rejected: both {len(both)}, only ours {len(only_ours)}, only DataTrove "
                     f"{len(only_theirs)} (of {len(rows):,})")
    texts = {d.id: d.text for d in bench.docs}
    lang_of = dict(zip(table["id"].to_pylist(), langs))
    for name, group in (("only ours", only_ours), ("only DataTrove", only_theirs)):
        for doc_id in group[:6]:
            line("badwords", f"  {name}: {doc_id} ({lang_of[doc_id]}): "
                             f"{c4_match(lists, lang_of[doc_id], texts[doc_id])}")
    return {"docs": len(rows), "ours_docs_per_s": ours_rate, "datatrove_docs_per_s": theirs_rate,
            "ratios": ratios, "both": len(both), "only_ours": len(only_ours),
            "only_datatrove": len(only_theirs)}


def versus_datatrove(bench: Bench, name: str, docs_file: Path, options: dict,
                     ours: Callable[[], object], docs: int):
    """`--rounds` rounds of DataTrove's `name` then `ours`, both timed on the same load:
    (our docs/s, theirs, the ratio of each round, DataTrove's last result), the rates being
    the medians over the rounds."""
    rounds = []
    for _ in range(bench.rounds):
        theirs = run_datatrove(bench, name, docs_file, options)
        rounds.append((docs / median_cpu(ours, bench.passes),
                       docs / statistics.median(theirs["pass_s"])))
    ours_rate, theirs_rate = (statistics.median(side) for side in zip(*rounds))
    return ours_rate, theirs_rate, [o / t for o, t in rounds], theirs


def page_languages(bench: Bench) -> list[str | None]:
    """`lang` of each page as our `langid` stage gives it (every score kept)."""
    stage = LangId(LangIdConfig(min_score=0.0))
    stage.setup()
    return stage.process(table_of(bench.docs)).table["lang"].to_pylist()


def language_mix(langs: list[str | None]) -> str:
    counts: dict[str, int] = {}
    for lang in langs:
        counts[lang or "none"] = counts.get(lang or "none", 0) + 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{lang} {n}" for lang, n in top[:6]) + (", ..." if len(top) > 6 else "")


def c4_match(lists: Path, lang: str | None, text: str) -> str:
    """What C4's regex, built as DataTrove builds it (list lines as they are, the text
    lower-cased), matches first in `text`: why the two sides differ on a page."""
    name = list_name(lang)
    if name is None:
        return "no list"
    words = [re.escape(line.strip()) for line in
             (lists / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    pattern = re.compile("|".join(words) if name in ("ja", "th", "zh")
                         else r"(?:\W|^)({})(?:\W|$)".format("|".join(words)))
    lowered = text.lower()
    found = pattern.search(lowered)
    if found is None:
        ours = [e for e in entries(name) if re.search(rf"(?<!\w){re.escape(e)}(?!\w)", lowered)]
        return f"C4's regex finds nothing; ours finds {ours[:3]} (list lines in capitals: " \
               f"DataTrove lower-cases the text, not the list)"
    return f"C4's regex matches {lowered[max(0, found.start() - 25):found.end() + 25]!r}"


# -- pii ---------------------------------------------------------------------------------------
def bench_pii(bench: Bench) -> dict:
    """Speed on the real pages beside DataTrove's PIIFormatter (e-mails and IPv4 only), and
    precision and recall on the planted set (_pii_planted.py)."""
    langs = page_languages(bench)
    clean = pa.table({"text": [d.text for d in bench.docs], "lang": langs})
    figures = {}
    for label, types in (("all kinds", None), ("e-mail + IP, as DataTrove", ["email", "ip"])):
        stage = Pii(PiiConfig(mode="redact", **({"types": types} if types else {})))
        stage.process(clean)  # phone-plan metadata loads on first use
        rate, theirs_rate, ratios, _ = versus_datatrove(
            bench, "pii_formatter", bench.docs_file, {}, lambda: stage.process(clean),
            len(bench.docs))
        line("pii", f"docs/s per core, {label}: ours {rate:,.0f}, DataTrove PIIFormatter "
                    f"(e-mails, IPv4) {theirs_rate:,.0f}; ratio by round "
                    f"{', '.join(f'{r:.2f}x' for r in ratios)} ({len(bench.docs):,} real "
                    f"pages, {sum(len(d.text) for d in bench.docs) / len(bench.docs):,.0f} "
                    f"chars on average)")
        key = "all" if types is None else "email_ip"
        figures |= {f"ours_docs_per_s_{key}": rate, f"datatrove_docs_per_s_{key}": theirs_rate,
                    f"ratios_{key}": ratios}

    finder = PiiFinder()
    audit = read_audit()
    clean_found = finder.find_batch(clean["text"], langs)
    verdicts = {"pii": 0, "not_pii": 0, "unaudited": 0}
    for doc, findings in zip(bench.docs, clean_found):
        for f in findings:
            verdict, note = audit.get((doc.id, f.kind, digest(doc.text[f.start:f.end])),
                                      ("unaudited", ""))
            verdicts[verdict] += 1
            if verdict != "pii":
                line("pii", f"  clean page {doc.id}: {f.kind} {verdict}"
                            f"{': ' + note if note else ''} "
                            f"({doc.text[max(0, f.start - 30):f.end + 10]!r})")
    false_rate = 100 * (verdicts["not_pii"] + verdicts["unaudited"]) / len(bench.docs)
    line("pii", f"clean pages: {sum(map(len, clean_found))} findings on {len(bench.docs):,} "
                f"pages: {verdicts['pii']} real personal data (audited), {verdicts['not_pii']} "
                f"not, {verdicts['unaudited']} not audited -> {false_rate:.2f} false redactions "
                f"per 100 pages (aim <= 1)")

    pages = plant([(d.id, d.text) for d in bench.docs])
    found = finder.find_batch(pa.array([p.text for p in pages]), [p.lang for p in pages])
    recall: dict[str, list[int]] = {}
    extra = {"planted": 0, "host": 0, "false": 0}
    host_real = {(d.id, f.kind, digest(d.text[f.start:f.end]))
                 for d, fs in zip(bench.docs, clean_found) for f in fs}
    for page, findings in zip(pages, found):
        for kind, start, end, template in page.planted:
            hit = covered(kind, start, end, page.text, findings)
            names = [kind] + ([f"phone ({phone_family(template)})"] if kind == "phone" else [])
            for name in names:
                recall.setdefault(name, [0, 0])
                recall[name][0] += hit
                recall[name][1] += 1
        for f in findings:
            if any(f.start < end and start < f.end for _, start, end, _ in page.planted):
                extra["planted"] += 1
            elif (page.id.split("#")[0], f.kind, digest(page.text[f.start:f.end])) in host_real:
                extra["host"] += 1
            else:
                extra["false"] += 1
                if extra["false"] <= 5:
                    line("pii", f"  planted page {page.id} ({page.lang}): {f.kind} elsewhere "
                                f"({page.text[max(0, f.start - 30):f.end + 10]!r})")
    aims = {"email": 0.99, "ip": 0.99, "card": 0.99, "iban": 0.99, "phone": 0.95}
    for name, (hits, total) in sorted(recall.items()):
        aim = f" (aim >= {aims[name]})" if name in aims else ""
        line("pii", f"recall {name}: {hits / total:.3f} of {total}{aim}")
    line("pii", f"planted pages: {extra['planted']} findings on planted values, {extra['host']} "
                f"on the host page's own real data, {extra['false']} elsewhere "
                f"({len(pages):,} pages, {len(LOCALES)} locales)")
    figures |= {"clean_false_per_100_pages": false_rate, "clean_verdicts": verdicts,
                "recall": {name: hits / total for name, (hits, total) in recall.items()},
                "planted_pages_false": extra["false"]}
    return figures


BENCHES: dict[str, Callable[[Bench], dict]] = {
    "url_filter": bench_url_filter,
    "keyword_filter": bench_keyword_filter,
    "badwords": bench_badwords,
    "pii": bench_pii,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-dir", default=None,
                        help="eval data (default: $CURATION_EVAL_DIR or ../shared/eval)")
    parser.add_argument("--only", default=",".join(BENCHES), help="stages, comma-separated")
    parser.add_argument("--passes", type=int, default=5, help="timed passes; median counts")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of baseline then ours, "
                        "where the baseline runs in another process")
    parser.add_argument("--dt-venv", default=str(DEFAULT_DT_VENV),
                        help="DataTrove's venv: created if missing, reused otherwise")
    parser.add_argument("--workdir", default=None, help="keep documents and lists here")
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args()

    chosen = args.only.split(",")
    unknown = [name for name in chosen if name not in BENCHES]
    if unknown:
        raise SystemExit(f"unknown stages {unknown}; choose from {sorted(BENCHES)}")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="filters-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    folder = eval_dir(args.eval_dir)
    docs = real_documents(folder)
    bench = Bench(docs, write_docs(work / "docs.jsonl", docs), folder, work,
                  datatrove_python(Path(args.dt_venv), DATATROVE), args.passes, args.rounds)
    print(f"{len(docs):,} real pages, {sum(len(d.text) for d in docs) / len(docs):,.0f} chars "
          f"on average; CPU seconds, median of {args.passes} passes; machine: "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}", flush=True)
    figures = {name: BENCHES[name](bench) for name in chosen}
    if args.out:
        Path(args.out).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
