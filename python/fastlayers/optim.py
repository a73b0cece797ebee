"""Optimisers and learning-rate schedules (torch.optim's names, defaults and update rules).

An optimiser holds Parameters (fastlayers.nn.Parameter) and, per parameter, its state
(momentum buffers, moment estimates, a step counter). ``step()`` updates every parameter
that has a gradient and is not frozen, in place, with one fused kernel call per
parameter — ``fastlayers.ops.sgd_step / rmsprop_step / adagrad_step / adam_step`` for
float32, or the NumPy reference (:mod:`fastlayers.reference`) for float64 parameters —
whose docstrings give the formulas. Parameters with ``requires_grad=False`` or
``grad is None`` are skipped (their state and step counters do not advance)::

    opt = Adam(model.parameters(), lr=1e-3)
    sched = StepLR(opt, step_size=10, gamma=0.5)
    for epoch in range(epochs):
        for x, y in batches:
            opt.zero_grad(); loss_fn(model(x), y); model.backward(loss_fn.backward()); opt.step()
        sched.step()

``params`` is a list of Parameters, a Module (its parameters()), or a list of dicts
``{"params": [...], "lr": ...}`` (parameter groups with their own hyper-parameters, as
in torch). ``opt.lr`` reads the first group's learning rate and sets every group's;
schedules set it per group. ``state_dict()``/``load_state_dict()`` save and restore the
hyper-parameters and the state (arrays copied) by parameter position.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from fastlayers import ops
from fastlayers import reference as _reference
from fastlayers.nn.module import Module, Parameter
from fastlayers.ops._device import device_of, is_device_array

__all__ = [
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "ExponentialLR",
    "Optimizer",
    "RMSprop",
    "ReduceLROnPlateau",
    "StepLR",
]


# --------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------


def _real(x, name: str) -> float:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(x).__name__}")
    return float(x)


def _nonneg(x, name: str) -> float:
    x = _real(x, name)
    if not x >= 0.0:  # also refuses NaN
        raise ValueError(f"{name}: expected a number >= 0, got {x}")
    return x


def _unit(x, name: str) -> float:
    x = _real(x, name)
    if not 0.0 <= x < 1.0:
        raise ValueError(f"{name}: expected a number in [0, 1), got {x}")
    return x


def _flag(x, name: str) -> bool:
    if not isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name}: expected a bool, got {type(x).__name__}")
    return bool(x)


def _kernel(name: str, param: np.ndarray):
    """The in-place step kernel for a parameter array: the C++ one for float32, the
    NumPy reference for other float dtypes (float64 gradient-checked networks)."""
    return getattr(ops if param.dtype == np.float32 else _reference, name)


# --------------------------------------------------------------------------------------
# Optimizer base
# --------------------------------------------------------------------------------------


class Optimizer:
    """Base class (torch.optim.Optimizer): parameter groups, per-parameter state, zero_grad,
    the lr property, state_dict/load_state_dict. Subclasses set ``defaults`` and implement
    ``_check(group)`` and ``_update(param, state, group)``."""

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: dict = {}  # Parameter -> dict
        if isinstance(params, Module):
            params = params.parameters()
        elif isinstance(params, Parameter):
            raise TypeError("params: expected an iterable of Parameters (or a Module), got one Parameter; "
                            "wrap it in a list")
        params = list(params)
        if not params:
            raise ValueError("params: got an empty list of parameters")
        if all(isinstance(g, dict) for g in params):
            for g in params:
                self.add_param_group(g)
        else:
            self.add_param_group({"params": params})

    def add_param_group(self, group: dict) -> None:
        """Add {"params": [...], hyper-parameter: value, ...}; unset ones take the defaults."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError("group: expected a dict with a 'params' entry")
        params = group["params"]
        params = params.parameters() if isinstance(params, Module) else (
            [params] if isinstance(params, Parameter) else list(params))
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(f"params[{i}]: expected a fastlayers.nn.Parameter, got {type(p).__name__}")
            if id(p) in seen:
                raise ValueError(f"params[{i}]: parameter {p.name!r} appears in more than one group (or twice)")
            seen.add(id(p))
        unknown = sorted(set(group) - set(self.defaults) - {"params"})
        if unknown:
            raise ValueError(f"group: unknown hyper-parameter(s) {unknown}; expected some of {sorted(self.defaults)}")
        full = {**self.defaults, **{k: v for k, v in group.items() if k != "params"}}
        self._check(full)
        full["params"] = params
        self.param_groups.append(full)

    def _check(self, group: dict) -> None:
        """Validate (and normalise, in place) a group's hyper-parameters."""
        group["lr"] = _nonneg(group["lr"], "lr")

    @property
    def lr(self) -> float:
        """The learning rate of the first parameter group; setting it sets every group's."""
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value):
        value = _nonneg(value, "lr")
        for g in self.param_groups:
            g["lr"] = value

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every parameter (to None, torch's default, or to zeros)."""
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none:
                    p.grad = None
                elif is_device_array(p.grad):
                    p.grad = device_of(g=p.grad).zeros(p.grad.shape, np.dtype(p.grad.dtype))
                elif p.grad is not None:
                    p.grad.fill(0)

    def step(self) -> None:
        """One update of every parameter with requires_grad and a gradient."""
        for g in self.param_groups:
            for p in g["params"]:
                if not p.requires_grad or p.grad is None:
                    continue
                state = self.state.get(p)
                if state is None:
                    state = self.state[p] = {"step": 0}
                state["step"] += 1
                self._update(p, state, g)

    def _update(self, p: Parameter, state: dict, group: dict) -> None:
        raise TypeError(f"{type(self).__name__}: an Optimizer subclass defines _update(p, state, group)")

    @staticmethod
    def _buffer(state: dict, name: str, p: Parameter, fill: float = 0.0) -> np.ndarray:
        """state[name], created as full(p.shape, fill) in p's dtype the first time."""
        buf = state.get(name)
        if buf is None or buf.shape != p.data.shape or buf.dtype != p.data.dtype:
            full = np.full(p.data.shape, fill, dtype=p.data.dtype)
            dev = device_of(p=p.data)  # on a GPU: the state lives beside its parameter
            buf = state[name] = full if dev.is_cpu else dev.xp.asarray(full)
        return buf

    # ---- state -------------------------------------------------------------------------

    def _all_params(self) -> list:
        return [p for g in self.param_groups for p in g["params"]]

    def state_dict(self) -> dict:
        """{"state": {index: {name: array copy, "step": int}}, "param_groups": [{hyper..., "params":
        [index, ...]}]}: parameters by their position in the groups, as torch."""
        index = {id(p): i for i, p in enumerate(self._all_params())}
        state = {index[id(p)]: {k: (v.copy() if isinstance(v, np.ndarray) or is_device_array(v) else v)
                                for k, v in s.items()}
                 for p, s in self.state.items() if id(p) in index}
        groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [index[id(p)] for p in g["params"]]}
                  for g in self.param_groups]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyper-parameters and state from state_dict() of an optimiser of the same
        class over parameters of the same shapes in the same order (ValueError otherwise)."""
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError("state_dict: expected a dict with keys 'state' and 'param_groups' (from state_dict())")
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"state_dict: has {len(groups)} parameter groups, this optimiser has "
                             f"{len(self.param_groups)}")
        for i, (saved, mine) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(mine["params"]):
                raise ValueError(f"state_dict: group {i} has {len(saved['params'])} parameters, this optimiser's "
                                 f"has {len(mine['params'])}")
        params = self._all_params()
        new_state = {}
        for idx, s in state_dict["state"].items():
            if not 0 <= int(idx) < len(params):
                raise ValueError(f"state_dict: state for parameter {idx}, but there are {len(params)}")
            p = params[int(idx)]
            entry = {}
            for k, v in s.items():
                if isinstance(v, np.ndarray):
                    if v.shape != p.data.shape:
                        raise ValueError(f"state_dict: state[{idx}][{k!r}] has shape {v.shape}, parameter "
                                         f"{p.name!r} has {p.data.shape}")
                    v = np.array(v, dtype=p.data.dtype, order="C")
                entry[k] = v
            new_state[p] = entry
        new_groups = []
        for saved, mine in zip(groups, self.param_groups):
            g = {**{k: v for k, v in saved.items() if k != "params"}}
            unknown = sorted(set(g) - set(self.defaults))
            if unknown:
                raise ValueError(f"state_dict: unknown hyper-parameter(s) {unknown} for {type(self).__name__}")
            g = {**self.defaults, **g}
            self._check(g)
            g["params"] = mine["params"]
            new_groups.append(g)
        self.state = new_state
        self.param_groups = new_groups

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            hyper = ", ".join(f"{k}={v}" for k, v in g.items() if k != "params")
            lines.append(f"  group {i}: {len(g['params'])} parameters, {hyper}")
        return "\n".join(lines) + "\n)"


# --------------------------------------------------------------------------------------
# Optimisers
# --------------------------------------------------------------------------------------


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight
    decay (torch.optim.SGD): g = grad + weight_decay * w; v = g on the first step, then
    v = momentum * v + (1 - dampening) * g; w -= lr * (g + momentum * v if nesterov else v)
    (w -= lr * g without momentum). Nesterov needs momentum > 0 and dampening == 0."""

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                                      weight_decay=weight_decay))

    def _check(self, g):
        super()._check(g)
        g["momentum"] = _nonneg(g["momentum"], "momentum")
        g["dampening"] = _real(g["dampening"], "dampening")
        g["weight_decay"] = _nonneg(g["weight_decay"], "weight_decay")
        g["nesterov"] = _flag(g["nesterov"], "nesterov")
        if g["nesterov"] and (g["momentum"] <= 0 or g["dampening"] != 0):
            raise ValueError(f"nesterov: Nesterov momentum requires momentum > 0 and dampening == 0, got "
                             f"momentum={g['momentum']}, dampening={g['dampening']}")

    def _update(self, p, state, g):
        velocity, first = None, False
        if g["momentum"] != 0:
            first = state.get("velocity") is None  # torch: the buffer starts as the first gradient
            velocity = self._buffer(state, "velocity", p)
        _kernel("sgd_step", p.data)(p.data, p.grad, velocity, lr=g["lr"], momentum=g["momentum"],
                                    dampening=g["dampening"], nesterov=g["nesterov"],
                                    weight_decay=g["weight_decay"], first_step=first)


