"""fastText models as the stages and the classifier trainer use them.

One place decides how text becomes the single line fastText reads and how a batch is
predicted, so `langid`, `classify` and `train-classifier` treat text the same way.

Why `predict(list)`: fastText's Python binding sends a list through one C++ call
(`multilinePredict`), which is both the fast path and the one that works under numpy 2 in
every fasttext build we meet (the single-string path of fasttext 0.9.2/0.9.3 calls
`np.array(..., copy=False)` and raises with numpy 2).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.stage import local_file

LABEL_PREFIX = "__label__"
# A row is empty when it holds no character outside Unicode whitespace and separators.
HAS_CONTENT = r"[^\s\p{Z}]"


def local_model_file(value: str, hint: str = "") -> str:
    """A spec's model path, checked when the spec is validated: fastText reads local files
    only. `hint` is added to the message for a missing file."""
    return local_file(value, "model file", "give a local file path; fastText loads models "
                      "from local files only (copy the model to each worker first)", hint)


class HoldsModel:
    """Mixin for a stage that loads a fastText model in `setup`: a loaded model does not
    pickle, so it stays out of the stage's state and each worker loads its own."""

    _model = None

    def __getstate__(self):
        return dict(self.__dict__, _model=None)

    def loaded_model(self):
        if self._model is None:  # a stage used outside the runner, without setup()
            self.setup()
        return self._model


class ModelFileError(ValueError):
    """A model path that cannot be loaded; the message says which path and what to do."""


def load_model(path: str):
    """Load a fastText model file (`.bin` or quantized `.ftz`) from a local path."""
    import fasttext  # imported here so that modules using only the helpers stay light

    if not os.path.isfile(path):
        raise ModelFileError(f"fastText model not found: {path}; give a local file path "
                             "(models are never downloaded at run time)")
    try:
        return fasttext.load_model(path)
    except ValueError as exc:
        raise ModelFileError(f"{path} is not a fastText model ({exc}); "
                             "give a model saved by fastText") from None


def one_line(texts: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    """Texts with newlines folded into spaces: fastText reads one example per line."""
    return pc.replace_substring(pc.fill_null(texts, ""), "\n", " ")


def one_line_str(text: str) -> str:
    return text.replace("\n", " ")


def predict(model, texts: Sequence[str], k: int = 1) -> tuple[list[list[str]], list[np.ndarray]]:
    """Top-`k` labels and probabilities of each text (each already one line), in one call."""
    if not texts:
        return [], []
    labels, probs = model.predict(list(texts), k=k)
    return labels, probs
