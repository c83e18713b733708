"""Writes the labelled sample of the edu-classifier example (data/labelled.jsonl):
documents with an `edu_score` from 0 to 5, as the `annotate` stage's `edu` preset writes
them, so that training and classifying run without an LLM. Deterministic; every sentence
was written for this project.

The six levels follow FineWeb-Edu's rubric in spirit: 0 spam and boilerplate, 1 shop
pages, 2 personal chatter, 3 news-like reports, 4 explanations of a subject, 5 structured
lessons with worked examples and exercises. Every text is distinct. One document in ten has
its score moved by one point either way, as annotators (people or LLMs) disagree at the
edges.

    python examples/edu_classifier/make_labelled_sample.py
"""

from __future__ import annotations

import json
import random
from pathlib import Path

PER_LEVEL = 60
NOISE = 0.1

JUNK = ["Click here to subscribe", "Page not found", "Accept all cookies", "Best casino bonus",
        "Win a free phone today", "Skip to main content", "Home | About | Contact",
        "Limited offer, act now!", "Log in or register", "Share on Facebook",
        "Copyright 2026. All rights reserved.", "Hot singles in your area",
        "You are visitor number 1,000,000", "Download the app", "Privacy policy",
        "Enter your e-mail to unlock", "Earn money fast from home", "Next page"]

PRODUCTS = ["running shoes", "garden hose", "coffee grinder", "phone case", "winter jacket",
            "desk lamp", "yoga mat", "kitchen knife set", "bluetooth speaker", "travel mug"]
SHOP = ["Shop our new {p} collection today.", "The {p} is back in stock in five colours.",
        "Free shipping on every {p} over $50.", "Customers love this {p}: 4.8 stars.",
        "Order your {p} before noon for next-day delivery.", "Save 30% on the {p} this week.",
        "Add the {p} to your basket and check out in one click.",
        "Gift wrapping is available for the {p}.", "Sizes run small, so order one up."]

PLACES = ["the lake", "grandma's house", "the new cafe downtown", "the beach", "the fair",
          "my cousin's wedding", "the mountains", "the farmers market", "the zoo"]
CHATTER = ["We had such a fun weekend at {x}!", "Honestly I could not stop laughing.",
           "The kids loved it and so did the dog.", "We stopped for ice cream on the way home.",
           "Can't wait to go back to {x} next summer!", "My feet still hurt, lol.",
           "Posting a few photos below, sorry they are blurry.",
           "Anyway, that was our week. What did you all get up to?",
           "Traffic was terrible but it was worth it.", "Best day ever at {x}, no regrets."]

NEWS_SUBJECTS = ["The city council", "Officials at the regional hospital", "The school board",
                 "Engineers from the water utility", "The transport authority",
                 "Members of the local orchestra", "The county library service"]
NEWS_VERBS = ["approved", "announced", "postponed", "presented", "reviewed", "published"]
NEWS_OBJECTS = ["a budget for the new bridge", "plans to extend the bus network",
                "a report on air quality in the town centre", "repairs to the flood barrier",
                "longer opening hours for the public pool", "a survey of local businesses",
                "the results of the spring recycling campaign"]
NEWS_TAILS = ["on Tuesday evening", "after a public consultation", "at its monthly meeting",
              "following complaints from residents", "despite objections from two members"]

