"""Plots of a training run (learning curves, confusion matrix, ROC curves) and of a benchmark
run (speed-ups per case) — each saved to a file.

matplotlib is optional (``pip install "fastlayers[bench]"``) and imported only when a plot is
made, so ``import fastlayers.plots`` always works. Figures are built on matplotlib's
object API with the Agg canvas (no pyplot): nothing changes the user's global backend, no
window opens, and it works on a machine without a display. Every function writes the
figure to ``path`` (format from the extension: .png, .pdf, .svg) and returns ``path``.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["plot_confusion_matrix", "plot_history", "plot_roc", "plot_speedups"]


def _figure(figsize):
    """A new Agg-backed matplotlib Figure, or an ImportError that says how to install matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(
            "fastlayers.plots needs matplotlib, which is not installed: "
            'pip install "fastlayers[bench]" (or pip install matplotlib)'
        ) from e
    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path):
    path = os.fspath(path)
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def _history_columns(history) -> dict:
    """A history as {name: list of per-epoch numbers}; a list of per-epoch dicts is accepted too."""
    if isinstance(history, (list, tuple)):
        cols: dict = {}
        for row in history:
            for k, v in row.items():
                cols.setdefault(k, []).append(v)
        history = cols
    if not isinstance(history, dict):
        raise TypeError(f"history must be a dict of per-epoch lists (or a list of dicts), got {type(history).__name__}")
    out = {}
    for k, v in history.items():
        if k == "epoch":
            continue
        try:
            arr = np.asarray(v, dtype=np.float64)
        except (TypeError, ValueError):
            continue  # non-numeric entries (names, settings) are not curves
        if arr.ndim == 1 and arr.size:
            out[k] = arr
    return out


def plot_history(history, path, metrics=None, title: str | None = None):
    """Learning curves: one panel per metric, "val_<m>" drawn on the same panel as "<m>".

    Args:
        history: {"loss": [...], "val_loss": [...], "accuracy": [...], ...} with one value per
            epoch (Keras' ``History.history`` layout), or a list of per-epoch dicts.
        path: output file.
        metrics: base names to plot (default: every numeric series, grouped as above).
    """
    cols = _history_columns(history)
    if not cols:
        raise ValueError("plot_history: the history has no numeric per-epoch series to plot")
    bases = []
    for k in cols:
        base = k[4:] if k.startswith("val_") else k
        if base not in bases:
            bases.append(base)
    if metrics is not None:
        missing = [m for m in metrics if m not in bases]
        if missing:
            raise ValueError(f"plot_history: no series {missing} in the history (have {bases})")
        bases = list(metrics)
    fig = _figure((4.2 * len(bases), 3.4))
    axes = fig.subplots(1, len(bases), squeeze=False)[0]
    for ax, base in zip(axes, bases):
        for key, label in ((base, "train"), ("val_" + base, "validation")):
            if key in cols:
                epochs = np.arange(1, cols[key].size + 1)
                ax.plot(epochs, cols[key], marker="o", markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)  # whole epochs on the axis
        ax.set_title(base)
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_confusion_matrix(cm, path, class_names=None, normalize: bool = False, title: str = "Confusion matrix"):
    """Heatmap of a confusion matrix (rows = true class, columns = predicted), counts in the cells.

    normalize: divide each row by its total, so the diagonal shows per-class recall.
    """
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"plot_confusion_matrix: cm must be square (C, C), got shape {cm.shape}")
    c = cm.shape[0]
    names = [str(i) for i in range(c)] if class_names is None else [str(n) for n in class_names]
    if len(names) != c:
        raise ValueError(f"plot_confusion_matrix: {len(names)} class names for {c} classes")
    values = cm.astype(np.float64)
    if normalize:
        rows = values.sum(axis=1, keepdims=True)
        values = np.divide(values, rows, out=np.zeros_like(values), where=rows > 0)
    size = max(4.0, 0.55 * c + 2.0)
    fig = _figure((size + 1.0, size))
    ax = fig.add_subplot()
    im = ax.imshow(values, cmap="Blues", vmin=0)
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_xticks(range(c), names, rotation=45, ha="right")
    ax.set_yticks(range(c), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if c <= 30:  # numbers in the cells while they stay readable
        top = values.max() if values.size else 0
        for i in range(c):
            for j in range(c):
                text = f"{values[i, j]:.2f}" if normalize else f"{int(cm[i, j])}"
                color = "white" if top and values[i, j] > 0.6 * top else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color=color)
    return _save(fig, path)


def plot_roc(y_true, scores, path, class_names=None, title: str = "ROC"):
    """ROC curve(s) with their AUC in the legend: one curve for (N,) binary scores, one per
    class (one-vs-rest) for (N, C) scores; the chance diagonal dashed."""
    from fastlayers import metrics

    s = np.asarray(scores)
    if s.ndim == 1:
        curves = {1: metrics.roc_curve(y_true, s)}
        names = {1: "positive" if class_names is None else str(class_names[1])}
    else:
        curves = metrics.roc_curve_ovr(y_true, s)
        names = {k: (str(k) if class_names is None else str(class_names[k])) for k in curves}
    fig = _figure((5.0, 4.6))
    ax = fig.add_subplot()
    for k, (fpr, tpr, _) in curves.items():
        ax.plot(fpr, tpr, linewidth=1.2, label=f"{names[k]} (AUC {metrics.auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", linewidth=0.8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate (1 - specificity)")
    ax.set_ylabel("true positive rate (sensitivity)")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=7)
    return _save(fig, path)


def plot_speedups(records, path, primary: str = "fastlayers", title: str | None = None):
    """Horizontal bars, one group per case of a ``fastlayers bench`` run: the speed-up of
    ``primary`` against every other backend timed in the same run (the other's median time
    over the primary's; > 1: the primary is faster), on a log scale with a line at 1.

    records: the ``results`` of ``fastlayers bench --json`` (or what run_cases returns).
    Cases where the primary did not run are left out; raises ValueError when none is left.
    """
    rows = [r for r in records if r["backend"] == primary and r["status"] == "ok" and r["speedup_vs"]]
    if not rows:
        raise ValueError(f"records: no successful {primary!r} result with a peer to compare against")
    peers = list(dict.fromkeys(p for r in rows for p in r["speedup_vs"]))
    labels = [f"{r['family']}/{r['case']}" for r in rows]
    fig = _figure((9.0, 1.2 + 0.22 * len(rows) * max(1, len(peers)) ** 0.5))
    ax = fig.add_subplot()
    height = 0.8 / len(peers)
    y = np.arange(len(rows))
    for i, p in enumerate(peers):
        vals = np.array([r["speedup_vs"].get(p, np.nan) for r in rows], dtype=np.float64)
        ax.barh(y - 0.4 + (i + 0.5) * height, vals, height=height, label=f"vs {p}")
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"speed-up of {primary} (other's time / {primary}'s; > 1: {primary} faster)")
    threads = sorted({r["threads"] for r in rows})
    ax.set_title(title or f"{primary} speed-ups, {', '.join(map(str, threads))} thread(s)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="x", which="both", alpha=0.3)
    return _save(fig, path)
