"""Checkpoints: ``save(model, path)`` / ``load(path)`` / ``load_into(model, path)`` in ``.npz``.

File layout (a plain NumPy ``.npz``, readable with ``np.load(path)`` and no pickle):

- ``state/<dotted name>``: every array of ``model.state_dict()`` (parameters and buffers,
  torch's key names, e.g. ``state/0.weight``, ``state/1.running_mean``);
- ``__meta__``: a 0-d string array holding JSON: ``format`` ("fastlayers-checkpoint"),
  ``format_version``, ``fastlayers_version``, ``model_class``, ``zoo_name`` and
  ``zoo_kwargs`` (when the model came from ``fastlayers.models.get``, which records them as
  the model's ``zoo_name`` / ``zoo_kwargs`` attributes), ``state_keys`` (their order) and
  ``metadata`` (whatever JSON-serialisable dict the caller passed: dataset, normalisation,
  accuracy...).

Saving is atomic: the archive is written to a temporary file in the same directory,
flushed and fsync'ed, then moved over ``path`` with ``os.replace`` (atomic on POSIX and
Windows), and the directory entry is fsync'ed. An interrupted save (an exception, a full
disk, a kill) leaves the previous checkpoint intact and no temporary file behind (except
on a hard kill, where a ``.<name>.*.tmp`` file may remain next to it).

torch equivalent: ``torch.save({"state_dict": model.state_dict(), ...}, path)`` and
``model.load_state_dict(torch.load(path)["state_dict"])`` (torch's save is not atomic).
"""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np

__all__ = ["build_model", "load", "load_checkpoint", "load_into", "register_model", "save"]

FORMAT = "fastlayers-checkpoint"
FORMAT_VERSION = 1
_META = "__meta__"
_STATE = "state/"

# Architectures known besides fastlayers.models (user models, tests): name -> factory(**kw).
_EXTRA_MODELS: dict = {}


def register_model(name: str, factory) -> None:
    """Make ``build_model(name, **kw)`` (hence ``load`` and ``fastlayers train --model``)
    call ``factory(**kw)``; a registered name takes precedence over the zoo's."""
    if not callable(factory):
        raise TypeError(f"factory: expected a callable returning a Module, got {type(factory).__name__}")
    _EXTRA_MODELS[name] = factory


def build_model(name: str, **kwargs):
    """A model by name: a ``register_model`` factory, else ``fastlayers.models.get``.

    The model gets ``zoo_name`` and ``zoo_kwargs`` attributes (unless the factory set them),
    so ``save`` can record how to rebuild it.
    """
    if name in _EXTRA_MODELS:
        model = _EXTRA_MODELS[name](**kwargs)
    else:
        try:
            from fastlayers import models
        except ImportError as e:
            raise ImportError(f"cannot build model {name!r}: fastlayers.models is not available ({e})") from e
        model = models.get(name, **kwargs)
    if getattr(model, "zoo_name", None) is None:
        model.zoo_name = name
        model.zoo_kwargs = dict(kwargs)
    return model


def _jsonable(obj, what: str):
    """obj as plain JSON types (tuples -> lists, NumPy scalars/arrays -> Python), or a TypeError."""
    def default(o):
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        raise TypeError(f"{what}: {type(o).__name__} is not JSON-serialisable")

    return json.loads(json.dumps(obj, default=default))


