"""Parameter, Module and the two containers, Sequential and Residual (torch.nn's names).

A Module owns Parameters and sub-modules assigned to it as attributes (registered in
assignment order) and keeps, from each ``forward``, what its ``backward`` needs. There is
no autograd: ``backward(grad_out)`` is the backpropagation algorithm written out, layer
by layer — it returns the gradient of the loss with respect to the module's input and
ACCUMULATES (``+=``) the gradients of its parameters into ``param.grad``.

Every numeric step runs in :mod:`fastlayers.ops` on the module's ``backend``:

- ``"cpu"`` (default): the C++ kernels, float32 only.
- ``"reference"``: the NumPy reference. float32 arrays go through ``fastlayers.ops``
  with ``backend="reference"``; any other float dtype (``module.double()``) goes to
  :mod:`fastlayers.reference` itself, whose functions have the same signatures and work
  in the dtype they are given — this is how whole networks are gradient-checked in
  float64.

Saved state: each forward saves one cache per module and each backward consumes it, so
a backward needs its own forward (RuntimeError otherwise) and a module instance can
appear only once in a network (share weights by sharing Parameters, not modules).
Inside ``with no_grad():`` forwards run the ops' forward-only versions and save nothing
(inference, ``summary``).

Input gradients (``need_input_grad``): the input gradient of a network's first layer is
never used, and for a convolution over 1-3 input channels it costs several times the
forward. Every module has a ``need_input_grad`` flag (default True); with False its
``backward`` returns None, and Linear/Conv2d/ConvTranspose2d skip the work. A
``Sequential`` sets its first layer's flag to its own and every other layer's to True;
its own flag is the ``need_input_grad`` it was given, or if none was given, False at
the top of a network (its input is data: ``Sequential(...).backward(g)`` returns None)
and True once it is placed inside another module (as a later layer of a Sequential, a
Residual's body, or an attribute of a custom module, where its input is an activation).
A Residual passes its flag to its body and projection. Set ``net.need_input_grad =
True`` when you want d loss / d input (gradient checks, adversarial examples).
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict, namedtuple
from contextlib import contextmanager

import numpy as np

from fastlayers import ops
from fastlayers import reference as _reference
from fastlayers.ops._device import DEVICES, device_of, is_device_array, move

__all__ = [
    "Module",
    "Parameter",
    "Residual",
    "Sequential",
    "functional",
    "is_grad_enabled",
    "no_grad",
]

BACKENDS = ("cpu", "reference")


# --------------------------------------------------------------------------------------
# Backend dispatch and grad mode
# --------------------------------------------------------------------------------------


class _OpsOn:
    """fastlayers.ops with ``backend=`` bound: ``F.relu_forward(x)`` is
    ``ops.relu_forward(x, backend=F.backend)``. Backward functions take no backend (they
    follow their cache) and are returned as they are."""

    def __init__(self, backend: str):
        self.backend = backend

    def __getattr__(self, name):
        fn = getattr(ops, name)
        if not name.endswith("_backward"):
            fn = functools.partial(fn, backend=self.backend)
        setattr(self, name, fn)  # looked up once per name
        return fn


_OPS = {b: _OpsOn(b) for b in BACKENDS}


def functional(backend: str, dtype=np.float32):
    """The op namespace for ``backend`` and arrays of ``dtype``: fastlayers.ops bound to
    the backend, or for "reference" with a dtype other than float32, fastlayers.reference
    (same function names and signatures, without ``backend=``)."""
    if backend == "reference" and np.dtype(dtype) != np.float32:
        return _reference
    return _OPS[backend]


_grad_mode = threading.local()


def is_grad_enabled() -> bool:
    """False inside ``with no_grad():`` (forwards then keep no cache)."""
    return getattr(_grad_mode, "enabled", True)


@contextmanager
def no_grad():
    """Forward passes inside this block save nothing for backward (like torch.no_grad):
    less memory and, for max-pool and activations, less memory traffic. A backward of
    such a forward is a RuntimeError."""
    prev = is_grad_enabled()
    _grad_mode.enabled = False
    try:
        yield
    finally:
        _grad_mode.enabled = prev


def _check_backend(name) -> str:
    if name not in BACKENDS:
        raise ValueError(f"backend: expected one of {BACKENDS}, got {name!r}")
    return name


# --------------------------------------------------------------------------------------
# Parameter
# --------------------------------------------------------------------------------------


class Parameter:
    """A trainable array (torch.nn.Parameter): ``.data``, ``.grad``, ``.requires_grad``, ``.name``.

    data: a floating-point ndarray, used as given (not copied); optimisers update it in
    place. grad: None until the first backward, then an array of data's shape and dtype
    that every backward adds to (``zero_grad`` resets it). requires_grad: False freezes
    the parameter — backward adds nothing and optimisers skip it. name: the attribute
    name it was first registered under (``named_parameters`` gives the dotted path).
    """

    __slots__ = ("data", "grad", "requires_grad", "name")

    def __init__(self, data, requires_grad: bool = True, name: str | None = None):
        if not (isinstance(data, np.ndarray) or is_device_array(data)) or np.dtype(data.dtype).kind != "f":
            got = data.dtype if hasattr(data, "dtype") else type(data).__name__
            raise TypeError(f"data: expected a floating-point numpy.ndarray (or GPU array), got {got}")
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.name = name

    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    size = property(lambda self: self.data.size)

    def accumulate(self, g) -> None:
        """grad += g (grad = g on the first call); nothing when frozen or g is None."""
        if g is None or not self.requires_grad:
            return
        if g.shape != self.data.shape:
            raise ValueError(f"g: expected shape {self.data.shape} (parameter {self.name!r}), got {g.shape}")
        if is_device_array(g):
            # On a GPU the ops return fresh arrays; accumulate with the add kernel.
            if self.grad is None:
                self.grad = g
            else:
                device_of(grad=self.grad, g=g).run("add_forward", self.grad, self.grad, g)
            return
        if self.grad is None:
            # The ops return fresh arrays: take ownership instead of copying.
            owned = g.base is None and g.flags.writeable and g.flags.c_contiguous and g.dtype == self.data.dtype
            self.grad = g if owned else np.array(g, dtype=self.data.dtype, order="C")
        else:
            np.add(self.grad, g, out=self.grad)

    def __repr__(self):
        frozen = "" if self.requires_grad else ", frozen"
        return f"Parameter({self.name!r}, shape={self.data.shape}, dtype={self.data.dtype}{frozen})"


# --------------------------------------------------------------------------------------
# Module
# --------------------------------------------------------------------------------------

_LoadResult = namedtuple("_LoadResult", ["missing_keys", "unexpected_keys"])


class Module:
    """Base class of every layer and network (torch.nn.Module, with an explicit backward).

    Subclasses call ``super().__init__()`` first, assign Parameters, sub-modules and
    (through ``register_buffer``) buffers as attributes, and implement ``forward(x)`` and
    ``backward(grad_out)``. Attributes: ``training`` (train()/eval()), ``backend``
    ("cpu" or "reference", set recursively by ``to_backend``), ``need_input_grad``
    (see the module docstring).
    """

    def __init__(self):
        d = self.__dict__
        d["_parameters"] = OrderedDict()
        d["_modules"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["training"] = True
        d["backend"] = "cpu"
        d["_ctx"] = None  # what the last forward saved for backward
        d["_need_input_grad"] = True

    # ---- registration ------------------------------------------------------------------

    def __setattr__(self, name, value):
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        if name in d["_buffers"]:
            if value is not None and not (isinstance(value, np.ndarray) or is_device_array(value)):
                raise TypeError(f"{name}: a buffer must be a numpy.ndarray (or GPU array) or None, "
                                f"got {type(value).__name__}")
            d["_buffers"][name] = value
        else:
            params, mods = d["_parameters"], d["_modules"]
            # Assigning to an existing name keeps its place in the registration order.
            if isinstance(value, Parameter):
                mods.pop(name, None)
                if value.name is None:
                    value.name = name
                params[name] = value
            elif isinstance(value, Module):
                params.pop(name, None)
                mods[name] = value
                self._child_added(name, value)
            else:
                params.pop(name, None)
                mods.pop(name, None)
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        for registry in ("_parameters", "_modules", "_buffers"):
            self.__dict__[registry].pop(name, None)
        object.__delattr__(self, name)

    def _child_added(self, name, child):
        """A sub-module was registered. In a plain module its input is an activation: a
        Sequential whose flag was not given computes its input gradient there."""
        if child.__dict__.get("_auto_input_grad"):
            child._set_need_input_grad(True)

    def register_buffer(self, name: str, array) -> None:
        """A non-trainable array saved in state_dict (e.g. running_mean), converted by
        double()/float() when floating, never touched by optimisers."""
        if array is not None and not (isinstance(array, np.ndarray) or is_device_array(array)):
            raise TypeError(f"array: expected a numpy.ndarray (or GPU array) or None, got {type(array).__name__}")
        self.__dict__["_buffers"][name] = array
        object.__setattr__(self, name, array)

    # ---- traversal ---------------------------------------------------------------------

    def children(self) -> list["Module"]:
        return list(self._modules.values())

    def named_children(self) -> list[tuple[str, "Module"]]:
        return list(self._modules.items())

    def named_modules(self, prefix: str = "") -> list[tuple[str, "Module"]]:
        """(dotted name, module) for this module ("" or prefix) and every descendant, depth first."""
        out, seen = [], set()

        def walk(m, name):
            if id(m) in seen:
                return
            seen.add(id(m))
            out.append((name, m))
            for child_name, child in m._modules.items():
                walk(child, f"{name}.{child_name}" if name else child_name)

        walk(self, prefix)
        return out

    def modules(self) -> list["Module"]:
        return [m for _, m in self.named_modules()]

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        """(dotted name, Parameter), each module's own before its children's, in
        registration order; a Parameter shared by two modules is listed once."""
        out, seen = [], set()
        for mname, m in self.named_modules():
            for pname, p in m._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    out.append((f"{mname}.{pname}" if mname else pname, p))
        return out

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self) -> list[tuple[str, np.ndarray]]:
        out = []
        for mname, m in self.named_modules():
            for bname, b in m._buffers.items():
                if b is not None:
                    out.append((f"{mname}.{bname}" if mname else bname, b))
        return out

    def buffers(self) -> list[np.ndarray]:
        return [b for _, b in self.named_buffers()]

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of parameter elements (only those with requires_grad if trainable_only)."""
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # ---- modes -------------------------------------------------------------------------

    def train(self, mode: bool = True) -> "Module":
        """Training mode (batch statistics in BatchNorm, dropout on); returns self."""
        for m in self.modules():
            m.__dict__["training"] = bool(mode)
        return self

    def eval(self) -> "Module":
        """Inference mode (running statistics, dropout off): train(False)."""
        return self.train(False)

    def freeze(self) -> "Module":
        """requires_grad = False on every parameter: backward adds no gradient to them and
        optimisers skip them (input gradients still flow through). Returns self."""
        for p in self.parameters():
            p.requires_grad = False
        return self

    def unfreeze(self) -> "Module":
        for p in self.parameters():
            p.requires_grad = True
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset every parameter's gradient: to None (PyTorch's default; the next backward
        then stores its gradient without an extra pass) or to zeros in place."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif is_device_array(p.grad):
                p.grad = device_of(g=p.grad).zeros(p.grad.shape, np.dtype(p.grad.dtype))
            elif p.grad is not None:
                p.grad.fill(0)

    def to_backend(self, name: str) -> "Module":
        """Run this module and all its descendants on ``name`` ("cpu" or "reference")."""
        name = _check_backend(name)
        for m in self.modules():
            m.__dict__["backend"] = name
        return self

    def to(self, device: str) -> "Module":
        """Move every parameter (and its grad) and floating buffer to ``device``: "cpu"
        (numpy), "cuda" (CuPy arrays: the CUDA kernels run) or "cuda-emu" (the CPU
        emulator of CUDA, for tests without a GPU). The forward's input must then live
        there too (``fastlayers.train`` moves each batch). Returns self."""
        if device not in DEVICES:
            raise ValueError(f"device: expected one of {tuple(DEVICES)}, got {device!r}")
        if device != "cpu" and self.backend != "cpu":
            raise ValueError(f"device: the {self.backend!r} backend runs on numpy arrays only")
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None:
                    p.data = move(p.data, device)
                    if p.grad is not None:
                        p.grad = move(p.grad, device)
            for name, b in list(m._buffers.items()):
                if b is not None and np.dtype(b.dtype).kind == "f":
                    setattr(m, name, move(b, device))
        return self

    @property
    def device(self) -> str:
        """Where the parameters live: "cpu", "cuda" or "cuda-emu" ("cpu" without any)."""
        for p in self.parameters():
            return device_of(p=p.data).name
        return "cpu"

    def astype(self, dtype) -> "Module":
        """Convert every parameter (and its grad) and every floating buffer to ``dtype``."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"dtype: expected a floating-point dtype, got {dtype}")
        for m in self.modules():
            for p in m._parameters.values():
                if p is not None and p.data.dtype != dtype:
                    p.data = np.ascontiguousarray(p.data, dtype=dtype)
                    if p.grad is not None:
                        p.grad = np.ascontiguousarray(p.grad, dtype=dtype)
            for name, b in list(m._buffers.items()):
                if b is not None and b.dtype.kind == "f" and b.dtype != dtype:
                    setattr(m, name, np.ascontiguousarray(b, dtype=dtype))
        return self

    def double(self) -> "Module":
        """float64 parameters and buffers; combine with to_backend("reference") (the cpu
        kernels are float32 only) for gradient checks."""
        return self.astype(np.float64)

    def float(self) -> "Module":
        return self.astype(np.float32)

    @property
    def need_input_grad(self) -> bool:
        return self.__dict__["_need_input_grad"]

    @need_input_grad.setter
    def need_input_grad(self, value):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"need_input_grad: expected a bool, got {type(value).__name__}")
        self.__dict__["_auto_input_grad"] = False  # set by the user: containers keep it
        self._set_need_input_grad(bool(value))

    def _set_need_input_grad(self, value: bool) -> None:
        self.__dict__["_need_input_grad"] = value
        self._propagate_need_input_grad(value)

    def _propagate_need_input_grad(self, value: bool) -> None:
        """Containers pass the flag on to the layers that see their input."""

    # ---- forward / backward ------------------------------------------------------------

    def forward(self, x):
        raise TypeError(f"{type(self).__name__} has no forward(): a Module subclass defines forward and backward")

    def backward(self, grad_out):
        raise TypeError(f"{type(self).__name__} has no backward(): a Module subclass defines forward and backward")

    def __call__(self, x):
        """forward(x); also records the output shape while summary() runs."""
        out = self.forward(x)
        rec = _recorder()
        if rec is not None:
            rec[id(self)] = getattr(out, "shape", None)
        return out

    def _save(self, ctx) -> None:
        self.__dict__["_ctx"] = ctx if is_grad_enabled() else None

    def _take(self):
        """What the last forward saved (consumed: one backward per forward)."""
        ctx = self.__dict__["_ctx"]
        if ctx is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward: no saved forward; call forward first (each forward "
                f"allows one backward, and forwards inside no_grad() save nothing)"
            )
        self.__dict__["_ctx"] = None
        return ctx

    def _call(self, op: str, *args, **kwargs):
        """Run ``<op>_forward(*args)`` on this module's backend and save its cache for
        ``_grad`` (the forward-only ``<op>`` under no_grad). args[0] is the input array."""
        F = self._functional(args[0])
        if not is_grad_enabled():
            self.__dict__["_ctx"] = None
            return getattr(F, op)(*args, **kwargs)
        out, cache = getattr(F, op + "_forward")(*args, **kwargs)
        self.__dict__["_ctx"] = (getattr(F, op + "_backward"), cache)
        return out

    def _grad(self, grad_out, **kwargs):
        """``<op>_backward(grad_out, cache, **kwargs)`` for the op the last forward ran."""
        backward, cache = self._take()
        return backward(grad_out, cache, **kwargs)

    def _functional(self, x):
        """The op namespace for this module's backend and dtype (see ``functional``)."""
        dtype = getattr(x, "dtype", np.float32)
        for p in self._parameters.values():
            if p is not None and p.data.dtype != np.float32:
                if self.backend == "cpu":
                    raise TypeError(
                        f"{type(self).__name__}: parameter {p.name!r} is {p.data.dtype} but the cpu backend "
                        f"runs float32 only; call .to_backend('reference') or .float()"
                    )
                dtype = p.data.dtype
        return functional(self.backend, dtype)

    # ---- state -------------------------------------------------------------------------

    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Parameters then buffers of every module by dotted name (torch's key names, e.g.
        ``0.weight``, ``1.running_mean``), as COPIES: a snapshot that later training does
        not change (for "restore the best weights"). NumPy arrays, also for a model on a GPU."""
        return OrderedDict((key, arr.get() if is_device_array(arr) else arr.copy())
                           for key, (_, arr) in self._state_targets().items())

    def _state_targets(self) -> "OrderedDict[str, tuple]":
        """dotted name -> ("parameter" | "buffer", the live array)."""
        out = OrderedDict()
        for mname, m in self.named_modules():
            prefix = f"{mname}." if mname else ""
            for pname, p in m._parameters.items():
                if p is not None:
                    out[prefix + pname] = ("parameter", p.data)
            for bname, b in m._buffers.items():
                if b is not None:
                    out[prefix + bname] = ("buffer", b)
        return out

    def load_state_dict(self, state, strict: bool = True):
        """Copy arrays from ``state`` (name -> array) into the parameters and buffers, in place.

        Every problem is reported at once in a ValueError before anything is copied:
        missing and unexpected keys (only when ``strict``), shape mismatches and dtype
        mismatches (a float64 array for a float32 parameter is refused: convert it, or
        the model with double()/float(); integer buffers accept any integer dtype).
        Returns (missing_keys, unexpected_keys) like torch.
        """
        if not hasattr(state, "keys"):
            raise TypeError(f"state: expected a mapping of names to arrays, got {type(state).__name__}")
        targets = self._state_targets()
        missing = [k for k in targets if k not in state]
        unexpected = [k for k in state if k not in targets]
        problems, copies = [], []
        if strict and missing:
            problems.append(f"missing keys: {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {unexpected}")
        for key, (kind, dst) in targets.items():
            if key not in state:
                continue
            src = state[key]
            src = src.get() if is_device_array(src) else np.asarray(src)
            if src.shape != dst.shape:
                problems.append(f"{key}: expected shape {dst.shape} ({kind}), got {src.shape}")
            elif not (src.dtype == dst.dtype or (src.dtype.kind in "iu" and dst.dtype.kind in "iu")):
                problems.append(f"{key}: expected dtype {dst.dtype} ({kind}), got {src.dtype}")
            else:
                copies.append((dst, src))
        if problems:
            raise ValueError(f"load_state_dict for {type(self).__name__}: " + "; ".join(problems))
        for dst, src in copies:
            if is_device_array(dst):  # a model on a GPU: copy the host array over
                dst.set(np.ascontiguousarray(src, dtype=dst.dtype))
            else:
                np.copyto(dst, src, casting="unsafe")
        return _LoadResult(missing, unexpected)

    # ---- summary -----------------------------------------------------------------------

    def summary(self, input_shape, dtype=None) -> str:
        """A Keras-style table: every sub-module (indented by depth) with its output shape
        and parameter count, then the totals.

        input_shape: the shape of ONE sample, without the batch dimension (e.g. (1, 28, 28)).
        The shapes come from a real forward pass on zeros of shape (2, *input_shape) (dtype:
        the parameters' unless given) in eval mode under no_grad: no running statistics
        change, nothing is saved, and the training mode is restored. "None" stands for the
        batch dimension; a module the forward does not call shows "-". Parameter counts
        are over Parameters only (BatchNorm's running statistics are buffers, not counted,
        as in torch); a row counts its sub-modules too, and the totals count each
        Parameter once.
        """
        # Batch 2: BatchNorm without running statistics needs more than one value per channel.
        shape = (2, *tuple(int(d) for d in input_shape))
        if dtype is None:
            params = self.parameters()
            dtype = params[0].data.dtype if params else np.float32
        modes = {id(m): m.training for m in self.modules()}
        shapes: dict = {}
        token = _set_recorder(shapes)
        try:
            self.eval()
            with no_grad():
                self(np.zeros(shape, dtype=dtype))
        finally:
            _set_recorder(token)
            for m in self.modules():
                m.__dict__["training"] = modes[id(m)]

        def fmt(s):
            if s is None:
                return "-"
            return "(" + ", ".join(["None"] + [str(d) for d in s[1:]]) + (",)" if len(s) == 1 else ")")

        rows = [("Layer (type)", "Output shape", "Param #")]
        for name, m in self.named_modules():
            if m is self:
                continue
            depth = name.count(".")
            count = sum(p.size for p in m.parameters())
            rows.append(("  " * depth + f"{name} ({type(m).__name__})", fmt(shapes.get(id(m))), f"{count:,}"))
        rows.append(("Output", fmt(shapes.get(id(self))), ""))
        w0 = max(len(r[0]) for r in rows)
        w1 = max(len(r[1]) for r in rows)
        w2 = max(len(r[2]) for r in rows)
        width = w0 + w1 + w2 + 4
        lines = [f"{type(self).__name__} summary", "=" * width]
        for i, (a, b, c) in enumerate(rows):
            lines.append(f"{a:<{w0}}  {b:<{w1}}  {c:>{w2}}")
            if i == 0 or i == len(rows) - 2:
                lines.append(("=" if i == 0 else "-") * width)
        total = self.num_parameters()
        trainable = self.num_parameters(trainable_only=True)
        lines += [
            "=" * width,
            f"Total params: {total:,}",
            f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}",
        ]
        return "\n".join(lines)

    def __getstate__(self):
        """Pickle/deepcopy without the saved forward (caches can be large)."""
        state = self.__dict__.copy()
        state["_ctx"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    # ---- repr --------------------------------------------------------------------------

    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not self._modules:
            return head + ")"
        lines = [head]
        for name, m in self._modules.items():
            sub = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        return "\n".join(lines) + "\n)"


# summary() records every module's output shape through Module.__call__.
_record = threading.local()


def _recorder():
    return getattr(_record, "sink", None)


def _set_recorder(sink):
    prev = _recorder()
    _record.sink = sink
    return prev


# --------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------


class Sequential(Module):
    """Modules applied in order (torch.nn.Sequential): indexable, len(), iteration, append.

    Children are named "0", "1", ... (torch's state_dict keys). ``net[i]`` is a module,
    ``net[i:j]`` a new Sequential sharing the modules (and keeping their input-gradient
    flags), ``net[i] = m`` replaces one (e.g. a new head for transfer learning).

    backward runs the children's backwards in reverse and stops at the first that returns
    None. need_input_grad: None (default) leaves the first layer's input gradient out
    while this Sequential is the top of a network (backward returns None) and computes it
    once the Sequential is placed inside another module; True/False fix it (see the
    module docstring).
    """

    def __init__(self, *modules, need_input_grad=None):
        super().__init__()
        if need_input_grad is not None and not isinstance(need_input_grad, (bool, np.bool_)):
            raise TypeError(f"need_input_grad: expected None or a bool, got {type(need_input_grad).__name__}")
        self.__dict__["_auto_input_grad"] = need_input_grad is None
        self.__dict__["_need_input_grad"] = bool(need_input_grad)
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            items = list(modules[0].items())
        else:
            items = [(str(i), m) for i, m in enumerate(modules)]
        for i, (name, m) in enumerate(items):
            if not isinstance(m, Module):
                raise TypeError(f"modules[{i}]: expected a Module, got {type(m).__name__}")
            setattr(self, name, m)

    def _child_added(self, name, child):
        first = next(iter(self._modules.values())) is child
        child._set_need_input_grad(self.__dict__["_need_input_grad"] if first else True)

    def _propagate_need_input_grad(self, value):
        if self._modules:
            next(iter(self._modules.values()))._set_need_input_grad(value)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def _index(self, i) -> int:
        n = len(self._modules)
        if not isinstance(i, (int, np.integer)) or isinstance(i, (bool, np.bool_)):
            raise TypeError(f"index: expected an int or a slice, got {type(i).__name__}")
        if not -n <= i < n:
            raise IndexError(f"index: {i} is out of range for a Sequential of {n} modules")
        return int(i) % n

    def __getitem__(self, i):
        mods = list(self._modules.values())
        if isinstance(i, slice):
            picked = mods[i]
            # The first picked module keeps the flag it has: slicing never changes the original.
            flag = picked[0].need_input_grad if picked else False
            return Sequential(OrderedDict(zip([k for k in self._modules][i], picked)), need_input_grad=flag)
        return mods[self._index(i)]

    def __setitem__(self, i, module):
        if not isinstance(module, Module):
            raise TypeError(f"module: expected a Module, got {type(module).__name__}")
        name = list(self._modules)[self._index(i)]
        setattr(self, name, module)  # keeps the name and the position

    def append(self, module) -> "Sequential":
        if not isinstance(module, Module):
            raise TypeError(f"module: expected a Module, got {type(module).__name__}")
        setattr(self, str(len(self._modules)), module)
        return self

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def backward(self, grad_out):
        for m in reversed(self._modules.values()):
            grad_out = m.backward(grad_out)
            if grad_out is None:
                return None
        return grad_out


class Residual(Module):
    """y = body(x) + shortcut(x): the skip connection of a residual network (ResNet).

    shortcut: the identity (projection=None; the body must keep the shape), a given
    Module, or with projection="auto" one chosen now, at construction, from the body's
    layers — the input channels of its first Conv2d/Linear, the output channels of its
    last one, and the product of the strides of its Conv2d/MaxPool2d/AvgPool2d layers:
    when channels or stride differ, a 1x1 Conv2d(C_in, C_out, stride, bias=False) followed
    by BatchNorm2d(C_out) (torchvision's ResNet downsample; a Linear(F_in, F_out,
    bias=False) for a body of Linear layers), otherwise the identity. This assumes the
    body's convolutions keep the size at stride 1 (padding k // 2); a shape mismatch at
    forward time is a ValueError naming both shapes.

    torch has no single class for this (torchvision's BasicBlock adds the ReLU after the
    sum: put a ReLU after the Residual).
    """

    def __init__(self, body, projection=None):
        super().__init__()
        if not isinstance(body, Module):
            raise TypeError(f"body: expected a Module, got {type(body).__name__}")
        self.body = body
        if isinstance(projection, str):
            if projection != "auto":
                raise ValueError(f"projection: expected None, 'auto' or a Module, got {projection!r}")
            projection = _auto_projection(body)
        elif projection is not None and not isinstance(projection, Module):
            raise TypeError(f"projection: expected None, 'auto' or a Module, got {type(projection).__name__}")
        if projection is not None:
            self.projection = projection
        else:
            self.__dict__["projection"] = None
        self._set_need_input_grad(True)

    def _propagate_need_input_grad(self, value):
        self.body._set_need_input_grad(value)
        if self.projection is not None:
            self.projection._set_need_input_grad(value)

    def forward(self, x):
        y = self.body(x)
        s = x if self.projection is None else self.projection(x)
        if y.shape != s.shape:
            what = "input" if self.projection is None else "projection's output"
            hint = " (use projection='auto' or pass a projection Module)" if self.projection is None else ""
            raise ValueError(f"x: Residual body output shape {y.shape} differs from its {what} shape {s.shape}{hint}")
        return self._call("add", y, s)

    def backward(self, grad_out):
        g_body, g_short = self._grad(grad_out)
        dx = self.body.backward(g_body)
        if self.projection is not None:
            g_short = self.projection.backward(g_short)
        if dx is None or g_short is None:
            return None
        return self._functional(dx).add(dx, g_short)

    def extra_repr(self):
        return "" if self.projection is not None else "identity shortcut"


def _auto_projection(body: Module):
    """The shortcut projection for Residual(projection="auto"), or None for the identity."""
    from fastlayers.nn.layers import AvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d

    layers = [m for m in body.modules() if isinstance(m, (Conv2d, Linear))]
    if not layers:
        return None
    first, last = layers[0], layers[-1]
    if isinstance(first, Linear):
        n_in, n_out = first.in_features, last.out_features
        return None if n_in == n_out else Linear(n_in, n_out, bias=False)
    c_in, c_out = first.in_channels, last.out_channels
    sh = sw = 1
    for m in body.modules():
        if isinstance(m, (Conv2d, MaxPool2d, AvgPool2d)):
            sh, sw = sh * m.stride[0], sw * m.stride[1]
    if c_in == c_out and (sh, sw) == (1, 1):
        return None
    return Sequential(Conv2d(c_in, c_out, 1, stride=(sh, sw), bias=False), BatchNorm2d(c_out))
