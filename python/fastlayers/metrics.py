"""Classification metrics: accuracy, confusion matrix, precision/recall/specificity/F1, ROC and AUC.

Conventions (those of scikit-learn, whose function names these mirror):

- Labels are integers 0..C-1. Wherever predicted labels are expected, an (N, C) array of
  scores (logits or probabilities) is accepted too and reduced with argmax.
- ``confusion_matrix[i, j]`` counts examples of true class i predicted as class j (rows =
  truth, columns = prediction).
- Per class c, from the confusion matrix: TP = cm[c, c], FP = column sum - TP, FN = row sum -
  TP, TN = the rest. precision = TP / (TP + FP), recall = sensitivity = TP / (TP + FN),
  specificity = TN / (TN + FP), F1 = 2 TP / (2 TP + FP + FN) (the harmonic mean of precision
  and recall). A 0/0 gives ``zero_division`` (0 by default, as sklearn after its warning).
- ``average``: None (one value per class), "macro" (unweighted mean over classes),
  "weighted" (mean weighted by support), "micro" (from TP/FP/FN/TN summed over classes; for
  single-label data micro precision = recall = F1 = accuracy), "binary" (class ``pos_label``).
- ROC: ``roc_curve`` for binary scores, thresholds at every distinct score (from +inf down);
  ``auc`` is the trapezoidal area; ``roc_auc_score`` does binary or one-vs-rest multi-class.

No torch equivalent in torch itself; torchmetrics / sklearn.metrics have the same functions.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "accuracy",
    "auc",
    "classification_report",
    "confusion_matrix",
    "f1_score",
    "precision",
    "precision_recall_f1",
    "recall",
    "roc_auc_score",
    "roc_curve",
    "roc_curve_ovr",
    "sensitivity",
    "specificity",
    "top_k_accuracy",
]

_AVERAGES = (None, "binary", "micro", "macro", "weighted")


# ----------------------------------------------------------------------------- inputs


def _labels(y, name: str) -> np.ndarray:
    """Integer labels as int64 (N,); an (N, C) score array becomes its argmax."""
    y = np.asarray(y)
    if y.ndim == 2:
        y = y.argmax(axis=1)
    if y.ndim != 1:
        raise ValueError(f"{name} must be (N,) labels or (N, C) scores, got shape {y.shape}")
    if y.size and y.dtype.kind not in "iub":
        if y.dtype.kind == "f" and np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise ValueError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise ValueError(f"{name} has a negative label ({y.min()}); labels must be 0..C-1")
    return y


def _pair(y_true, y_pred):
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.shape[0]} labels but y_pred has {p.shape[0]}")
    return t, p


# ----------------------------------------------------------------------------- accuracy


def accuracy(y_true, y_pred) -> float:
    """Fraction of examples whose predicted label (or argmax of scores) equals the true one."""
    t, p = _pair(y_true, y_pred)
    if t.size == 0:
        raise ValueError("accuracy of an empty set is undefined")
    return float(np.mean(t == p))


def top_k_accuracy(y_true, scores, k: int = 5) -> float:
    """Fraction of examples whose true class is among the k highest scores.

    Ties count in the example's favour: it is correct when fewer than k classes score
    strictly higher than the true class. k >= C gives 1.
    """
    t = _labels(y_true, "y_true")
    s = np.asarray(scores)
    if s.ndim != 2 or s.shape[0] != t.shape[0]:
        raise ValueError(f"scores must be (N, C) with N = {t.shape[0]}, got shape {s.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if t.size and t.max() >= s.shape[1]:
        raise ValueError(f"y_true has label {t.max()} but scores has only {s.shape[1]} columns")
    true_score = s[np.arange(len(t)), t]
    rank = (s > true_score[:, None]).sum(axis=1)  # classes strictly ahead of the true one
    return float(np.mean(rank < k))


# ----------------------------------------------------------------------------- confusion matrix


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """(C, C) int64 counts: entry [i, j] = examples of true class i predicted as class j.

    num_classes: C; default 1 + the largest label seen. A label >= num_classes is a ValueError.
    """
    t, p = _pair(y_true, y_pred)
    seen = int(max(t.max(initial=-1), p.max(initial=-1))) + 1
    c = seen if num_classes is None else int(num_classes)
    if seen > c:
        raise ValueError(f"labels go up to {seen - 1} but num_classes is {c}")
    return np.bincount(t * c + p, minlength=c * c).reshape(c, c).astype(np.int64)


def _counts(cm: np.ndarray):
    """Per-class TP, FP, FN, TN (float64) from a confusion matrix."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    tn = cm.sum() - tp - fp - fn
    return tp, fp, fn, tn


def _ratio(num, den, zero_division: float):
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), zero_division)


