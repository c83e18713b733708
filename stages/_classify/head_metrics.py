"""Held-out metrics of a trained head, and their printed form.

- regression: MSE (beside the MSE of always predicting the training mean, for scale),
  Spearman and Pearson correlation, precision/recall/F1 of "score >= cut" (the label and
  the prediction each compared with the cut; with integer labels, the rounded prediction,
  as FineWeb-Edu's int_score), and the confusion matrix of rounded scores
  (rows: the rounded label, columns: the rounded prediction, both clipped to the labels'
  integer range);
- classification: accuracy, macro F1, per-class precision/recall/F1/support, and the
  confusion matrix (rows: the label, columns: the prediction).
"""

from __future__ import annotations

import numpy as np


def regression_metrics(truth: np.ndarray, predicted: np.ndarray, cut: float,
                       train_mean: float) -> dict:
    truth, predicted = np.asarray(truth, np.float64), np.asarray(predicted, np.float64)
    if len(truth) == 0:
        return {"heldout_docs": 0}
    lo, hi = int(np.floor(truth.min())), int(np.ceil(truth.max()))
    values = list(range(lo, hi + 1))
    rounded = lambda v: np.clip(np.rint(v), lo, hi).astype(np.int64)  # noqa: E731
    matrix = np.zeros((len(values), len(values)), np.int64)
    np.add.at(matrix, (rounded(truth) - lo, rounded(predicted) - lo), 1)
    # Integer labels (an annotator's 0-5) are compared as FineWeb-Edu does: the rounded
    # prediction (its int_score) against the cut, i.e. classify's threshold cut - 0.5.
    integer = bool(np.all(truth == np.rint(truth)))
    judged = np.rint(predicted) if integer else predicted
    return {"heldout_docs": int(len(truth)),
            "mse": float(np.mean((predicted - truth) ** 2)),
            "mse_of_train_mean": float(np.mean((train_mean - truth) ** 2)),
            "spearman": spearman(truth, predicted),
            "pearson": _correlation(truth, predicted),
            "cut": cut, "cut_on": "rounded prediction" if integer else "prediction",
            **{f"{k}_at_cut": v for k, v in
               binary_scores(truth >= cut, judged >= cut).items()},
            "confusion": {"values": values, "matrix": matrix.tolist()}}


def classification_metrics(truth: np.ndarray, predicted: np.ndarray,
                           labels: list[str]) -> dict:
    truth, predicted = np.asarray(truth, np.int64), np.asarray(predicted, np.int64)
    if len(truth) == 0:
        return {"heldout_docs": 0}
    matrix = np.zeros((len(labels), len(labels)), np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    per_class = {label: binary_scores(truth == k, predicted == k)
                 for k, label in enumerate(labels)}
    f1s = [s["f1"] for s in per_class.values() if s["support"] and s["f1"] is not None]
    return {"heldout_docs": int(len(truth)),
            "accuracy": float(np.mean(truth == predicted)),
            "macro_f1": float(np.mean(f1s)) if f1s else None,
            "per_class": per_class,
            "confusion": {"values": list(labels), "matrix": matrix.tolist()}}


def binary_scores(truth: np.ndarray, predicted: np.ndarray) -> dict:
    """Precision, recall and F1 of the positive side (None where undefined), and support."""
    tp = int(np.sum(truth & predicted))
    fp, fn = int(np.sum(~truth & predicted)), int(np.sum(truth & ~predicted))
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = None if precision is None or recall is None else \
        (2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": tp + fn}


def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank (as Spearman's rho needs)."""
    unique, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # rank - 1 of each value's first copy
    return (first + (counts + 1) / 2.0)[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    return _correlation(ranks(np.asarray(a)), ranks(np.asarray(b)))


def _correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def _cut(metrics: dict) -> str:
    cut = metrics["cut"]
    if metrics["cut_on"] == "rounded prediction":
        return f"round(score) >= {cut:g} (classify threshold {cut - 0.5:g})"
    return f"score >= {cut:g}"


def describe(metrics: dict) -> list[str]:
    """The metrics as printed lines."""
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"  # noqa: E731
    lines = []
    if "mse" in metrics:
        lines += [f"held-out MSE: {fmt(metrics['mse'])} (predicting the training mean: "
                  f"{fmt(metrics['mse_of_train_mean'])})",
                  f"held-out Spearman: {fmt(metrics['spearman'])}, Pearson: "
                  f"{fmt(metrics['pearson'])}",
                  f"held-out {_cut(metrics)}: precision "
                  f"{fmt(metrics['precision_at_cut'])}, recall {fmt(metrics['recall_at_cut'])}, "
                  f"F1 {fmt(metrics['f1_at_cut'])} ({metrics['support_at_cut']} such documents)"]
        title = "confusion of rounded scores (rows: label, columns: prediction)"
    elif "accuracy" in metrics:
        lines += [f"held-out accuracy: {fmt(metrics['accuracy'])}, macro F1: "
                  f"{fmt(metrics['macro_f1'])}",
                  f"{'class':<20} {'precision':>9} {'recall':>9} {'F1':>9} {'support':>8}"]
        lines += [f"{label[:20]:<20} {fmt(s['precision']):>9} {fmt(s['recall']):>9} "
                  f"{fmt(s['f1']):>9} {s['support']:>8}"
                  for label, s in metrics["per_class"].items()]
        title = "confusion (rows: label, columns: prediction)"
    else:
        return ["nothing held out: no held-out metrics"]
    names = [str(v)[:8] for v in metrics["confusion"]["values"]]
    lines += [title, " " * 9 + "".join(f"{n:>9}" for n in names)]
    lines += [f"{name:>8} " + "".join(f"{count:>9}" for count in row)
              for name, row in zip(names, metrics["confusion"]["matrix"])]
    return lines
