"""The prompt presets of `annotate`: what the model is asked, and the answer it must give.

The wording is this project's own. `edu` follows the idea of FineWeb-Edu's annotation (an
additive scale: a point for each of five rising conditions of educational value); `dataman`
follows DataMan's (a 1-5 rating per quality criterion, an overall rating, and a domain from a
fixed list). A preset's task is a template with `{text}`; the answer format is appended from
its schema (`answer.format_instructions`), the same way as for a `custom` prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

from stages._annotate.answer import AnswerField, Schema


@dataclass(frozen=True)
class Preset:
    system: str
    task: str  # a template with {text}
    fields: Schema
    main_field: str  # what `threshold` compares by default
    max_tokens: int  # enough for the whole answer


_ANNOTATOR = ("You are a careful annotator of web documents for a language-model training "
              "corpus. You apply the given rules literally and answer in JSON.")

EDU_TASK = """\
Rate how much a learner could get out of the document below, from primary school up to \
the first years of university. Count points, starting at zero; each condition that holds \
adds one point, for a total from 0 to 5.

1. The document contains some material that belongs to a subject taught in schools or \
universities, even if ads, menus, comments or other unrelated content surround it.
2. That material is treated in a way that could help someone study, though it may be \
patchy, loosely organised, or mixed with chatty or commercial passages.
3. A student could learn from it as it stands: it explains central ideas of a school or \
university topic in connected prose, even if it stays shallow or leaves gaps.
4. It would work well in a class: focused, clearly written and orderly, like a textbook \
section or a good tutorial, with very little off-topic content.
5. It is first-rate teaching material: thorough and easy to follow, with explanations or \
worked reasoning at a fitting level, and nothing that pulls attention away from the lesson.

Content that is mainly advertising, gossip, adult material, or a list of links earns no \
points for that part.

Document:
<<<
{text}
>>>"""

EDU = Preset(
    system=_ANNOTATOR,
    task=EDU_TASK,
    fields={
        "rationale": AnswerField(type="str", required=False,
                                 description="why the points were given, in at most 60 words"),
        "score": AnswerField(type="int", min=0, max=5,
                             description="the number of points, 0 to 5"),
    },
    main_field="score",
    max_tokens=160,
)

# DataMan-style criteria (names after DataMan's; descriptions ours): 1 = poor, 5 = excellent.
DATAMAN_CRITERIA = {
    "accuracy": "facts, figures and spelling are correct",
    "coherence": "sentences and paragraphs connect logically",
    "language_consistency": "it stays in one language, without stray fragments of others",
    "semantic_density": "much information per word, little padding or boilerplate",
    "knowledge_novelty": "it carries knowledge that is not commonplace",
    "topic_focus": "it keeps to one subject",
    "creativity": "original expression or ideas",
    "professionalism": "expert command of the subject and its terms",
    "style_consistency": "one register and tone throughout",
    "grammatical_diversity": "varied, well-formed sentence structures",
    "structural_standardization": "clean layout: headings, lists and paragraphs used properly",
    "originality": "not copied, templated or machine-spun text",
    "sensitivity": "free of private data, hate, violence or sexual content (5 = none at all)",
}
DATAMAN_DOMAINS = ["medicine", "finance", "law", "education", "technology", "entertainment",
                   "mathematics", "coding", "government", "culture", "transportation",
                   "retail", "telecommunications", "agriculture", "other"]

DATAMAN_TASK = """\
Assess the quality of the document below as material for training a language model. Rate \
each criterion from 1 (poor) to 5 (excellent); then give one overall rating from 1 to 5 that \
weighs them together; then choose the single domain the document belongs to.

Criteria:
{criteria}

Document:
<<<
{{text}}
>>>""".format(criteria="\n".join(f"- {name}: {what}" for name, what in
                                  DATAMAN_CRITERIA.items()))

DATAMAN = Preset(
    system=_ANNOTATOR,
    task=DATAMAN_TASK,
    fields={**{name: AnswerField(type="int", min=1, max=5) for name in DATAMAN_CRITERIA},
            "overall": AnswerField(type="int", min=1, max=5,
                                   description="the overall rating"),
            "domain": AnswerField(type="str", enum=DATAMAN_DOMAINS)},
    main_field="overall",
    max_tokens=256,
)

PRESETS: dict[str, Preset] = {"edu": EDU, "dataman": DATAMAN}
CUSTOM_SYSTEM = _ANNOTATOR
CUSTOM_MAX_TOKENS = 256