def _metric(kind: str, y_true, y_pred, average, num_classes, pos_label, zero_division):
    """One of precision / recall / specificity / f1 with the requested averaging."""
    if average not in _AVERAGES:
        raise ValueError(f"average must be one of {_AVERAGES}, got {average!r}")
    cm = confusion_matrix(y_true, y_pred, num_classes)
    tp, fp, fn, tn = _counts(cm)
    if average == "micro":
        tp, fp, fn, tn = tp.sum(), fp.sum(), fn.sum(), tn.sum()
    num, den = {
        "precision": (tp, tp + fp),
        "recall": (tp, tp + fn),
        "specificity": (tn, tn + fp),
        "f1": (2 * tp, 2 * tp + fp + fn),
    }[kind]
    per_class = _ratio(num, den, zero_division)
    if average is None:
        return per_class
    if average == "micro":
        return float(per_class)
    if average == "binary":
        if cm.shape[0] > 2:
            raise ValueError(f"average='binary' needs two classes, got {cm.shape[0]}; use 'macro', 'micro' or None")
        if not 0 <= pos_label < cm.shape[0]:
            raise ValueError(f"pos_label {pos_label} is not a class (0..{cm.shape[0] - 1})")
        return float(per_class[pos_label])
    if average == "macro":
        return float(per_class.mean())
    support = cm.sum(axis=1)  # weighted
    return float(np.average(per_class, weights=support)) if support.sum() else float(zero_division)


def precision(y_true, y_pred, average=None, num_classes=None, pos_label=1, zero_division=0.0):
    """Precision TP / (TP + FP): per class (average=None, an array) or averaged (a float)."""
    return _metric("precision", y_true, y_pred, average, num_classes, pos_label, zero_division)


def recall(y_true, y_pred, average=None, num_classes=None, pos_label=1, zero_division=0.0):
    """Recall = sensitivity = true positive rate TP / (TP + FN), per class or averaged."""
    return _metric("recall", y_true, y_pred, average, num_classes, pos_label, zero_division)


sensitivity = recall


def specificity(y_true, y_pred, average=None, num_classes=None, pos_label=1, zero_division=0.0):
    """Specificity = true negative rate TN / (TN + FP), per class (one-vs-rest) or averaged."""
    return _metric("specificity", y_true, y_pred, average, num_classes, pos_label, zero_division)


def f1_score(y_true, y_pred, average=None, num_classes=None, pos_label=1, zero_division=0.0):
    """F1 = 2 TP / (2 TP + FP + FN), the harmonic mean of precision and recall."""
    return _metric("f1", y_true, y_pred, average, num_classes, pos_label, zero_division)


def precision_recall_f1(y_true, y_pred, num_classes=None, zero_division=0.0) -> dict:
    """Per-class arrays in one pass: {"precision", "recall", "specificity", "f1", "support"}."""
    cm = confusion_matrix(y_true, y_pred, num_classes)
    tp, fp, fn, tn = _counts(cm)
    return {
        "precision": _ratio(tp, tp + fp, zero_division),
        "recall": _ratio(tp, tp + fn, zero_division),
        "specificity": _ratio(tn, tn + fp, zero_division),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn, zero_division),
        "support": cm.sum(axis=1),
    }


def classification_report(y_true, y_pred, class_names=None, num_classes=None, digits: int = 3,
                          output_dict: bool = False, zero_division=0.0):
    """A per-class table of precision, recall, specificity, F1 and support, then the averages.

    Rows: one per class (named by ``class_names`` when given), then "accuracy", "macro avg",
    "weighted avg" and "micro avg" (sklearn's ``classification_report`` plus specificity and
    the micro row). With ``output_dict=True`` the same numbers come back as a dict
    {row name: {column: value}} (and "accuracy": float), ready for JSON.
    """
    t, p = _pair(y_true, y_pred)
    if num_classes is None and class_names is not None:
        # Classes named but absent from the data still get a row; too few names is an error below.
        num_classes = max(len(class_names), int(max(t.max(initial=-1), p.max(initial=-1))) + 1)
    cm = confusion_matrix(t, p, num_classes)
    c = cm.shape[0]
    names = [str(i) for i in range(c)] if class_names is None else [str(n) for n in class_names]
    if len(names) != c:
        raise ValueError(f"class_names has {len(names)} names for {c} classes (labels 0..{c - 1})")
    per = precision_recall_f1(t, p, num_classes=c, zero_division=zero_division)
    cols = ("precision", "recall", "specificity", "f1")
    rows = {names[i]: {**{k: float(per[k][i]) for k in cols}, "support": int(per["support"][i])} for i in range(c)}
    n = int(cm.sum())
    acc = float(np.trace(cm) / n) if n else float(zero_division)
    averages = {
        f"{avg} avg": {
            **{k: _metric(k, t, p, avg, c, 1, zero_division) for k in cols},
            "support": n,
        }
        for avg in ("macro", "weighted", "micro")
    }
    if output_dict:
        return {**rows, "accuracy": acc, **averages}
    width = max(12, *(len(s) for s in names)) + 2
    head = f"{'':>{width}}" + "".join(f"{k:>12}" for k in cols) + f"{'support':>10}"
    fmt = lambda v: f"{v:>12.{digits}f}"  # noqa: E731
    lines = [head, ""]
    for name, r in rows.items():
        lines.append(f"{name:>{width}}" + "".join(fmt(r[k]) for k in cols) + f"{r['support']:>10d}")
    lines.append("")
    lines.append(f"{'accuracy':>{width}}" + " " * 36 + fmt(acc) + f"{n:>10d}")
    for name, r in averages.items():
        lines.append(f"{name:>{width}}" + "".join(fmt(r[k]) for k in cols) + f"{r['support']:>10d}")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- ROC and AUC


