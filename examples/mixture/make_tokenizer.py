"""Write examples/mixture/tokenizer.json: a small byte-level BPE with <s> and </s>, trained on
the bundled sample texts (984 tokens: the texts are few), so the mixture example tokenizes
offline. A real run gives a model's own tokenizer.json instead (e.g. `hf download NAME
tokenizer.json`).

    python examples/mixture/make_tokenizer.py
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "data"


def texts() -> list[str]:
    files = sorted(DATA.glob("sample-*.jsonl")) + sorted((DATA / "classifier").glob("*.jsonl"))
    return [json.loads(line)["text"] for f in files for line in f.read_text().splitlines()]


def main() -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(texts(), trainers.BpeTrainer(
        vocab_size=2000, special_tokens=["<s>", "</s>"], show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer.save(str(HERE / "tokenizer.json"))
    print(f"wrote {HERE / 'tokenizer.json'} ({tokenizer.get_vocab_size()} tokens)")


if __name__ == "__main__":
    main()
