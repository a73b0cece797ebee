"""Linear models: Rosenblatt's perceptron, logistic regression, softmax regression.

The perceptron is NOT a backprop Module: it is trained by its own rule (``fit``), one
example at a time, and stops when an epoch makes no mistake. Logistic and softmax
regression are ordinary Modules (a Flatten and one Linear) trained with a loss and an
optimiser like every other network.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from fastlayers import nn, ops
from fastlayers.models._common import check_classes, check_shape, maybe_uninitialised, prod

__all__ = ["ConvergenceWarning", "FitResult", "Perceptron", "logistic", "perceptron", "softmax"]


class ConvergenceWarning(UserWarning):
    """The perceptron reached max_epochs with mistakes left (the data are not linearly
    separable, or the cap is too low)."""


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What Perceptron.fit returns.

    converged: an epoch made no mistake (the data are linearly separated).
    epochs: epochs run (including the last, mistake-free one when converged).
    mistakes: the number of updates in each epoch.
    message: one line saying what happened.
    """

    converged: bool
    epochs: int
    mistakes: tuple
    message: str

    def __bool__(self):
        return self.converged


class Perceptron:
    """Rosenblatt's perceptron (1958): y = step(w . x + b), trained by his rule.

    Rule (online, one example at a time, in order or shuffled per epoch): with labels
    t in {-1, +1}, an example is a mistake when t (w . x + b) <= 0, and then
    w += lr t x, b += lr t. This is stochastic gradient descent with learning rate lr on
    the perceptron criterion max(0, -t (w . x + b)), which is how it is computed here:
    the score with ops.linear and the update with ops.sgd_step (gradient -t x).

    The perceptron convergence theorem (Novikoff, 1962): on linearly separable data the
    rule stops after finitely many mistakes; on non-separable data (XOR) it never stops,
    so ``fit`` caps the epochs and reports non-convergence with a ConvergenceWarning and
    ``FitResult.converged == False``. Starting from zero weights, lr only scales w and
    b, so it changes nothing about which examples are mistakes.

    torch has no equivalent (sklearn.linear_model.Perceptron is the closest). Not a
    fastlayers.nn.Module: there is no backward, and no loss to pass to a Trainer.

    Attributes: weight (features,) float32, bias float (None before fit), classes (the
    two label values seen by fit, mapped to -1 and +1 in that order).
    """

    def __init__(self, lr: float = 1.0, shuffle: bool = False, seed=None, input_shape=None):
        self.lr = float(lr)
        if not self.lr > 0:
            raise ValueError(f"lr: expected a number > 0, got {lr}")
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.input_shape = None if input_shape is None else check_shape(input_shape)
        self.weight = None
        self.bias = None
        self.classes = None

    def _flat(self, x, what="x") -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim < 2:
            raise ValueError(f"{what}: expected (N, features...), got shape {x.shape}")
        x = np.ascontiguousarray(x.reshape(len(x), -1))
        if self.weight is not None and x.shape[1] != self.weight.shape[0]:
            raise ValueError(f"{what}: expected {self.weight.shape[0]} features, got {x.shape[1]}")
        return x

    def decision_function(self, x) -> np.ndarray:
        """w . x + b for each row of x: (N,) float32."""
        if self.weight is None:
            raise RuntimeError("Perceptron: call fit before predict/decision_function")
        x = self._flat(x)
        return ops.linear(x, self.weight[None, :], self._b)[:, 0]

    def predict(self, x) -> np.ndarray:
        """Labels in the values fit saw: classes[1] where w . x + b > 0, else classes[0]."""
        return np.where(self.decision_function(x) > 0, self.classes[1], self.classes[0])

    @property
    def _b(self):
        return np.array([self.bias], np.float32)

    def fit(self, x, y, max_epochs: int = 100, warn: bool = True) -> FitResult:
        """Train by the perceptron rule from zero weights for at most ``max_epochs`` epochs.

        x: (N, features...) (flattened); y: (N,) with two values, {0, 1} or {-1, 1}
        (the smaller maps to -1). Returns a FitResult; when no epoch was mistake-free it
        also warns (ConvergenceWarning, unless warn=False).
        """
        x = self._flat(x)
        y = np.asarray(y).reshape(-1)
        if len(y) != len(x):
            raise ValueError(f"y: expected {len(x)} labels, got {len(y)}")
        classes = np.unique(y)
        if len(classes) > 2 or not set(classes.tolist()) <= {0, 1, -1}:
            raise ValueError(f"y: expected labels in {{0, 1}} or {{-1, 1}}, got values {classes.tolist()}")
        if set(classes.tolist()) == {-1, 1} or -1 in classes:
            self.classes = (-1, 1)
        else:
            self.classes = (0, 1)
        if isinstance(max_epochs, bool) or not isinstance(max_epochs, (int, np.integer)) or max_epochs < 1:
            raise ValueError(f"max_epochs: expected a positive integer, got {max_epochs!r}")
        t = np.where(y == self.classes[1], 1.0, -1.0).astype(np.float32)  # (N,) in {-1, +1}
        self.weight = np.zeros(x.shape[1], np.float32)  # (features,)
        b = np.zeros(1, np.float32)  # the bias as a 1-element parameter for sgd_step
        self.bias = 0.0
        rng = np.random.default_rng(self.seed)
        mistakes = []
        for epoch in range(1, int(max_epochs) + 1):
            order = rng.permutation(len(x)) if self.shuffle else range(len(x))
            count = 0
            for i in order:
                xi = x[i:i + 1]  # (1, features)
                score = ops.linear(xi, self.weight[None, :], b)[0, 0]
                if t[i] * score <= 0:  # a mistake (or on the boundary): w += lr t x, b += lr t
                    ops.sgd_step(self.weight, -t[i] * xi[0], lr=self.lr)
                    ops.sgd_step(b, np.array([-t[i]], np.float32), lr=self.lr)
                    count += 1
            mistakes.append(count)
            self.bias = float(b[0])
            if count == 0:
                msg = f"converged after {epoch} epochs: every example is classified correctly"
                return FitResult(True, epoch, tuple(mistakes), msg)
        msg = (f"did not converge in {max_epochs} epochs ({mistakes[-1]} mistakes in the last): the data are "
               f"not linearly separable (e.g. XOR) or max_epochs is too low")
        if warn:
            warnings.warn(f"Perceptron {msg}", ConvergenceWarning, stacklevel=2)
        return FitResult(False, int(max_epochs), tuple(mistakes), msg)

    def __repr__(self):
        return f"Perceptron(lr={self.lr}, shuffle={self.shuffle})"


