"""Prompt templates of `rephrase`: the shipped styles and user templates.

The five styles follow the families of rewrites that WRAP and Nemotron-CC found useful
(encyclopedic rewrite, question-answer pairs, concise restatement, knowledge extraction,
fact lists); the wording is this project's own. A template is `str.format` text whose
placeholders name columns: `{text}` (required) is the document or one chunk of it, any other
`{column}` is that row's value. Placeholders are plain names only - no attribute access,
indexing, conversions or format specs - so a template from a spec can read columns and
nothing else. Write `{{` and `}}` for literal braces.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

DEFAULT_SYSTEM = "You are a careful writing assistant. You only use facts given in the text."


@dataclass(frozen=True)
class Template:
    user: str
    system: str = DEFAULT_SYSTEM

    def columns(self) -> list[str]:
        """Column names the template reads, in order of first use (`text` included)."""
        return placeholders(self.user)

    def chat(self, text: str, row: dict[str, object]) -> list[dict[str, str]]:
        values = {name: "" if row.get(name) is None else str(row[name])
                  for name in self.columns() if name != "text"}
        return [{"role": "system", "content": self.system},
                {"role": "user", "content": self.user.format(**values, text=text)}]


_REPLY_ONLY = "Reply with the result only, in the language of the text."

STYLES: dict[str, Template] = {
    "wikipedia": Template(
        "Rewrite the text below as a passage of an encyclopedia article: neutral tone, clear "
        "and complete sentences, well organised. Keep every fact, name and number; add "
        f"nothing that the text does not say. {_REPLY_ONLY}\n\nText:\n{{text}}"),
    "qa": Template(
        "Turn the text below into question-and-answer pairs that together cover all of its "
        "information. Write each pair as a line starting with 'Question:' followed by a line "
        f"starting with 'Answer:'. Answer only from the text. {_REPLY_ONLY}\n\n"
        "Text:\n{text}"),
    "distill": Template(
        "Restate the text below concisely. Keep its key information and the steps of any "
        "reasoning or explanation; leave out repetition, filler, advertising and navigation. "
        f"{_REPLY_ONLY}\n\nText:\n{{text}}"),
    "extract_knowledge": Template(
        "Rewrite the knowledge in the text below as passages a textbook could contain: "
        "definitions, facts, explanations and how things work. Leave out anything personal, "
        f"promotional or off topic. {_REPLY_ONLY}\n\nText:\n{{text}}"),
    "knowledge_list": Template(
        "List the facts stated in the text below, one per line, each line starting with "
        f"'- '. State each fact so it can be understood on its own. {_REPLY_ONLY}\n\n"
        "Text:\n{text}"),
}


def placeholders(template: str) -> list[str]:
    """Placeholder names of a template; ValueError names the first one that is not plain."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"template is not valid: {exc}; write {{{{ and }}}} for literal "
                         "braces") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "") + \
                (f":{spec}" if spec else "") + "}"
            raise ValueError(f"placeholder {shown} is not a plain column name; use "
                             "{column} (e.g. {text}, {title})")
        if name not in names:
            names.append(name)
    if "text" not in names:
        raise ValueError("the template has no {text} placeholder; add one where the document "
                         "(or chunk) goes")
    return names
