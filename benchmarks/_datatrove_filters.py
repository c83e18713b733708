"""DataTrove's side of filters_bench.py: one DataTrove filter over a JSONL of documents, timed
in CPU seconds of this process. Runs with the Python of DataTrove's own venv and imports
nothing from this repository.

    python _datatrove_filters.py --filter url_filter --docs docs.jsonl --passes 5
        --result result.json [--options '{...}']

Each filter is one function in FILTERS that builds the filter from the JSON options and loads
its lists (timed apart, as `load_s`); then every pass calls `filter(doc)` on each document.
The result holds the load time, the CPU seconds of each pass, how much resident memory
loading added and each document's decision (null = kept, else DataTrove's reason).
"""

from __future__ import annotations

import argparse
import json
import resource
import time

from datatrove.data import Document


def url_filter(options: dict):
    """URLFilter with its integrated lists (FineWeb's configuration), made offline: its
    tldextract reads the Public Suffix List snapshot it ships instead of fetching it."""
    from datatrove.pipeline.filters import URLFilter
    from tldextract import TLDExtract

    block = URLFilter(**options)
    block.tldextractor = TLDExtract(cache_dir=None, suffix_list_urls=())
    block.download_data()  # unpacks and reads the bundled lists (named "download")
    return block


def c4_badwords(options: dict):
    """C4BadWordsFilter reading the LDNOOBW files at `options["lists"]` (the copies our
    package ships) where it would download the same lists from GitHub; a document's language
    comes from its `language` metadata."""
    from datatrove.pipeline.filters import c4_filters

    def local_copy(url: str, **_) -> str:
        return f"{options['lists']}/{url.rsplit('/', 1)[1]}"  # .../<lang>

    c4_filters.cached_asset_path_or_download = local_copy
    return c4_filters.C4BadWordsFilter(fail_on_missing_language=False)


class _Formatting:
    """A formatter in the filter loop: every document kept, its text rewritten."""

    def __init__(self, formatter):
        self.formatter = formatter

    def filter(self, doc) -> bool:
        doc.text = self.formatter.format(doc.text)
        return True


def pii_formatter(options: dict):
    """PIIFormatter with its defaults: e-mails and public IPv4 addresses replaced."""
    from datatrove.pipeline.formatters import PIIFormatter

    return _Formatting(PIIFormatter(**options))


FILTERS = {"url_filter": url_filter, "c4_badwords": c4_badwords,
           "pii_formatter": pii_formatter}


def rss_mb() -> float:
    """This process's resident memory now (Linux), in MiB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filter", required=True, choices=sorted(FILTERS))
    parser.add_argument("--docs", required=True, help="JSONL with id, text, url")
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--options", default="{}", help="JSON keyword arguments")
    parser.add_argument("--result", required=True)
    args = parser.parse_args()

    with open(args.docs, encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines]
    rss_before, start = rss_mb(), time.process_time()
    step = FILTERS[args.filter](json.loads(args.options))
    load_s = time.process_time() - start
    loaded_mb = rss_mb() - rss_before

    decisions: dict[str, str | None] = {}
    passes = []
    for _ in range(args.passes):
        docs = [Document(text=r["text"], id=r["id"],
                         metadata={k: r[k] for k in ("url", "language") if k in r}) for r in rows]
        start = time.process_time()
        results = [step.filter(doc) for doc in docs]
        passes.append(time.process_time() - start)
    for row, result in zip(rows, results):
        kept = result if isinstance(result, bool) else result[0]
        decisions[row["id"]] = None if kept else (result[1] if isinstance(result, tuple)
                                                  else "dropped")
    with open(args.result, "w", encoding="utf-8") as out:
        json.dump({"load_s": load_s, "pass_s": passes, "loaded_mb": loaded_mb,
                   "decisions": decisions}, out)


if __name__ == "__main__":
    main()