def perceptron(lr: float = 1.0, shuffle: bool = False, seed=None, input_shape=None, num_classes=2, *, rng=None,
               init=True):
    """Rosenblatt's perceptron (see Perceptron): a binary linear classifier trained by
    its own rule, not by backprop. num_classes must be 2. rng and init are accepted for
    a uniform ``models.get`` call and unused (the rule starts from zero weights; seed
    drives the shuffling)."""
    check_classes(num_classes)
    if num_classes != 2:
        raise ValueError(f"num_classes: the perceptron is a binary classifier, got {num_classes}")
    return Perceptron(lr=lr, shuffle=shuffle, seed=seed, input_shape=input_shape)


def logistic(input_shape=(2,), num_classes=2, *, rng=None, init=True):
    """Logistic regression: Flatten -> Linear(features, 1), one logit per example.

    Train with BCEWithLogitsLoss on float targets of shape (N, 1) in {0, 1}
    (p(y=1 | x) = sigmoid(logit)). Equivalent torch: nn.Sequential(nn.Flatten(),
    nn.Linear(features, 1)) with nn.BCEWithLogitsLoss. num_classes must be 2 (use
    ``softmax`` for more). Parameters: features + 1.
    """
    shape = check_shape(input_shape)
    if check_classes(num_classes) != 2:
        raise ValueError(f"num_classes: logistic regression is binary, got {num_classes} (use 'softmax')")
    with maybe_uninitialised(init):
        return nn.Sequential(nn.Flatten(), nn.Linear(prod(shape), 1, rng=rng))


def softmax(input_shape=(1, 28, 28), num_classes=10, *, rng=None, init=True):
    """Softmax (multinomial logistic) regression: Flatten -> Linear(features, classes).

    Outputs logits; train with CrossEntropyLoss (the softmax is fused into the loss).
    torch: nn.Sequential(nn.Flatten(), nn.Linear(features, classes)). Parameters:
    (features + 1) * classes — 7,850 for 28x28 images and 10 classes.
    """
    shape = check_shape(input_shape)
    with maybe_uninitialised(init):
        return nn.Sequential(nn.Flatten(), nn.Linear(prod(shape), check_classes(num_classes), rng=rng))