class RMSprop(Optimizer):
    """RMSprop (torch.optim.RMSprop): divide the gradient by a running RMS of its recent
    magnitudes, sq = alpha sq + (1 - alpha) g^2, w -= lr g / (sqrt(sq) + eps); optional
    momentum, centering (subtract the squared running mean of g) and L2 weight decay."""

    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered))

    def _check(self, g):
        super()._check(g)
        g["alpha"] = _nonneg(g["alpha"], "alpha")
        g["eps"] = _nonneg(g["eps"], "eps")
        g["weight_decay"] = _nonneg(g["weight_decay"], "weight_decay")
        g["momentum"] = _nonneg(g["momentum"], "momentum")
        g["centered"] = _flag(g["centered"], "centered")

    def _update(self, p, state, g):
        square_avg = self._buffer(state, "square_avg", p)
        momentum_buf = self._buffer(state, "momentum_buf", p) if g["momentum"] > 0 else None
        grad_avg = self._buffer(state, "grad_avg", p) if g["centered"] else None
        _kernel("rmsprop_step", p.data)(p.data, p.grad, square_avg, lr=g["lr"], alpha=g["alpha"], eps=g["eps"],
                                        weight_decay=g["weight_decay"], momentum=g["momentum"],
                                        momentum_buf=momentum_buf, centered=g["centered"], grad_avg=grad_avg)


