"""A tiny causal LM that always answers with a given text, built from scratch for tests.

The model is a one-layer GPT-2 turned into a bigram table: attention, MLP and position
embeddings are zeroed, so the last hidden state is the current token's embedding (one-hot);
an untied output layer then maps each token to the next one of the script. After the chat
template's `<|assistant|>` it greedily writes the answer's words, then end-of-sequence,
whatever the prompt. The tokenizer is word-level (`tests/tiny_lm.py`'s), so decoding joins
the words with single spaces: give an answer whose words appear nowhere else in it twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from tests.tiny_lm import CHAT_TEMPLATE, SPECIAL


def build_scripted_lm(folder: Path, answer: str, texts: Iterable[str] = (),
                      context: int = 1024) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    script = answer.split()
    if len(set(script)) != len(script):
        raise ValueError("each word of the answer must be distinct (a bigram table)")
    words = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    words.train_from_iterator([answer, *texts], trainers.WordLevelTrainer(
        special_tokens=SPECIAL))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, unk_token="[UNK]",
                                        pad_token="[PAD]", bos_token="[BOS]",
                                        eos_token="[EOS]")
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)

    vocab = len(tokenizer)
    config = GPT2Config(vocab_size=vocab, n_positions=context, n_embd=vocab + vocab % 2,
                        n_layer=1, n_head=2, tie_word_embeddings=False,
                        bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.pad_token_id)
    model = GPT2LMHeadModel(config)
    ids = [tokenizer.convert_tokens_to_ids(t) for t in ["<|assistant|>", *script, "[EOS]"]]
    with torch.no_grad():
        for parameter in model.transformer.h.parameters():
            parameter.zero_()  # blocks add nothing to the residual stream
        model.transformer.wpe.weight.zero_()
        model.transformer.wte.weight.copy_(torch.eye(vocab, config.n_embd))
        model.transformer.ln_f.weight.fill_(1.0)
        model.transformer.ln_f.bias.zero_()
        model.lm_head.weight.zero_()
        for current, following in zip(ids, ids[1:]):
            model.lm_head.weight[following, current] = 10.0
    model.save_pretrained(folder)
    return folder