def _fsync_dir(folder: str) -> None:
    """Persist a rename (POSIX); directories cannot be opened for fsync on Windows."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save(model, path, metadata: dict | None = None):
    """Write ``model``'s state_dict and architecture metadata to ``path`` (.npz), atomically.

    Args:
        model: an nn.Module.
        path: the file to write, used exactly as given (no ".npz" is appended); its
            directory must exist.
        metadata: optional JSON-serialisable dict stored alongside (``load_checkpoint``
            returns it as ``meta["metadata"]``).

    Returns the path. Raises TypeError when metadata or the model's zoo_kwargs cannot be
    written as JSON.
    """
    from fastlayers import __version__

    path = os.fspath(path)
    state = model.state_dict()
    zoo_name = getattr(model, "zoo_name", None)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fastlayers_version": __version__,
        "model_class": type(model).__name__,
        "zoo_name": zoo_name,
        "zoo_kwargs": _jsonable(getattr(model, "zoo_kwargs", None) or {}, "zoo_kwargs") if zoo_name else None,
        "state_keys": list(state),
        "metadata": _jsonable(metadata or {}, "metadata"),
    }
    arrays = {_STATE + k: v for k, v in state.items()}
    arrays[_META] = np.array(json.dumps(meta))
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # Anything (an error, Ctrl-C) before the rename: drop the partial file, keep the old one.
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(folder)
    return path


def load_checkpoint(path) -> tuple[dict, dict]:
    """(state_dict, meta) from a checkpoint, without building a model.

    meta is the JSON header described in the module docstring. Raises FileNotFoundError,
    or ValueError for a file that is not a fastlayers checkpoint (or is corrupt).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            if _META not in z.files:
                raise ValueError(f"{path!r} is not a fastlayers checkpoint (no {_META!r} entry; "
                                 f"it holds {z.files[:5]}...)")
            try:
                meta = json.loads(str(z[_META]))
            except json.JSONDecodeError as e:
                raise ValueError(f"checkpoint {path!r}: its {_META!r} header is not valid JSON ({e})") from e
            state = {k[len(_STATE):]: z[k] for k in z.files if k.startswith(_STATE)}
    except ValueError:
        raise
    except Exception as e:  # zipfile.BadZipFile, OSError, EOFError...: a truncated or foreign file
        raise ValueError(f"cannot read checkpoint {path!r}: {type(e).__name__}: {e}") from e
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path!r}: unknown checkpoint format {meta.get('format')!r} (expected {FORMAT!r})")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ValueError(f"{path!r}: checkpoint format version {meta['format_version']} is newer than this "
                         f"fastlayers reads ({FORMAT_VERSION}); upgrade fastlayers")
    # Keep the saved order (np.load lists entries in archive order, but do not rely on it).
    order = [k for k in meta.get("state_keys", []) if k in state]
    state = {k: state[k] for k in order + [k for k in state if k not in order]}
    return state, meta


def load_into(model, path, strict: bool = True) -> dict:
    """Copy a checkpoint's weights into an existing ``model`` (in place); returns the meta.

    strict=False ignores missing and unexpected keys (e.g. loading a trunk's weights into a
    model whose head differs by name); shapes and dtypes must still match. Errors are a
    ValueError naming the file and every offending key.
    """
    state, meta = load_checkpoint(path)
    try:
        model.load_state_dict(state, strict=strict)
    except ValueError as e:
        saved = meta.get("zoo_name") or meta.get("model_class")
        raise ValueError(f"checkpoint {os.fspath(path)!r} (a {saved}) does not fit this "
                         f"{type(model).__name__}: {e}") from e
    return meta


def load(path, model=None):
    """The model saved at ``path``: rebuilt with ``build_model(zoo_name, **zoo_kwargs)`` and
    loaded, or with ``model`` given, that model loaded in place (``load_into``).

    The checkpoint's meta is attached as ``model.checkpoint_meta``. A checkpoint of a model
    that did not come from the zoo cannot be rebuilt (ValueError): build the model and call
    ``load_into(model, path)``.
    """
    if model is None:
        _, meta = load_checkpoint(path)
        name = meta.get("zoo_name")
        if not name:
            raise ValueError(
                f"checkpoint {os.fspath(path)!r} holds a {meta.get('model_class')} that did not come from "
                f"fastlayers.models, so it cannot be rebuilt by name: build the model and call "
                f"fastlayers.io.load_into(model, path)"
            )
        model = build_model(name, **(meta.get("zoo_kwargs") or {}))
    meta = load_into(model, path)
    model.checkpoint_meta = meta
    return model