class Adagrad(Optimizer):
    """Adagrad (torch.optim.Adagrad): per-element learning rates that shrink with the sum
    of squared gradients, s += g^2, w -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps);
    s starts at initial_accumulator_value."""

    def __init__(self, params, lr=0.01, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps))

    def _check(self, g):
        super()._check(g)
        for k in ("lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            g[k] = _nonneg(g[k], k)

    def _update(self, p, state, g):
        sum_sq = self._buffer(state, "sum_sq", p, g["initial_accumulator_value"])
        _kernel("adagrad_step", p.data)(p.data, p.grad, sum_sq, lr=g["lr"], eps=g["eps"],
                                        weight_decay=g["weight_decay"], lr_decay=g["lr_decay"], step=state["step"])


class Adam(Optimizer):
    """Adam (torch.optim.Adam): bias-corrected running means of the gradient (m) and of its
    square (v), w -= lr m_hat / (sqrt(v_hat) + eps); weight_decay adds the L2 term
    weight_decay * w to the gradient (see AdamW for the decoupled form); amsgrad uses the
    running maximum of v."""

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad))

    def _check(self, g):
        super()._check(g)
        betas = g["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas: expected a pair (beta1, beta2), got {betas!r}")
        g["betas"] = (_unit(betas[0], "betas[0]"), _unit(betas[1], "betas[1]"))
        g["eps"] = _nonneg(g["eps"], "eps")
        g["weight_decay"] = _nonneg(g["weight_decay"], "weight_decay")
        g["amsgrad"] = _flag(g["amsgrad"], "amsgrad")

    def _update(self, p, state, g):
        m = self._buffer(state, "m", p)
        v = self._buffer(state, "v", p)
        max_v = self._buffer(state, "max_v", p) if g["amsgrad"] else None
        _kernel("adam_step", p.data)(p.data, p.grad, m, v, step=state["step"], lr=g["lr"], beta1=g["betas"][0],
                                     beta2=g["betas"][1], eps=g["eps"], weight_decay=g["weight_decay"],
                                     decoupled_weight_decay=self._decoupled, amsgrad=g["amsgrad"], max_v=max_v)