def roc_curve(y_true, scores, pos_label: int = 1, drop_intermediate: bool = False):
    """ROC curve of binary scores: (fpr, tpr, thresholds), each a float64 array.

    Args:
        y_true: (N,) labels; an example is positive when its label == pos_label.
        scores: (N,) scores, higher = more positive (probabilities, logits or margins).
        drop_intermediate: drop points on straight segments (as sklearn's default; the
            curve and its area are unchanged).

    thresholds are the distinct scores in decreasing order with +inf first: point k counts
    examples with score >= thresholds[k] as predicted positive, so the curve runs from
    (0, 0) to (1, 1). Ties are handled as one step (a diagonal segment). Needs at least one
    positive and one negative example (ValueError otherwise).
    """
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(y_true)
    if s.ndim != 1 or t.shape != s.shape:
        raise ValueError(f"roc_curve: y_true and scores must be 1-D of the same length, got {t.shape} and {s.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("roc_curve: scores contain NaN or Inf")
    pos = t == pos_label
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            f"roc_curve: needs both positive (label {pos_label}) and negative examples; "
            f"got {n_pos} positive, {n_neg} negative"
        )
    order = np.argsort(-s, kind="stable")
    s, pos = s[order], pos[order]
    # The last index of each run of equal scores: one curve point per distinct threshold.
    ends = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]
    tps = np.cumsum(pos)[ends].astype(np.float64)
    fps = (ends + 1) - tps
    if drop_intermediate and tps.size > 2:
        keep = np.r_[True, np.logical_or(np.diff(fps, 2) != 0, np.diff(tps, 2) != 0), True]
        tps, fps, ends = tps[keep], fps[keep], ends[keep]
    fpr = np.r_[0.0, fps / n_neg]
    tpr = np.r_[0.0, tps / n_pos]
    thresholds = np.r_[np.inf, s[ends]]
    return fpr, tpr, thresholds


def auc(x, y) -> float:
    """Area under a curve by the trapezoidal rule; x must be monotonic (increasing or decreasing)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 1 or x.shape != y.shape or x.size < 2:
        raise ValueError(f"auc: x and y must be 1-D of the same length >= 2, got {x.shape} and {y.shape}")
    dx = np.diff(x)
    if np.all(dx >= 0):
        sign = 1.0
    elif np.all(dx <= 0):
        sign = -1.0
    else:
        raise ValueError("auc: x is neither increasing nor decreasing")
    return float(sign * np.sum(dx * (y[1:] + y[:-1]) / 2))


def roc_curve_ovr(y_true, scores, num_classes: int | None = None) -> dict:
    """One-vs-rest ROC curves of (N, C) scores: {class: (fpr, tpr, thresholds)}.

    Class c's curve treats label c as positive and its column of scores as the score. A
    class with no positive or no negative example has no curve and is left out.
    """
    t = _labels(y_true, "y_true")
    s = np.asarray(scores)
    if s.ndim != 2 or s.shape[0] != t.shape[0]:
        raise ValueError(f"scores must be (N, C) with N = {t.shape[0]}, got shape {s.shape}")
    c = s.shape[1] if num_classes is None else num_classes
    curves = {}
    for k in range(c):  # a loop over classes, not examples
        hits = t == k
        if hits.any() and not hits.all():
            curves[k] = roc_curve(hits.astype(np.int64), s[:, k])
    return curves


def roc_auc_score(y_true, scores, average="macro"):
    """Area under the ROC curve: binary for (N,) scores, one-vs-rest for (N, C) scores.

    average (multi-class only): "macro" (mean over classes), "weighted" (by support) or None
    (an array with one AUC per class). A class with no positive or no negative example has
    AUC NaN and is left out of the averages. Equals the probability that a random positive
    scores higher than a random negative (ties counting one half).
    """
    s = np.asarray(scores)
    if s.ndim == 1:
        fpr, tpr, _ = roc_curve(y_true, s)
        return auc(fpr, tpr)
    if average not in (None, "macro", "weighted"):
        raise ValueError(f"average must be None, 'macro' or 'weighted', got {average!r}")
    t = _labels(y_true, "y_true")
    curves = roc_curve_ovr(t, s)
    per_class = np.array([auc(*curves[k][:2]) if k in curves else np.nan for k in range(s.shape[1])])
    if average is None:
        return per_class
    ok = ~np.isnan(per_class)
    if not ok.any():
        raise ValueError("roc_auc_score: no class has both positive and negative examples")
    if average == "macro":
        return float(per_class[ok].mean())
    support = np.bincount(t, minlength=s.shape[1])[: s.shape[1]]
    return float(np.average(per_class[ok], weights=support[ok]))