# Subjects for the two educational levels: (name, definition, mechanism, example, question).
TOPICS = [
    ("photosynthesis",
     "Photosynthesis is the process by which plants turn light energy into chemical energy.",
     "In the chloroplasts, chlorophyll absorbs light and uses it to split water and to fix "
     "carbon dioxide into glucose, releasing oxygen.",
     "A leaf kept in the dark for two days and then tested with iodine shows no starch.",
     "Why does a plant in a dark cupboard stop growing?"),
    ("fractions",
     "A fraction describes a part of a whole: the denominator says into how many equal "
     "parts the whole is divided, and the numerator how many of them are taken.",
     "To add fractions with different denominators, rewrite both over a common denominator "
     "and then add the numerators.",
     "One half plus one third is three sixths plus two sixths, which is five sixths.",
     "What is two fifths plus one tenth?"),
    ("the water cycle",
     "The water cycle is the continuous movement of water between the oceans, the air and "
     "the land.",
     "The sun heats surface water, which evaporates; the vapour cools as it rises, condenses "
     "into clouds and falls as precipitation that flows back to the sea.",
     "Puddles vanish on a sunny afternoon because their water evaporates into the air.",
     "Where does the energy that drives the water cycle come from?"),
    ("the French Revolution",
     "The French Revolution was a period of political upheaval in France that began in "
     "1789 and ended the absolute monarchy.",
     "Debt, food shortages and the privileges of the nobility led the Third Estate to form a "
     "National Assembly and claim the right to write a constitution.",
     "The storming of the Bastille on 14 July 1789 is remembered as its symbolic start.",
     "Which economic problems weakened the French monarchy before 1789?"),
    ("Newton's second law",
     "Newton's second law states that the acceleration of a body is proportional to the "
     "net force on it and inversely proportional to its mass.",
     "Written as force equals mass times acceleration, it lets us predict motion once the "
     "forces are known.",
     "A force of ten newtons on a two kilogram cart gives it an acceleration of five metres "
     "per second squared.",
     "What acceleration does a force of 12 newtons give a 4 kilogram mass?"),
    ("supply and demand",
     "Supply and demand is the model economists use to explain how prices are set in a "
     "market.",
     "When demand rises and supply stays the same, buyers compete for the goods and the "
     "price goes up until the two balance again.",
     "After a poor harvest, the price of coffee beans rises because fewer beans are "
     "available for the same number of buyers.",
     "What happens to the price of umbrellas during a rainy week, and why?"),
    ("the cell membrane",
     "The cell membrane is a thin double layer of lipids that surrounds every cell and "
     "controls what enters and leaves it.",
     "Small molecules such as oxygen diffuse through it, while proteins in the membrane "
     "pump ions and carry larger molecules across.",
     "A red blood cell placed in pure water swells and bursts because water flows in by "
     "osmosis.",
     "Why does a slice of cucumber go limp in salty water?"),
    ("prime numbers",
     "A prime number is a whole number greater than one whose only divisors are one and "
     "itself.",
     "Every whole number greater than one can be written as a product of primes in exactly "
     "one way, which is why primes are called the building blocks of arithmetic.",
     "Sixty is two times two times three times five, and no other set of primes gives it.",
     "Is 91 a prime number? Explain how you checked."),
    ("plate tectonics",
     "Plate tectonics is the theory that the Earth's outer shell is broken into large "
     "plates that move slowly over the mantle.",
     "Where plates pull apart, new crust forms; where they collide, one plate sinks beneath "
     "the other, building mountains and causing earthquakes.",
     "The Himalayas are still rising because the Indian plate pushes into the Eurasian "
     "plate.",
     "Why are earthquakes common along the west coast of South America?"),
    ("the circulatory system",
     "The circulatory system moves blood around the body, carrying oxygen and nutrients to "
     "the cells and taking waste away.",
     "The heart pumps oxygen-poor blood to the lungs and oxygen-rich blood to the rest of "
     "the body through arteries, capillaries and veins.",
     "During exercise the heart beats faster because the muscles need more oxygen.",
     "Why do arteries have thicker walls than veins?"),
]
EXPLAIN_OPENERS = ["Here is a short explanation of {t}.", "Let us look at {t}.",
                   "Many students ask about {t}.", "This article explains {t}.", ""]
LESSON_HEADERS = ["Lesson {n}: {T}", "Unit {n}. {T}", "Chapter {n} - {T}", "Topic {n}: {T}"]


def junk(rng: random.Random) -> str:
    return rng.choice([" ", " | ", "\n"]).join(rng.sample(JUNK, rng.randint(2, 6)))


def shop(rng: random.Random) -> str:
    product = rng.choice(PRODUCTS)
    return " ".join(s.format(p=product) for s in rng.sample(SHOP, rng.randint(2, 5)))


def chatter(rng: random.Random) -> str:
    place = rng.choice(PLACES)
    return " ".join(s.format(x=place) for s in rng.sample(CHATTER, rng.randint(3, 6)))


def news(rng: random.Random) -> str:
    return " ".join(f"{rng.choice(NEWS_SUBJECTS)} {rng.choice(NEWS_VERBS)} "
                    f"{rng.choice(NEWS_OBJECTS)} {rng.choice(NEWS_TAILS)}."
                    for _ in range(rng.randint(2, 4)))


def explanation(rng: random.Random) -> str:
    name, definition, mechanism, example, _ = rng.choice(TOPICS)
    parts = [rng.choice(EXPLAIN_OPENERS).format(t=name), definition, mechanism]
    if rng.random() < 0.5:
        parts.append("For example, " + example[0].lower() + example[1:])
    return " ".join(p for p in parts if p)


def lesson(rng: random.Random) -> str:
    name, definition, mechanism, example, question = rng.choice(TOPICS)
    header = rng.choice(LESSON_HEADERS).format(n=rng.randint(1, 12), T=name[0].upper() + name[1:])
    return "\n".join([header,
                      f"Learning objective: by the end of this lesson you can explain {name}.",
                      "Key idea. " + definition, "How it works. " + mechanism,
                      "Worked example. " + example, "Check your understanding. " + question])


LEVELS = [junk, shop, chatter, news, explanation, lesson]


def documents(seed: int = 20261207) -> list[dict]:
    rng = random.Random(seed)
    docs, seen = [], set()
    for score, make in enumerate(LEVELS):
        for _ in range(PER_LEVEL):
            text = make(rng)
            while text in seen:  # every text once: a copy on both sides would flatter
                text = make(rng)  # the held-out figures
            seen.add(text)
            label = score
            if rng.random() < NOISE:  # annotators disagree by a point at the edges
                label = min(5, max(0, score + rng.choice((-1, 1))))
            docs.append({"text": text, "edu_score": label})
    rng.shuffle(docs)
    return [{"id": f"edu-{i:04d}"} | doc for i, doc in enumerate(docs)]


def main(out: Path = Path(__file__).parent / "data" / "labelled.jsonl") -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(json.dumps(doc) + "\n" for doc in documents())


if __name__ == "__main__":
    main()
