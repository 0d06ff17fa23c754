"""Fingerprints of what stored states depend on, computed without compiling anything.

A feature view's states (tiles and running folds) are only meaningful to kernels that
lay them out and fold them the same way. Two things decide that: the view's own
definition (its features, windows, hops, expressions, keys, and the types of the
columns it reads) and the engine that generates and runs the kernels (this package's
source and the Numba version). A view's fingerprint hashes both, and nothing else: a
change to another view, or to a request view, leaves it unchanged, so the states built
for it stay valid.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import metadata
from pathlib import Path

from transforms.graph import ViewPlan, build_graph
from transforms.spec import GraphSpec

_PACKAGE = Path(__file__).resolve().parent


@functools.cache
def engine_fingerprint() -> str:
    """Hash of the engine: every module of this package and the Numba version."""
    digest = hashlib.sha256(metadata.version("numba").encode())
    for path in sorted(_PACKAGE.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def view_fingerprint(plan: ViewPlan) -> str:
    """Hash of everything one view's stored states depend on (see the module docstring)."""
    types = sorted((name, str(plan.column_types[name])) for name in plan.input_columns)
    text = f"{engine_fingerprint()}\n{plan.spec!r}\n{types!r}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def view_fingerprints(spec: GraphSpec) -> dict[str, str]:
    """The fingerprint of every feature view of a graph, by name (no code is generated).

    Raises:
        GraphError: a definition cannot be compiled.
    """
    return {plan.spec.name: view_fingerprint(plan) for plan in build_graph(spec).views}
