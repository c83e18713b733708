"""A tiny causal LM built from scratch (random weights), for the rephrase tests and benchmark.

A word-level tokenizer is trained on the given texts and saved with a chat template; the
model is a small GPT-2. Its final layer norm is set so that every position's logits are
nearly the same fixed vector: words about equally likely, other special tokens never, and
end-of-sequence as likely as `eos_logit` makes it. So output lengths follow a known
geometric law (mean about vocabulary / e^eos_logit tokens), and `eos_logit=None` builds a
model that never stops - which is what a truncation test needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

SPECIAL = ["[PAD]", "[UNK]", "[BOS]", "[EOS]", "<|system|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }}\n{% endfor %}"
                 "{% if add_generation_prompt %}<|assistant|> {% endif %}")


def build_tiny_lm(folder: Path, texts: Iterable[str], *, eos_logit: float | None = 1.0,
                  hidden: int = 32, layers: int = 2, context: int = 512, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    words = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    words.train_from_iterator(list(texts), trainers.WordLevelTrainer(special_tokens=SPECIAL))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]",
                                        pad_token="[PAD]", bos_token="[BOS]",
                                        eos_token="[EOS]")
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)

    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=context, n_embd=hidden,
                        n_layer=layers, n_head=2, bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        final = model.transformer.ln_f
        final.weight.mul_(0.05)  # a little of the input still shows through
        final.bias.zero_()
        final.bias[0] = 1.0  # ... but dimension 0 dominates every position's hidden state
        embedding = model.transformer.wte.weight  # tied to the output layer
        embedding[:, 0] = 0.0
        for token in SPECIAL:
            embedding[tokenizer.convert_tokens_to_ids(token), 0] = -20.0
        if eos_logit is not None:
            embedding[tokenizer.eos_token_id, 0] = eos_logit
    model.save_pretrained(folder)
    return folder