class AdamW(Adam):
    """AdamW (torch.optim.AdamW; Loshchilov & Hutter): Adam with decoupled weight decay,
    w *= 1 - lr * weight_decay before the Adam step (not added to the gradient, so it is
    not rescaled by the adaptive denominator). Default weight_decay 0.01, as torch."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)


# --------------------------------------------------------------------------------------
# Learning-rate schedules
# --------------------------------------------------------------------------------------


class _Schedule:
    """Base of the epoch-based schedules: lr_e = f(base_lr, e) for each group, where e
    counts step() calls (call it once per epoch, after the optimiser's steps). The closed
    form is applied at every step, so a learning rate set by hand is overwritten."""

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected a fastlayers.optim.Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.last_epoch = 0

    def _lr(self, base: float, epoch: int) -> float:
        raise TypeError(f"{type(self).__name__}: a schedule defines _lr(base, epoch) or overrides step()")

    def step(self, metric=None) -> None:
        """Advance one epoch (``metric`` is ignored; accepted so every schedule is called alike)."""
        self.last_epoch += 1
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = self._lr(base, self.last_epoch)

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state: dict) -> None:
        unknown = sorted(set(state) - set(self.state_dict()))
        if unknown:
            raise ValueError(f"state: unknown entries {unknown} for {type(self).__name__}")
        self.__dict__.update(state)


class StepLR(_Schedule):
    """lr = base_lr * gamma ** (epoch // step_size) (torch.optim.lr_scheduler.StepLR):
    divide the rate by 1/gamma every step_size epochs."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer)
        if isinstance(step_size, (bool, np.bool_)) or not isinstance(step_size, numbers.Integral):
            raise TypeError(f"step_size: expected a positive integer, got {type(step_size).__name__}")
        if step_size < 1:
            raise ValueError(f"step_size: expected a positive integer, got {step_size}")
        self.step_size = int(step_size)
        self.gamma = _nonneg(gamma, "gamma")

    def _lr(self, base, epoch):
        return base * self.gamma ** (epoch // self.step_size)


class ExponentialLR(_Schedule):
    """lr = base_lr * gamma ** epoch (torch.optim.lr_scheduler.ExponentialLR)."""

    def __init__(self, optimizer, gamma):
        super().__init__(optimizer)
        self.gamma = _nonneg(gamma, "gamma")

    def _lr(self, base, epoch):
        return base * self.gamma**epoch


class ReduceLROnPlateau(_Schedule):
    """Multiply the learning rate by ``factor`` when a metric has stopped improving
    (torch.optim.lr_scheduler.ReduceLROnPlateau, same rules): ``step(metric)`` once per
    epoch with e.g. the validation loss (mode="min") or accuracy (mode="max").

    Improvement: metric < best * (1 - threshold) (threshold_mode="rel", mode="min"),
    metric < best - threshold ("abs"); mirrored for "max". After more than ``patience``
    epochs without improvement every group's lr becomes max(lr * factor, min_lr) (a change
    smaller than eps is skipped), then ``cooldown`` epochs pass before counting again.
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel",
                 cooldown=0, min_lr=0.0, eps=1e-8):
        super().__init__(optimizer)
        if mode not in ("min", "max"):
            raise ValueError(f"mode: expected 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode: expected 'rel' or 'abs', got {threshold_mode!r}")
        self.mode, self.threshold_mode = mode, threshold_mode
        self.factor = _real(factor, "factor")
        if not 0.0 <= self.factor < 1.0:
            raise ValueError(f"factor: expected a number in [0, 1) (the lr is multiplied by it), got {factor}")
        for name, v in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) or v < 0:
                raise ValueError(f"{name}: expected an integer >= 0, got {v!r}")
        self.patience, self.cooldown = int(patience), int(cooldown)
        self.threshold = _nonneg(threshold, "threshold")
        self.min_lr = _nonneg(min_lr, "min_lr")
        self.eps = _nonneg(eps, "eps")
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def _is_better(self, a: float) -> bool:
        rel = self.threshold_mode == "rel"
        if self.mode == "min":
            return a < (self.best * (1.0 - self.threshold) if rel else self.best - self.threshold)
        return a > (self.best * (1.0 + self.threshold) if rel else self.best + self.threshold)

    def step(self, metric=None) -> None:
        """Record this epoch's ``metric`` (required) and reduce the lr if it has plateaued."""
        if metric is None:
            raise TypeError("metric: ReduceLROnPlateau.step needs the monitored value, e.g. step(val_loss)")
        if isinstance(metric, np.ndarray) and metric.size == 1:
            metric = metric.reshape(()).item()
        current = _real(metric, "metric")
        self.last_epoch += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for g in self.optimizer.param_groups:
                new = max(g["lr"] * self.factor, self.min_lr)
                if g["lr"] - new > self.eps:
                    g["lr"] = new
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
