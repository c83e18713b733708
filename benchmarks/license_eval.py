"""License detection on trafilatura's evaluation pages: precision, recall, confusion, speed.

64 of the 400 pages carry a license annotation (`CC BY-SA 3.0 DE`, `CC-BY-SA`, ...); the
others have `""`, which means "not annotated", not "no license" (several plainly carry a
rel=license link). So precision and recall are scored on the 64, and what the stage says
about the other 336 is counted separately, by signal.

Annotations name ports inconsistently (`CC BY 3.0` for a page linking `/by/3.0/de/`), and
some have no version (`CC-BY-SA`). A prediction is correct when its license elements match
and, where the annotation states a version, the version matches too; exact id agreement
(port included) is printed beside it.

    python benchmarks/license_eval.py [DIR]     # DIR: CURATION_EVAL_DIR or /work/shared/eval
"""

from __future__ import annotations

import gzip
import json
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stages._license.spdx import cc_elements, spdx_from_text  # noqa: E402
from stages.license import License, LicenseConfig  # noqa: E402

AIM_PRECISION, AIM_RECALL = 0.98, 0.90


def version_of(spdx: str | None) -> str | None:
    m = re.search(r"-(\d\.\d)(?:-|$)", spdx or "")
    return m.group(1) if m else None


def agrees(predicted: str | None, truth: str) -> bool:
    if predicted is None:
        return False
    if cc_elements(predicted) != cc_elements(truth):
        return False
    return version_of(truth) is None or version_of(truth) == version_of(predicted)


def family_version(spdx: str | None) -> str:
    """CC-BY-SA-3.0-DE -> CC-BY-SA-3.0 (ports aside); CC-BY-SA -> CC-BY-SA."""
    if spdx is None:
        return "none"
    elements = cc_elements(spdx)
    if elements is None:
        return spdx
    family = "CC-" + "-".join(e for e in ("BY", "NC", "ND", "SA") if e in elements)
    version = version_of(spdx)
    return f"{family}-{version}" if version else family


def main(argv: list[str]) -> int:
    root = Path(argv[0] if argv else os.environ.get("CURATION_EVAL_DIR", "/work/shared/eval"))
    folder = root / "extraction" / "trafilatura-eval"
    pages = json.loads((folder / "evaldata-subset.json").read_text(encoding="utf-8"))
    stage = License(LicenseConfig())
    stage.setup()
    labelled, predicted_ok, predicted_labelled, exact = 0, 0, 0, 0
    confusion: Counter = Counter()
    misses: list[str] = []
    unlabelled_hits: Counter = Counter()
    unlabelled_examples: list[str] = []
    seconds = 0.0
    html_bytes = 0
    for url, entry in pages.items():
        html = gzip.decompress((folder / "html" / f"{entry['file']}.gz").read_bytes())
        html_bytes += len(html)
        started = time.perf_counter()
        spdx, evidence = stage.detect(html, url)
        seconds += time.perf_counter() - started
        truth_text = entry.get("license") or ""
        if not truth_text:
            if spdx:
                kind = evidence.split(" in ", 1)[0]
                unlabelled_hits[kind] += 1
                unlabelled_examples.append(f"{spdx:<20} {evidence[:110]}  <{url[:60]}>")
            continue
        truth = spdx_from_text(truth_text)[0][0]
        labelled += 1
        predicted_labelled += spdx is not None
        ok = agrees(spdx, truth)
        predicted_ok += ok
        exact += spdx == truth
        confusion[(family_version(truth), family_version(spdx))] += 1
        if not ok:
            misses.append(f"{truth_text!r:<22} -> {spdx}  [{evidence}]  <{url[:70]}>")

    precision = predicted_ok / predicted_labelled if predicted_labelled else 0.0
    recall = predicted_ok / labelled if labelled else 0.0
    print(f"license precision (annotated pages): {precision:.3f}  "
          f"({predicted_ok}/{predicted_labelled}; aim >= {AIM_PRECISION})")
    print(f"license recall (annotated pages): {recall:.3f}  "
          f"({predicted_ok}/{labelled}; aim >= {AIM_RECALL})")
    print(f"license exact id incl. port (annotated pages): {exact / labelled:.3f}  "
          f"({exact}/{labelled}; annotations name ports inconsistently)")
    print(f"license speed: {len(pages) / seconds:.0f} pages/s on one core "
          f"({seconds / len(pages) * 1000:.2f} ms/page, mean page "
          f"{html_bytes / len(pages) / 1024:.0f} KiB of HTML)")
    unlabelled = len(pages) - labelled
    print(f"license found on unannotated pages: {sum(unlabelled_hits.values())}/{unlabelled} "
          f"(by deciding signal: {dict(unlabelled_hits.most_common())})")
    print("per-SPDX confusion (annotation -> prediction, family and version):")
    for (truth, predicted), count in sorted(confusion.items()):
        mark = "" if agrees(None if predicted == "none" else predicted, truth) \
            else "  <-- differs"
        print(f"  {truth:<18} -> {predicted:<18} {count}{mark}")
    if misses:
        print("misses:")
        for line in misses:
            print("  " + line)
    print("predictions on unannotated pages (not scored):")
    for line in unlabelled_examples:
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
