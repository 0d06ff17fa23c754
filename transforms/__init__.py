"""The transform compiler: feature definitions in, Numba-compiled kernels out.

Pure computation: numpy arrays in, numpy arrays out; nothing here knows about the
feature store's storage, serving or registry files. The compiler (and with it Numba)
is imported on first use, so that reading `transforms.spec` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "CompiledGraph": "transforms.compiler",
    "CompiledRequestView": "transforms.compiler",
    "CompiledView": "transforms.compiler",
    "EntityStates": "transforms.compiler",
    "compile_graph": "transforms.compiler",
    "graph_source": "transforms.compiler",
    "GraphError": "transforms.errors",
    "view_fingerprints": "transforms.fingerprints",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'transforms' has no attribute {name!r}")
