"""The transform compiler: feature definitions in, Numba-compiled kernels out.

Pure computation: numpy arrays in, numpy arrays out; nothing here knows about the
feature store's storage, serving or registry files.
"""

from transforms.compiler import (
    CompiledGraph,
    CompiledRequestView,
    CompiledView,
    EntityStates,
    compile_graph,
    graph_source,
)
from transforms.errors import GraphError

__all__ = [
    "CompiledGraph",
    "CompiledRequestView",
    "CompiledView",
    "EntityStates",
    "GraphError",
    "compile_graph",
    "graph_source",
]
