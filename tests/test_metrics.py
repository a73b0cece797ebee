"""Tests of fastlayers.metrics (against confusion matrices and ROC curves worked out by hand,
and against scikit-learn when it is installed) and of fastlayers.plots."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from fastlayers import metrics, plots

# ============================================================================= a 3-class case by hand
#
# y_true = 0 0 0 1 1 2 2 2 2 0
# y_pred = 0 1 0 1 2 2 2 1 2 0
#
# confusion matrix (rows true, columns predicted):
#            pred 0  pred 1  pred 2   | support
#   true 0     3       1       0      |   4
#   true 1     0       1       1      |   2
#   true 2     0       1       3      |   4
#   column     3       3       4      |  10
#
#   class:          0        1        2        micro (sums)
#   TP              3        1        3        7
#   FP = col - TP   0        2        1        3
#   FN = row - TP   1        1        1        3
#   TN = 10 - rest  6        6        5        17
#   precision      3/3      1/3      3/4       7/10
#   recall         3/4      1/2      3/4       7/10
#   specificity    6/6      6/8      5/6       17/20
#   F1 2TP/(2TP+FP+FN) 6/7  2/5      6/8       7/10

Y_TRUE = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 0])
Y_PRED = np.array([0, 1, 0, 1, 2, 2, 2, 1, 2, 0])
CM = np.array([[3, 1, 0], [0, 1, 1], [0, 1, 3]])
SUPPORT = np.array([4, 2, 4])
PER_CLASS = {
    "precision": [1.0, 1 / 3, 3 / 4],
    "recall": [3 / 4, 1 / 2, 3 / 4],
    "specificity": [1.0, 6 / 8, 5 / 6],
    "f1": [6 / 7, 2 / 5, 6 / 8],
}
MICRO = {"precision": 0.7, "recall": 0.7, "specificity": 17 / 20, "f1": 0.7}
FUNCS = {"precision": metrics.precision, "recall": metrics.recall, "specificity": metrics.specificity,
         "f1": metrics.f1_score}


def test_confusion_matrix_by_hand():
    cm = metrics.confusion_matrix(Y_TRUE, Y_PRED)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, CM)
    wide = metrics.confusion_matrix(Y_TRUE, Y_PRED, num_classes=5)
    np.testing.assert_array_equal(wide[:3, :3], CM)
    assert wide[3:].sum() == 0 and wide[:, 3:].sum() == 0


def test_accuracy_by_hand():
    assert metrics.accuracy(Y_TRUE, Y_PRED) == 0.7
    assert metrics.accuracy([1, 2], [1, 2]) == 1.0


@pytest.mark.parametrize("kind", list(PER_CLASS))
def test_per_class_and_averages_by_hand(kind):
    fn = FUNCS[kind]
    per = np.array(PER_CLASS[kind])
    np.testing.assert_allclose(fn(Y_TRUE, Y_PRED), per, rtol=1e-12)
    np.testing.assert_allclose(fn(Y_TRUE, Y_PRED, average="macro"), per.mean(), rtol=1e-12)
    np.testing.assert_allclose(fn(Y_TRUE, Y_PRED, average="weighted"), (per * SUPPORT).sum() / 10, rtol=1e-12)
    np.testing.assert_allclose(fn(Y_TRUE, Y_PRED, average="micro"), MICRO[kind], rtol=1e-12)


def test_named_averages_by_hand():
    # The same numbers written out, so the formulas above are not the only oracle.
    assert metrics.precision(Y_TRUE, Y_PRED, average="macro") == pytest.approx(25 / 36)
    assert metrics.recall(Y_TRUE, Y_PRED, average="macro") == pytest.approx(2 / 3)
    assert metrics.specificity(Y_TRUE, Y_PRED, average="macro") == pytest.approx(31 / 36)
    assert metrics.precision(Y_TRUE, Y_PRED, average="weighted") == pytest.approx(23 / 30)
    assert metrics.sensitivity is metrics.recall


def test_scores_are_reduced_by_argmax():
    scores = np.eye(3)[Y_PRED] * 2.0 - 0.5  # one-hot of the predictions, as logits
    np.testing.assert_array_equal(metrics.confusion_matrix(Y_TRUE, scores), CM)
    assert metrics.accuracy(Y_TRUE, scores) == 0.7


# ============================================================================= binary case by hand
#
# y_true = 1 1 0 0 1 0,  y_pred = 1 0 0 0 1 0
# cm = [[3, 0], [1, 2]]; class 1: TP 2, FP 0, FN 1, TN 3
#   precision 1, recall 2/3, specificity 3/3, F1 4/5;  class 0: precision 3/4, recall 1, spec 2/3, F1 6/7


def test_binary_by_hand():
    t, p = [1, 1, 0, 0, 1, 0], [1, 0, 0, 0, 1, 0]
    np.testing.assert_array_equal(metrics.confusion_matrix(t, p), [[3, 0], [1, 2]])
    assert metrics.precision(t, p, average="binary") == 1.0
    assert metrics.recall(t, p, average="binary") == pytest.approx(2 / 3)
    assert metrics.specificity(t, p, average="binary") == 1.0
    assert metrics.f1_score(t, p, average="binary") == pytest.approx(4 / 5)
    assert metrics.precision(t, p, average="binary", pos_label=0) == pytest.approx(3 / 4)
    assert metrics.specificity(t, p, average="binary", pos_label=0) == pytest.approx(2 / 3)
    np.testing.assert_allclose(metrics.f1_score(t, p), [6 / 7, 4 / 5])
    with pytest.raises(ValueError, match="needs two classes"):
        metrics.precision(Y_TRUE, Y_PRED, average="binary")


def test_zero_division():
    t, p = [0, 0, 1, 1], [0, 0, 0, 0]  # class 1 never predicted: precision 0/0
    np.testing.assert_array_equal(metrics.precision(t, p), [0.5, 0.0])
    np.testing.assert_array_equal(metrics.precision(t, p, zero_division=1.0), [0.5, 1.0])
    np.testing.assert_array_equal(metrics.f1_score(t, p), [2 / 3, 0.0])


# ============================================================================= top-k


def test_top_k_by_hand():
    scores = np.array([
        [0.1, 0.5, 0.3, 0.1],  # true 2: rank 2 (0.5 ahead)
        [0.7, 0.1, 0.1, 0.1],  # true 0: rank 1
        [0.1, 0.2, 0.3, 0.4],  # true 0: rank 4
        [0.3, 0.3, 0.2, 0.2],  # true 1: tied first with class 0 -> counts as rank 1
    ])
    y = [2, 0, 0, 1]
    assert metrics.top_k_accuracy(y, scores, k=1) == 0.5
    assert metrics.top_k_accuracy(y, scores, k=2) == 0.75
    assert metrics.top_k_accuracy(y, scores, k=3) == 0.75
    assert metrics.top_k_accuracy(y, scores, k=4) == 1.0
    assert metrics.top_k_accuracy(y, scores, k=1) >= metrics.accuracy(y, scores)  # ties in its favour


# ============================================================================= bad input

BAD = [
    (lambda: metrics.confusion_matrix([0, 1], [0]), "y_true has 2 labels but y_pred has 1"),
    (lambda: metrics.confusion_matrix([0, 3], [0, 1], num_classes=3), "labels go up to 3 but num_classes is 3"),
    (lambda: metrics.confusion_matrix([0, -1], [0, 1]), "negative label"),
    (lambda: metrics.confusion_matrix([0.5, 1], [0, 1]), "integer class labels"),
    (lambda: metrics.accuracy([], []), "empty"),
    (lambda: metrics.precision(Y_TRUE, Y_PRED, average="samples"), "average must be one of"),
    (lambda: metrics.top_k_accuracy([0, 1], np.zeros((2, 2)), k=0), "k must be >= 1"),
    (lambda: metrics.top_k_accuracy([0, 5], np.zeros((2, 2))), "only 2 columns"),
    (lambda: metrics.top_k_accuracy([0, 1], np.zeros(2)), r"must be \(N, C\)"),
    (lambda: metrics.roc_curve([1, 1, 1], [0.1, 0.2, 0.3]), "needs both positive"),
    (lambda: metrics.roc_curve([0, 1], [0.1, np.nan]), "NaN"),
    (lambda: metrics.roc_curve([0, 1], [0.1]), "same length"),
    (lambda: metrics.auc([0, 1, 0.5], [0, 1, 1]), "neither increasing nor decreasing"),
    (lambda: metrics.classification_report([0, 1], [0, 1], class_names=["a", "b", "c", "d"][:1]),
     "1 names for 2 classes"),
]


@pytest.mark.parametrize("call,message", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ============================================================================= report


def test_classification_report_dict_matches_the_functions():
    rep = metrics.classification_report(Y_TRUE, Y_PRED, class_names=["cat", "dog", "emu"], output_dict=True)
    for i, name in enumerate(["cat", "dog", "emu"]):
        for kind in PER_CLASS:
            assert rep[name][kind] == pytest.approx(PER_CLASS[kind][i])
        assert rep[name]["support"] == SUPPORT[i]
    assert rep["accuracy"] == 0.7
    assert rep["micro avg"]["specificity"] == pytest.approx(17 / 20)
    assert rep["macro avg"]["precision"] == pytest.approx(25 / 36)
    assert rep["weighted avg"]["support"] == 10


def test_classification_report_text():
    text = metrics.classification_report(Y_TRUE, Y_PRED, class_names=["cat", "dog", "emu"], digits=4)
    lines = text.splitlines()
    assert lines[0].split() == ["precision", "recall", "specificity", "f1", "support"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:] if line.strip()}
    assert rows["dog"] == ["0.3333", "0.5000", "0.7500", "0.4000", "2"]
    assert rows["accuracy"] == ["0.7000", "10"]
    assert rows["macro"][1:] == [f"{25 / 36:.4f}", f"{2 / 3:.4f}", f"{31 / 36:.4f}",
                                 f"{np.mean(PER_CLASS['f1']):.4f}", "10"]
    # the accuracy value sits under the f1 column
    head = lines[0]
    acc_line = next(line for line in lines if line.strip().startswith("accuracy"))
    assert acc_line.index("0.7000") + len("0.7000") == head.index("f1") + len("f1")


# ============================================================================= ROC / AUC by hand


def test_roc_curve_by_hand():
    # scores 0.1 (neg), 0.4 (neg), 0.35 (pos), 0.8 (pos); thresholds every distinct score.
    fpr, tpr, thr = metrics.roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    np.testing.assert_array_equal(thr, [np.inf, 0.8, 0.4, 0.35, 0.1])
    np.testing.assert_array_equal(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_array_equal(tpr, [0, 0.5, 0.5, 1, 1])
    assert metrics.auc(fpr, tpr) == 0.75
    assert metrics.roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75


def test_roc_curve_ties_and_pos_label():
    # Sorted: 0.9 (pos), 0.5 (pos), 0.5 (neg), 0.1 (neg): the tie is one diagonal step.
    fpr, tpr, thr = metrics.roc_curve([1, 0, 1, 0], [0.5, 0.5, 0.9, 0.1])
    np.testing.assert_array_equal(thr, [np.inf, 0.9, 0.5, 0.1])
    np.testing.assert_array_equal(fpr, [0, 0, 0.5, 1])
    np.testing.assert_array_equal(tpr, [0, 0.5, 1, 1])
    assert metrics.auc(fpr, tpr) == 0.875  # = P(pos > neg) with ties as 1/2: (0.5 + 1 + 1 + 1) / 4
    fpr2, tpr2, _ = metrics.roc_curve([7, 3, 7, 3], [0.5, 0.5, 0.9, 0.1], pos_label=7)
    np.testing.assert_array_equal(fpr2, fpr)
    np.testing.assert_array_equal(tpr2, tpr)


def test_roc_drop_intermediate_keeps_the_area(rng):
    y = rng.integers(0, 2, 300)
    s = np.round(y + rng.standard_normal(300), 1)
    full = metrics.roc_curve(y, s)
    thin = metrics.roc_curve(y, s, drop_intermediate=True)
    assert len(thin[0]) < len(full[0])
    assert metrics.auc(*thin[:2]) == pytest.approx(metrics.auc(*full[:2]), abs=1e-12)


def test_auc_perfect_reversed_and_mann_whitney(rng):
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.2, 0.7, 0.9, 0.3, 0.8])
    assert metrics.roc_auc_score(y, s) == 1.0
    assert metrics.roc_auc_score(y, -s) == 0.0
    y = rng.integers(0, 2, 200)
    s = np.round(y * 0.7 + rng.standard_normal(200), 1)  # rounded: plenty of ties
    pos, neg = s[y == 1], s[y == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert metrics.roc_auc_score(y, s) == pytest.approx(wins / (len(pos) * len(neg)), abs=1e-12)


def test_auc_trapezoid_either_direction():
    assert metrics.auc([0, 1, 2], [0, 1, 1]) == 1.5
    assert metrics.auc([2, 1, 0], [1, 1, 0]) == 1.5


# One-vs-rest by hand (each column ranks "this class" against the rest):
#   class 0 column: positives 0.8, 0.5 vs negatives 0.3, 0.2, 0.6, 0.1 -> 7 of 8 pairs won     = 7/8
#   class 1 column: positives 0.6, 0.3 vs negatives 0.1, 0.2, 0.4, 0.3 -> 4 + 2 + tie 0.5 = 6.5 = 13/16
#   class 2 column: positives 0.6, 0.6 vs negatives all 0.1                                    = 1
OVR_Y = np.array([0, 1, 2, 0, 1, 2])
OVR_SCORES = np.array([
    [0.8, 0.1, 0.1],
    [0.3, 0.6, 0.1],
    [0.2, 0.2, 0.6],
    [0.5, 0.4, 0.1],
    [0.6, 0.3, 0.1],
    [0.1, 0.3, 0.6],
])


def test_roc_auc_one_vs_rest_by_hand():
    per = metrics.roc_auc_score(OVR_Y, OVR_SCORES, average=None)
    np.testing.assert_allclose(per, [7 / 8, 13 / 16, 1.0], rtol=1e-12)
    assert metrics.roc_auc_score(OVR_Y, OVR_SCORES) == pytest.approx(43 / 48)
    assert metrics.roc_auc_score(OVR_Y, OVR_SCORES, average="weighted") == pytest.approx(43 / 48)
    curves = metrics.roc_curve_ovr(OVR_Y, OVR_SCORES)
    assert sorted(curves) == [0, 1, 2]
    fpr, tpr, _ = curves[2]
    np.testing.assert_array_equal(fpr, [0, 0, 1])
    np.testing.assert_array_equal(tpr, [0, 1, 1])


def test_roc_auc_one_vs_rest_missing_class():
    y = np.array([0, 1, 0, 1, 0, 1])  # class 2 never occurs: no curve, NaN, left out of the mean
    per = metrics.roc_auc_score(y, OVR_SCORES, average=None)
    assert np.isnan(per[2]) and not np.isnan(per[:2]).any()
    assert metrics.roc_auc_score(y, OVR_SCORES) == pytest.approx(per[:2].mean())
    assert 2 not in metrics.roc_curve_ovr(y, OVR_SCORES)
    weighted = metrics.roc_auc_score(y, OVR_SCORES, average="weighted")
    assert weighted == pytest.approx(per[:2].mean())  # equal supports 3 and 3


# ============================================================================= against scikit-learn


def test_against_sklearn(rng):
    skm = pytest.importorskip("sklearn.metrics", reason="scikit-learn not installed (optional cross-check)")
    n, c = 500, 5
    y = rng.integers(0, c, n)
    logits = rng.standard_normal((n, c)) + 1.5 * np.eye(c)[y]
    pred = logits.argmax(1)
    np.testing.assert_array_equal(metrics.confusion_matrix(y, pred), skm.confusion_matrix(y, pred))
    for avg in (None, "macro", "micro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(y, pred, average=avg, zero_division=0)
        np.testing.assert_allclose(metrics.precision(y, pred, average=avg), p, rtol=1e-12)
        np.testing.assert_allclose(metrics.recall(y, pred, average=avg), r, rtol=1e-12)
        np.testing.assert_allclose(metrics.f1_score(y, pred, average=avg), f, rtol=1e-12)
    for k in (1, 2, 3):
        assert metrics.top_k_accuracy(y, logits, k) == pytest.approx(skm.top_k_accuracy_score(y, logits, k=k))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    for avg in ("macro", "weighted"):
        assert metrics.roc_auc_score(y, probs, average=avg) == pytest.approx(
            skm.roc_auc_score(y, probs, multi_class="ovr", average=avg), abs=1e-12)
    yb = (y == 0).astype(int)
    s = np.round(logits[:, 0], 1)  # ties
    for drop in (False, True):
        ours = metrics.roc_curve(yb, s, drop_intermediate=drop)
        theirs = skm.roc_curve(yb, s, drop_intermediate=drop)
        for a, b in zip(ours, theirs):
            np.testing.assert_allclose(a, b, rtol=1e-12)
    assert metrics.roc_auc_score(yb, s) == pytest.approx(skm.roc_auc_score(yb, s), abs=1e-12)


# ============================================================================= plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == PNG_MAGIC and path.stat().st_size > 2000


@pytest.fixture
def mpl():
    return pytest.importorskip("matplotlib", reason="matplotlib not installed (optional: fastlayers[bench])")


HISTORY = {"loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.7, 0.6], "accuracy": [0.5, 0.7, 0.8],
           "val_accuracy": [0.45, 0.65, 0.7], "epoch_seconds": [2.0, 1.9, 1.9], "model": "mlp"}


def test_plot_history_writes_png(mpl, tmp_path):
    out = plots.plot_history(HISTORY, tmp_path / "curves.png", title="mlp")
    assert out == str(tmp_path / "curves.png") and _is_png(tmp_path / "curves.png")
    pairs = zip(HISTORY["loss"], HISTORY["val_loss"])
    rows = [{"epoch": i + 1, "loss": v, "val_loss": w} for i, (v, w) in enumerate(pairs)]
    out = plots.plot_history(rows, tmp_path / "sub" / "rows.png", metrics=["loss"])  # makes the folder
    assert _is_png(tmp_path / "sub" / "rows.png") and out.endswith("rows.png")
    with pytest.raises(ValueError, match="no series"):
        plots.plot_history(HISTORY, tmp_path / "x.png", metrics=["f1"])
    with pytest.raises(ValueError, match="no numeric"):
        plots.plot_history({"model": "mlp"}, tmp_path / "x.png")


def test_plot_confusion_matrix_writes_png(mpl, tmp_path):
    plots.plot_confusion_matrix(CM, tmp_path / "cm.png", class_names=["cat", "dog", "emu"])
    plots.plot_confusion_matrix(CM, tmp_path / "cmn.png", normalize=True)
    assert _is_png(tmp_path / "cm.png") and _is_png(tmp_path / "cmn.png")
    with pytest.raises(ValueError, match="square"):
        plots.plot_confusion_matrix(np.zeros((2, 3)), tmp_path / "x.png")


def test_plot_roc_writes_png(mpl, tmp_path):
    plots.plot_roc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], tmp_path / "roc.png")
    plots.plot_roc(OVR_Y, OVR_SCORES, tmp_path / "ovr.png", class_names=["a", "b", "c"])
    assert _is_png(tmp_path / "roc.png") and _is_png(tmp_path / "ovr.png")


def test_plots_without_matplotlib_say_how_to_install(tmp_path, monkeypatch):
    # A None entry in sys.modules makes "import matplotlib..." raise ImportError.
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'pip install "fastlayers\[bench\]"'):
        plots.plot_history(HISTORY, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
