"""Re-export the public names of every op-family module of a package.

``fastlayers.ops`` and ``fastlayers.reference`` hold one module per op family (gemm,
conv, pool, ...). Each family module lists its public names in ``__all__``; the package
``__init__`` calls :func:`export_families` so that adding a family needs no edit of a
shared file. Modules whose name starts with an underscore are private and skipped.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import types


def export_families(package_name: str, namespace: dict) -> list[str]:
    package = sys.modules[package_name]
    exported: list[str] = []
    for mod in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package_name}.{mod.name}")
        names = getattr(module, "__all__", None)
        if names is None:
            raise ImportError(f"{package_name}.{mod.name} must define __all__")
        for name in names:
            # A family module may share its name with its main function (gemm.gemm):
            # the function replaces the submodule attribute that the import just set.
            prior = namespace.get(name)
            if prior is not None and not isinstance(prior, types.ModuleType) and prior is not getattr(module, name):
                raise ImportError(f"{package_name}: {name!r} is exported by two families")
            namespace[name] = getattr(module, name)
        exported.extend(names)
    return sorted(exported)
