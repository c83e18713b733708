"""Writes a tiny labelled set for the classifier example (examples/data/classifier/),
deterministic, written by this project.

`hq.jsonl`: short news-like paragraphs built from varied subjects, verbs and objects.
`lq.jsonl`: the boilerplate and spam that web pages are full of (navigation, cookie banners,
calls to action). Enough for `pipeline train-classifier` to learn the difference in a second;
a real classifier needs real reference text (see docs/stages_langid_quality.md).
"""

import json
import random
from pathlib import Path

SUBJECTS = ["The city council", "Researchers", "The museum", "Local farmers", "Engineers",
            "The orchestra", "Volunteers", "Students", "The committee", "Birdwatchers",
            "The library", "A new ferry service", "The school board", "Doctors at the clinic"]
VERBS = ["discussed", "measured", "restored", "reported", "tested", "planned", "published",
         "counted", "presented", "reviewed", "described", "compared", "opened", "improved"]
OBJECTS = ["the new public library budget", "the growth of wheat under three schedules",
           "a history of printing from woodblocks to lasers", "an early harvest this spring",
           "the prototype battery after a thousand cycles", "a programme of Baltic composers",
           "more than sixty species at the wetland reserve", "the repairs to the old bridge",
           "longer opening hours for the swimming pool", "the readings of a weather station",
           "a faster route between the two islands", "the results of a survey of residents"]
TAILS = ["last week", "on Tuesday", "in a public meeting", "after months of work",
         "with support from the district", "according to a report", "this year", ""]
JUNK = ["Click here to subscribe", "Page not found", "Loading...", "Accept all cookies",
        "Buy now", "Sign in", "Share on Facebook", "Free shipping on all orders",
        "Copyright 2024. All rights reserved.", "Skip to main content", "Read more",
        "Best casino bonus", "Win a free phone", "Menu", "Home | About | Contact",
        "Subscribe to our newsletter", "This site uses cookies", "Limited offer, act now!",
        "Log in or register", "Next page", "Privacy policy", "Terms of use"]


def paragraph(rng: random.Random) -> str:
    sentences = []
    for _ in range(rng.randint(1, 4)):
        tail = rng.choice(TAILS)
        sentences.append(f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} "
                         f"{rng.choice(OBJECTS)}{' ' + tail if tail else ''}.")
    return " ".join(sentences)


def junk(rng: random.Random) -> str:
    return rng.choice([" ", "\n", " | "]).join(rng.choice(JUNK)
                                               for _ in range(rng.randint(1, 6)))


def main(out: Path = Path(__file__).parent / "data" / "classifier") -> None:
    rng = random.Random(20261125)
    out.mkdir(parents=True, exist_ok=True)
    for name, make in (("hq", paragraph), ("lq", junk)):
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps({"text": make(rng)}) + "\n" for _ in range(400))


if __name__ == "__main__":
    main()
