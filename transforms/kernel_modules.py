"""The generated modules on disk: one per feature view and per request view.

A unit's module is written to `<cache_dir>/fs_<kind>_<name>_<hash>.py` and imported from
there, so Numba's on-disk cache (kept beside it, or under `NUMBA_CACHE_DIR`) applies per
module. The hash covers the module's source and the Numba version; the file is only ever
created, never rewritten, because Numba keys its cache on the file's modification time.

Importing a module (and Numba with it) waits until a kernel runs: a process that only
validates or applies an unchanged registry never loads Numba. A *ready mark* beside a
module records that its machine code was compiled into the cache, so `apply` can tell,
without loading anything, what still needs compiling.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from types import ModuleType

from transforms.codegen import request_module, support_module, view_module, view_notes
from transforms.fingerprints import engine_fingerprint
from transforms.graph import Graph

CODEGEN_VERSION = "2"


@dataclass(frozen=True)
class Unit:
    """One separately compiled module: a feature view's or a request view's."""

    name: str
    kind: str  # "view" or "request"
    source: str
    digest: str
    notes: str = ""  # what the source does not say (the layout): shown, not compiled
    requires: tuple[Unit, ...] = ()  # modules this one imports, loaded before it

    @property
    def module_name(self) -> str:
        return f"fs_{self.kind}_{re.sub(r'[^A-Za-z0-9_]', '_', self.name)}_{self.digest}"

    @property
    def shown(self) -> str:
        """The notes and the module source, as `featurestore compile --show` prints them."""
        return f"{self.notes}\n{self.source}" if self.notes else self.source


@cache
def _numba_version() -> str:
    return metadata.version("numba")


def _unit(name: str, kind: str, source: str, notes: str = "",
          requires: tuple[Unit, ...] = ()) -> Unit:
    # A required module's name carries its hash, and the source names it: so a change to
    # the support functions gives every module that calls them a new hash too.
    key = f"{CODEGEN_VERSION}\n{_numba_version()}\n{source}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Unit(name, kind, source, digest, notes, requires)


@cache
def support_unit() -> Unit:
    """The shared module of expression support functions."""
    return _unit("expressions", "support", support_module())


def graph_units(graph: Graph) -> list[Unit]:
    """One unit per feature view, then one per request view, in the graph's order."""
    support = support_unit()
    name, needs = support.module_name, (support,)
    units = [_unit(p.spec.name, "view", view_module(p, name), view_notes(p), needs)
             for p in graph.views]
    units += [_unit(p.spec.name, "request", request_module(p, name), requires=needs)
              for p in graph.request_views]
    return units


def graph_hash(units: list[Unit]) -> str:
    """A hash of every unit's code and notes: it changes with any definition."""
    text = "\n".join(f"{unit.kind}:{unit.name}:{unit.digest}\n{unit.notes}" for unit in units)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def load_module(cache_dir: Path, unit: Unit) -> ModuleType:
    """Write the unit's module if it is not on disk yet, and import it (once per process)."""
    name = unit.module_name
    if name in sys.modules:
        return sys.modules[name]
    for required in unit.requires:
        load_module(cache_dir, required)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{name}.py"
    if not path.exists():
        # Write then rename: a concurrent process sees no file or the whole file.
        handle, temporary = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
        with os.fdopen(handle, "w") as file:
            file.write(unit.source)
        os.replace(temporary, path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load generated kernels from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def ready_mark(cache_dir: Path, name: str) -> Path:
    """The file that says `name`'s machine code is in Numba's cache (for this cache dir).

    Numba's cache follows `NUMBA_CACHE_DIR`, so the mark's name does too. A stale mark
    costs only a compile on first use instead of during `apply`.
    """
    where = os.environ.get("NUMBA_CACHE_DIR", "")
    tag = hashlib.sha256(f"{name}\n{where}".encode()).hexdigest()[:12]
    return cache_dir / f"{name}.{tag}.ready"


def engine_mark(cache_dir: Path) -> Path:
    """The ready mark of the shared kernels, as they are now."""
    return ready_mark(cache_dir, f"engine_{engine_fingerprint()}")
