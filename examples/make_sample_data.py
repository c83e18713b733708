"""Writes the bundled sample corpus (examples/data/) - deterministic, written by this project.

Three JSONL files of short web-like documents: articles of varied length, a few too short
to keep, and some exact repeats (for the dedup stages).
"""

import json
import random
from pathlib import Path

SENTENCES = [
    "The city council met on Tuesday to discuss the new public library budget.",
    "Researchers measured the growth of wheat under three irrigation schedules.",
    "A good sourdough starter needs flour, water, patience and a warm kitchen.",
    "The bridge was closed for repairs after engineers found cracks in two supports.",
    "Volunteers planted four hundred trees along the river during the weekend.",
    "Solar panels on school roofs now supply almost half of the district's electricity.",
    "The museum's new exhibit traces the history of printing from woodblocks to lasers.",
    "Local farmers reported an early harvest because of the unusually warm spring.",
    "Students built a small weather station and publish its readings every hour.",
    "The recipe calls for two cups of rice, one onion and a pinch of saffron.",
    "Cycling lanes on the main avenue cut average commute times by eight minutes.",
    "The orchestra will perform a programme of Baltic composers next month.",
    "Engineers tested the prototype battery through a thousand charging cycles.",
    "Birdwatchers counted more than sixty species at the wetland reserve this year.",
    "The committee recommended longer opening hours for the swimming pool in summer.",
    "A new ferry route connects the two islands in under forty minutes.",
]
SHORT = ["Click here to subscribe.", "Page not found.", "Copyright 2024. All rights reserved.",
         "Loading..."]


def document(rng: random.Random) -> str:
    paragraphs = []
    for _ in range(rng.randint(1, 6)):
        paragraphs.append(" ".join(rng.choice(SENTENCES) for _ in range(rng.randint(2, 6))))
    return "\n\n".join(paragraphs)


def main(out: Path = Path(__file__).parent / "data") -> None:
    rng = random.Random(20261125)
    out.mkdir(parents=True, exist_ok=True)
    serial = 0
    for part in range(3):
        rows = []
        for _ in range(80):
            serial += 1
            roll = rng.random()
            text = rng.choice(SHORT) if roll < 0.12 else (
                rows[rng.randrange(len(rows))]["text"] if roll < 0.2 and rows else document(rng))
            rows.append({"id": f"doc-{serial:04d}", "url": f"https://example.org/{serial}",
                         "text": text})
        with open(out / f"sample-{part}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)


if __name__ == "__main__":
    main()
