"""The inference layer of the model stages (`classify` engine transformers, `embed`,
`perplexity`; docs/stages_models.md).

- `folder`: checks a local Hugging Face model folder when the spec is validated (a missing
  file is named) and reads its labels, head type, context length and pooling.
- `options`: `ModelOptions`, the options every model stage shares (max_length,
  batch_tokens, dtype, gpus, cpus) and its resources.
- `runtime`: `Inference`, the model loaded once per worker (offline), documents tokenized
  and truncated (`tokens`), run in length-sorted token-budget batches that are halved on
  GPU out-of-memory (`batching`).
- `model_stage`: `ModelStage`, the base of the model stages (model per worker, resources, extra).
- `pooling`: mean / CLS / max pooling of token states, as sentence-transformers does.
"""
