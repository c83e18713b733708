"""Fit a small head (linear, or one hidden layer) on frozen embeddings, with torch.

The head is trained on standardised inputs (and, for regression, a standardised target),
which lets one learning rate suit any encoder; the scaling is then folded into the first and
last layers, so the saved layers read the raw unit vectors the encoder gives, exactly as
`classify` feeds them (stages/_classify/head.py).

Training is minibatch AdamW. A seeded, stratified slice of the training rows (`validation`)
picks when to stop: the loss on it is measured every `eval_every` steps and the weights of
the best measurement are kept; training stops after `patience` measurements without
improvement, or at `max_steps`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REGRESSION, CLASSIFICATION = "regression", "classification"


@dataclass(frozen=True)
class FitOptions:
    hidden: int = 0            # 0: a linear head; else one ReLU layer of this width
    lr: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 256
    max_steps: int = 20_000
    eval_every: int = 50
    patience: int = 5
    validation: float = 0.1    # share of the training rows that decides when to stop
    seed: int = 0


@dataclass
class FittedHead:
    layers: list[tuple]                 # (weight [out, in], bias [out]) torch tensors
    activations: list[str | None]
    steps: int                          # steps run
    best_step: int                      # the step whose weights were kept
    validation_loss: float | None
    validation_rows: int


def stratified_split(strata: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """(kept, taken) row indices: `fraction` of each stratum's rows taken at random (seeded),
    rounded; a stratum of one row stays on the kept side."""
    rng = np.random.default_rng(seed)
    kept, taken = [], []
    _, inverse = np.unique(strata, return_inverse=True)
    for group in range(inverse.max() + 1 if len(inverse) else 0):
        rows = np.flatnonzero(inverse == group)
        rows = rows[rng.permutation(len(rows))]
        n = int(round(fraction * len(rows))) if len(rows) > 1 else 0
        taken.append(rows[:n])
        kept.append(rows[n:])
    join = lambda parts: np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)  # noqa: E731
    return join(kept), join(taken)


def fit_head(x: np.ndarray, y: np.ndarray, task: str, n_outputs: int, strata: np.ndarray,
             opts: FitOptions, rows: np.ndarray | None = None) -> FittedHead:
    """A head from `x[rows]` ([rows, dim], float32; default every row) to `y` (one value per
    row trained on): floats (regression) or class indices."""
    import torch

    threads = torch.get_num_threads()
    # A minibatch step is a few small matrix products: one thread does it fastest, and
    # more only spin against each other (several times slower on a busy machine).
    torch.set_num_threads(1)
    try:
        standardised, mean, scale = _standardised(x, rows)
        return _fit(torch, standardised, mean, scale, y, task, n_outputs, strata, opts)
    finally:
        torch.set_num_threads(threads)


def _standardised(x: np.ndarray, rows: np.ndarray | None) -> tuple:
    """(standardised copy of x[rows], mean, scale), in one allocation the size of x[rows]
    (a 100k x 384 matrix is 146 MiB, and temporaries of that size add up). The statistics
    take every training row: they read no label, so the validation rows may take part."""
    rows = np.arange(len(x)) if rows is None else rows
    out = np.empty((len(rows), x.shape[1]), np.float32)
    np.take(x, rows, axis=0, out=out)
    mean = out.mean(axis=0, dtype=np.float64)
    squares = np.einsum("ij,ij->j", out, out, dtype=np.float64) / max(len(out), 1)
    scale = np.sqrt(np.maximum(squares - mean ** 2, 0)) + 1e-6
    out -= mean.astype(np.float32)
    out /= scale.astype(np.float32)
    return out, mean, scale


def _fit(torch, standardised, mean, scale, y, task, n_outputs, strata,
         opts: FitOptions) -> FittedHead:
    torch.manual_seed(opts.seed)
    fit_rows, val_rows = stratified_split(strata, opts.validation, opts.seed + 1)
    if len(val_rows) == 0 or len(fit_rows) == 0:
        fit_rows, val_rows = np.arange(len(y)), np.zeros(0, np.int64)
    x_std = torch.from_numpy(standardised)
    if task == REGRESSION:
        y_mean, y_scale = float(y[fit_rows].mean()), float(y[fit_rows].std()) or 1.0
        target = torch.from_numpy(((y - y_mean) / y_scale).astype(np.float32)).unsqueeze(1)
        loss_fn = torch.nn.MSELoss()
    else:
        y_mean, y_scale = 0.0, 1.0
        target = torch.from_numpy(y.astype(np.int64))
        loss_fn = torch.nn.CrossEntropyLoss()
    model = _module(x_std.shape[1], n_outputs, opts.hidden)
    optimiser = torch.optim.AdamW(model.parameters(), lr=opts.lr,
                                  weight_decay=opts.weight_decay)
    generator = torch.Generator().manual_seed(opts.seed)
    fit_index = torch.from_numpy(fit_rows)
    val_x, val_y = x_std[val_rows], target[val_rows]
    best = (float("inf"), 0, _state(model))
    step, waited, order, at = 0, 0, fit_index[torch.randperm(len(fit_index),
                                                             generator=generator)], 0
    while step < opts.max_steps:
        if at >= len(order):  # a new epoch, a new order
            order, at = fit_index[torch.randperm(len(fit_index), generator=generator)], 0
        batch = order[at:at + opts.batch_size]
        at += opts.batch_size
        model.train()
        loss = loss_fn(model(x_std[batch]), target[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        step += 1
        if len(val_rows) and (step % opts.eval_every == 0 or step == opts.max_steps):
            model.eval()
            with torch.no_grad():
                measured = float(loss_fn(model(val_x), val_y))
            if measured < best[0] - 1e-7:
                best, waited = (measured, step, _state(model)), 0
            else:
                waited += 1
                if waited >= opts.patience:
                    break
    if len(val_rows):
        model.load_state_dict(best[2])
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    layers = _fold_scaling([(m.weight.detach().clone(), m.bias.detach().clone())
                            for m in linears], mean, scale, y_mean, y_scale)
    activations = ["relu", None] if opts.hidden else [None]
    return FittedHead(layers, activations, step, best[1] if len(val_rows) else step,
                      best[0] if len(val_rows) else None, len(val_rows))


def head_outputs(layers: list[tuple], activations: list[str | None],
                 x: np.ndarray) -> np.ndarray:
    """The head's outputs (logits, or the regression score) for rows of `x`."""
    import torch

    out = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    with torch.no_grad():
        for (weight, bias), activation in zip(layers, activations):
            out = out @ weight.T + bias
            if activation == "relu":
                out = torch.relu(out)
    return out.numpy()


def _module(dim: int, outputs: int, hidden: int):
    import torch

    if not hidden:
        return torch.nn.Sequential(torch.nn.Linear(dim, outputs))
    return torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.ReLU(),
                               torch.nn.Linear(hidden, outputs))


def _state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _fold_scaling(layers: list[tuple], mean: np.ndarray, scale: np.ndarray, y_mean: float,
                  y_scale: float) -> list[tuple]:
    """Layers that take raw inputs and give unscaled targets: W((x - m) / s) + b =
    (W / s) x + (b - W (m / s)); the last layer's outputs times y_scale plus y_mean."""
    import torch

    first_w, first_b = layers[0]
    s = torch.from_numpy(scale.astype(np.float32))
    m = torch.from_numpy(mean.astype(np.float32))
    folded = [(first_w / s, first_b - first_w @ (m / s))] + list(layers[1:])
    last_w, last_b = folded[-1]
    folded[-1] = (last_w * y_scale, last_b * y_scale + y_mean)
    return folded
