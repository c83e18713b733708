"""Stop words per language, for the Gopher "has at least N stop words" check.

Written by this project: for each language, a dozen of its most frequent function words
(articles, prepositions, conjunctions, the copula), in the spirit of Gopher's English list,
which is used unchanged. Words are lowercase, as the `\\w+` tokens of lowercased text they
are compared with.

Languages written without spaces between words (Chinese, Japanese, Thai) are counted as
substrings of the text rather than as tokens.
"""

from __future__ import annotations

# Gopher (Rae et al. 2021, appendix A): "the, be, to, of, and, that, have, with".
_TOKEN_STOP_WORDS = {
    "en": "the be to of and that have with",
    "de": "der die und in den von zu das mit sich des auf ist nicht ein eine",
    "fr": "de la le et les des en un une du est que pour dans qui pas",
    "es": "de la que el en y los del se las por un para con una es",
    "it": "di e il la che in per un del della non con è una sono le",
    "pt": "de a o que e do da em um para com não os uma no se",
    "nl": "de het een en van in is dat op te zijn met voor niet",
    "ru": "и в не на что с по как это из для от к но",
    "uk": "і в на що з не до у та як за це й від",
    "pl": "i w na z się nie do to że jest o jak od po",
    "cs": "a se v na je že to s z do o k ve jako pro",
    "sv": "och i att det som på är en av för med till den har",
    "tr": "ve bir bu da de için ile olarak çok daha gibi ne en o",
    "id": "yang dan di ini itu dengan untuk dari dalam tidak akan pada ke juga",
    "vi": "của và các là có được cho trong không những với một người này",
    "ar": "في من على أن إلى عن ما هذا التي الذي مع كان",
    "fa": "و در به از که این را با است برای آن یک",
}

_SUBSTRING_STOP_WORDS = {
    "zh": "的 是 了 在 和 有 不 这 我们 一个 他 也",
    "ja": "の に は を が で と た して です ます こと",
    "th": "ที่ และ ใน การ ของ เป็น มี ได้ ไม่ ให้",
}

TOKEN_STOP_WORDS: dict[str, frozenset[str]] = {
    lang: frozenset(words.split()) for lang, words in _TOKEN_STOP_WORDS.items()}
SUBSTRING_STOP_WORDS: dict[str, tuple[str, ...]] = {
    lang: tuple(words.split()) for lang, words in _SUBSTRING_STOP_WORDS.items()}

# Scripts without spaces between words: whitespace tokens are not words there, so rules that
# count words (document length, mean word length, words per line) do not apply.
NO_SPACE_LANGUAGES = frozenset({"zh", "ja", "th", "lo", "km", "my", "bo", "yue", "wuu"})


def languages() -> list[str]:
    return sorted(set(TOKEN_STOP_WORDS) | set(SUBSTRING_STOP_WORDS))
