"""Optimiser-step cases: one in-place step of SGD with momentum, Nesterov SGD, RMSprop,
Adagrad, Adam and AdamW, in GB/s.

    fastlayers bench --filter 'optim/adam'
    python -m pytest benchmarks/bench_optim.py --benchmark-only -k "adam and 16M"

Sizes: 1M float32 parameters (the arrays fit in a large L3) and 16M (they stream from
memory); ``--quick`` runs sgd-momentum and adam on 64k. Inputs: param, grad = N(0, 1)
and a warm optimiser state (velocity N(0, 1), m 0.3 N(0, 1), v, square_avg and sum_sq
positive, of the size a few steps give), the same for every backend.

What is timed: one step, in place, returning (param, *state) (so the first call's result
is validated against the float64 reference applied once to the same starting state).
The step count is fixed (Adagrad and Adam take ``step=10`` on every call), so the bias
corrections are the same for every call. PyTorch: ``torch.optim.<Name>([p]).step()``
(its default implementation: single-tensor on the CPU, foreach on a GPU) on a parameter
sharing the input's memory, its state set to the same warm state, with ``step`` = 9 for
Adam(W), so its first step is step 10 too (its later steps count on: the work per step
is the same). NumPy: the same update in place, one NumPy expression per line.

Bytes (``nbytes``, the same for every backend) are what one fused pass must move: each
array read once, each updated array written once (Adam reads param, grad, m, v and
writes param, m, v = 28 bytes per parameter). Compare with the STREAM-triad bandwidth
(fastlayers.machine.bandwidth_gbs): an in-place update writes back lines it has just
read, so unlike the triad it pays no write-allocate traffic, and 1M parameters stay in a
32 MB L3: more than 100 % is possible.

Validation: param and state against fastlayers.reference in float64 on float64 copies,
tolerance ``rtol * (|expected| + max|expected|)`` with rtol = 1e-6: about 5e-6 absolute on
a parameter, against updates of 1e-3 (Adam) to 1e-2 (SGD), so a wrong step count (Adam's
bias correction moves by 5 % from step 10 to 11) or hyper-parameter fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fastlayers import ops, reference
from fastlayers.bench.core import Case

SIZES = {"1M": 1 << 20, "16M": 16 << 20}
QUICK_SIZE = ("64k", 1 << 16)
QUICK = ("sgd-momentum", "adam")
STEP = 10  # a fixed step count: bias corrections stay constant over the timed calls
RTOL = 1e-6  # observed: at most 1e-7 (one float32 rounding of param and state)


@dataclass(frozen=True)
class Opt:
    name: str
    fn: str  # sgd_step, rmsprop_step, adagrad_step, adam_step
    state: tuple  # state buffer names, in the op's positional order
    kwargs: dict = field(default_factory=dict)
    torch_cls: str = ""
    torch_kwargs: dict = field(default_factory=dict)
    torch_state: tuple = ()  # torch.optim's names of the state buffers

    @property
    def arrays_read(self) -> int:
        return 2 + len(self.state)  # param, grad, state

    @property
    def arrays_written(self) -> int:
        return 1 + len(self.state)

    def op_kwargs(self) -> dict:
        kw = dict(self.kwargs)
        if self.fn in ("adagrad_step", "adam_step"):
            kw["step"] = STEP
        return kw


OPTS = [
    Opt("sgd-momentum", "sgd_step", ("velocity",), dict(lr=0.01, momentum=0.9),
        "SGD", dict(lr=0.01, momentum=0.9), ("momentum_buffer",)),
    Opt("sgd-nesterov", "sgd_step", ("velocity",), dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4),
        "SGD", dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4), ("momentum_buffer",)),
    Opt("rmsprop", "rmsprop_step", ("square_avg",), dict(lr=0.01), "RMSprop", dict(lr=0.01), ("square_avg",)),
    Opt("adagrad", "adagrad_step", ("sum_sq",), dict(lr=0.01), "Adagrad", dict(lr=0.01), ("sum",)),
    Opt("adam", "adam_step", ("m", "v"), dict(lr=1e-3), "Adam", dict(lr=1e-3), ("exp_avg", "exp_avg_sq")),
    Opt("adamw", "adam_step", ("m", "v"), dict(lr=1e-3, weight_decay=1e-2, decoupled_weight_decay=True),
        "AdamW", dict(lr=1e-3, weight_decay=1e-2), ("exp_avg", "exp_avg_sq")),
]

# A warm state, of the size a few steps from zeros give.
_STATE = {
    "velocity": lambda rng, n: rng.standard_normal(n, dtype=np.float32),
    "square_avg": lambda rng, n: (0.1 * rng.standard_normal(n, dtype=np.float32) ** 2 + 1e-3).astype(np.float32),
    "sum_sq": lambda rng, n: (1 + 9 * rng.random(n, dtype=np.float32)).astype(np.float32),
    "m": lambda rng, n: (0.3 * rng.standard_normal(n, dtype=np.float32)).astype(np.float32),
    "v": lambda rng, n: (0.01 * (rng.random(n, dtype=np.float32) + 0.1)).astype(np.float32),
}


def nbytes(opt: Opt, n: int) -> float:
    return 4.0 * n * (opt.arrays_read + opt.arrays_written)


def _make_inputs(opt: Opt, n: int):
    """(param, grad, *state)."""
    def make_inputs():
        rng = np.random.default_rng(0)
        param = rng.standard_normal(n, dtype=np.float32)
        grad = rng.standard_normal(n, dtype=np.float32)
        return (param, grad) + tuple(_STATE[s](rng, n) for s in opt.state)
    return make_inputs


# --- NumPy formulations (xp: numpy or cupy), in place ----------------------------------

def _np_step(opt: Opt, xp, param, grad, *state):
    kw = opt.op_kwargs()
    lr, wd = kw["lr"], kw.get("weight_decay", 0.0)
    if opt.fn == "adam_step":
        m, v = state
        b1, b2, eps, t = 0.9, 0.999, 1e-8, kw["step"]
        if kw.get("decoupled_weight_decay"):
            param *= 1 - lr * wd
            g = grad
        else:
            g = grad + wd * param if wd else grad
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        denom = xp.sqrt(v) * (1 / (1 - b2**t) ** 0.5) + eps
        param -= (lr / (1 - b1**t)) * m / denom
        return
    g = grad + wd * param if wd else grad
    if opt.fn == "sgd_step":
        velocity, = state
        mu = kw["momentum"]
        velocity *= mu
        velocity += g
        param -= lr * (g + mu * velocity if kw.get("nesterov") else velocity)
    elif opt.fn == "rmsprop_step":
        square_avg, = state
        alpha = 0.99
        square_avg *= alpha
        square_avg += (1 - alpha) * (g * g)
        param -= lr * g / (xp.sqrt(square_avg) + 1e-8)
    elif opt.fn == "adagrad_step":
        sum_sq, = state
        sum_sq += g * g
        param -= lr * g / (xp.sqrt(sum_sq) + 1e-10)
    else:
        raise ValueError(opt.fn)


def _case(opt: Opt, size: str, n: int, quick: bool = False) -> Case:
    fn = getattr(ops, opt.fn)
    ref_fn = getattr(reference, opt.fn)
    kw = opt.op_kwargs()

    def fl(inputs, backend):
        def run():
            fn(*inputs, **kw, backend=backend)
            return inputs[:1] + inputs[2:]
        return run

    def np_(xp, inputs):
        def run():
            _np_step(opt, xp, *inputs)
            return inputs[:1] + inputs[2:]
        return run

    def torch_(torch, inputs, device):
        param, grad, *state = inputs
        p = torch.nn.Parameter(param)  # shares param's memory
        p.grad = grad
        topt = getattr(torch.optim, opt.torch_cls)([p], **opt.torch_kwargs)
        st = topt.state[p]  # Adagrad fills it at construction, the others on the first step
        st.update(zip(opt.torch_state, state))
        if opt.torch_cls != "SGD":
            st["step"] = torch.tensor(float(STEP - 1))  # on the CPU, as torch keeps it

        def run():
            topt.step()
            return (p.detach(),) + tuple(st[s] for s in opt.torch_state)
        return run

    def expected(inputs):
        inputs = tuple(a.astype(np.float64) for a in inputs)
        ref_fn(*inputs, **kw)
        return inputs[:1] + inputs[2:]

    return Case(family="optim", name=f"{opt.name}-{size}", shape=f"{n:,} params",
                make_inputs=_make_inputs(opt, n), expected=expected, fl=fl, np=np_, torch=torch_,
                nbytes=nbytes(opt, n), quick=quick, rtol=RTOL)


def cases() -> list[Case]:
    size, n = QUICK_SIZE
    out = [_case(opt, size, n, quick=True) for opt in OPTS if opt.name in QUICK]
    out += [_case(opt, size, n) for size, n in SIZES.items() for opt in OPTS]
    return out
