"""The encoder + head classifier format: a small head trained on a frozen encoder's pooled
embeddings (what `pipeline train-classifier` writes for a model classifier).

A folder holding:
- `head.json`:
    {"format": "curation-pipeline/head", "version": 1,
     "encoder": ".",                 # the encoder's folder, relative to this one
     "pooling": null,                # mean | cls | max; null: the encoder's
                                     #   1_Pooling/config.json, else mean
     "normalize": false,             # L2-normalise the pooled vector before the head
     "activations": ["relu", null],  # after each linear layer: relu, gelu, tanh or null
     "problem_type": "regression",   # or single_label_classification,
                                     #   multi_label_classification
     "labels": ["edu"]}              # one name per output of the last layer
- `head.safetensors`: `layers.<i>.weight` [out, in] and `layers.<i>.bias` [out] of each
  linear layer, in order;
- the encoder: a Hugging Face `AutoModel` folder, or a sentence-transformers folder (its
  transformer, pooling and normalisation), at `encoder` (by default this same folder).

The head's outputs are the logits of a sequence classifier: a regression score, softmax for
single-label, sigmoid for multi-label heads.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Sequence

from stages._shared.inference.pooling import POOLINGS

HEAD_CONFIG = "head.json"
HEAD_WEIGHTS = "head.safetensors"
FORMAT = "curation-pipeline/head"
PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")
ACTIVATIONS = ("relu", "gelu", "tanh")


@dataclass(frozen=True)
class Head:
    folder: str
    encoder: str  # absolute
    pooling: str | None
    normalize: bool
    activations: tuple[str | None, ...]
    problem_type: str
    labels: tuple[str, ...]


def is_head_folder(path: str) -> bool:
    return os.path.isfile(os.path.join(path, HEAD_CONFIG))


def read_head(folder: str) -> Head:
    """The head described in `folder`; a ValueError names what is wrong."""
    where = os.path.join(folder, HEAD_CONFIG)
    try:
        with open(where, encoding="utf-8") as f:
            spec = json.load(f)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{where} cannot be read as JSON: {exc}") from None
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        raise ValueError(f"{where}: not a head file (\"format\" is not {FORMAT!r})")
    if not os.path.isfile(os.path.join(folder, HEAD_WEIGHTS)):
        raise ValueError(f"head folder {folder} has no {HEAD_WEIGHTS} (the head's weights)")
    labels = tuple(str(x) for x in spec.get("labels") or ())
    problem = spec.get("problem_type")
    activations = tuple(spec.get("activations") or ())
    problems = [
        problem not in PROBLEM_TYPES and f"problem_type must be one of {PROBLEM_TYPES}",
        not labels and "labels must name the outputs",
        problem == "regression" and len(labels) != 1 and "a regression head has one label",
        not activations and "activations: one entry (or null) per linear layer",
        any(a not in ACTIVATIONS + (None,) for a in activations)
        and f"activations are {ACTIVATIONS} or null",
        spec.get("pooling") not in POOLINGS + (None,) and f"pooling is one of {POOLINGS} or null",
    ]
    if any(problems):
        raise ValueError(f"{where}: {next(p for p in problems if p)}")
    return Head(folder, os.path.normpath(os.path.join(folder, spec.get("encoder", "."))),
                spec.get("pooling"), bool(spec.get("normalize", False)), activations,
                problem, labels)


def save_head(folder: str, layers: Sequence[tuple], activations: Sequence[str | None],
              problem_type: str, labels: Sequence[str], *, pooling: str | None = None,
              normalize: bool = False, encoder: str = ".") -> None:
    """Write a head: `layers` are (weight [out, in], bias [out]) tensors, in order."""
    from safetensors.torch import save_file

    os.makedirs(folder, exist_ok=True)
    tensors = {}
    for i, (weight, bias) in enumerate(layers):
        tensors[f"layers.{i}.weight"] = weight.detach().float().contiguous()
        tensors[f"layers.{i}.bias"] = bias.detach().float().contiguous()
    save_file(tensors, os.path.join(folder, HEAD_WEIGHTS))
    spec = {"format": FORMAT, "version": 1, "encoder": encoder, "pooling": pooling,
            "normalize": normalize, "activations": list(activations),
            "problem_type": problem_type, "labels": list(labels)}
    with open(os.path.join(folder, HEAD_CONFIG), "w", encoding="utf-8") as f:
        json.dump(spec, f, indent=2)
    read_head(folder)  # what is written must read back


def head_module(head: Head, hidden_size: int):
    """The head as a torch module, its shapes checked against the file and the encoder."""
    import torch
    from safetensors.torch import load_file

    weights = load_file(os.path.join(head.folder, HEAD_WEIGHTS))
    modules, width = [], hidden_size
    for i, activation in enumerate(head.activations):
        weight, bias = weights.get(f"layers.{i}.weight"), weights.get(f"layers.{i}.bias")
        if weight is None or bias is None or weight.shape[1] != width \
                or bias.shape != weight.shape[:1]:
            raise ValueError(f"{head.folder}/{HEAD_WEIGHTS}: layer {i} is missing or does "
                             f"not take {width} inputs")
        linear = torch.nn.Linear(weight.shape[1], weight.shape[0])
        linear.load_state_dict({"weight": weight, "bias": bias})
        modules.append(linear)
        if activation:
            modules.append({"relu": torch.nn.ReLU, "gelu": torch.nn.GELU,
                            "tanh": torch.nn.Tanh}[activation]())
        width = weight.shape[0]
    if width != len(head.labels):
        raise ValueError(f"{head.folder}: the head has {width} outputs but {HEAD_CONFIG} "
                         f"names {len(head.labels)} labels")
    return torch.nn.Sequential(*modules).eval()
