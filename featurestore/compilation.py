"""From a validated registry to loaded kernels: source schemas, compile, located errors.

Compiling needs each source's column types (expressions are typed against them), so the
sources are inspected with DuckDB first; a missing source or column is reported with the
feature that needs it. Compile errors from `transforms` carry the key path of the
definition; here they become `registry.yaml:LINE:COL: path: message` lines.
`type_problems` runs only the typing part of compiling (no code generation, no Numba),
one feature at a time, so that `plan` can report every ill-typed feature.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import replace
from pathlib import Path

import duckdb

from featurestore.errors import RegistryError
from featurestore.offline.schema import check_columns, describe_source
from featurestore.offline.segments import segment_dir
from featurestore.offline.sources import SourceSpec
from featurestore.registry import Registry
from featurestore.registry.loader import YamlDocument, load_yaml
from featurestore.registry.problems import Problem, format_path
from featurestore.validation.rules import quarantine_filter
from transforms import CompiledGraph, GraphError, compile_graph
from transforms.expressions import parse_expression, referenced_names
from transforms.graph import build_graph
from transforms.spec import ColumnType, GraphSpec


def source_spec(registry: Registry, name: str, offline_path: Path) -> SourceSpec:
    """The offline layer's description of source `name` (pushed segments included, its
    quarantined rows kept out)."""
    source = registry.sources[name]
    return SourceSpec(name=name, path=source.path, table=source.table, query=source.query,
                      timestamp=source.timestamp, timestamp_unit=source.timestamp_unit,
                      pushed_dir=str(segment_dir(offline_path.parent, name)),
                      row_filter=quarantine_filter(registry, name))


def needed_columns(registry: Registry, source: str) -> dict[str, str]:
    """Columns of `source` the definitions read → the `view:feature` that reads each."""
    needed: dict[str, str] = {}
    for view_name, view in registry.feature_views.items():
        if view.source != source:
            continue
        for key in registry.entities[view.entity].keys:
            needed.setdefault(key, f"{view_name} (entity key)")
        for feature_name, feature in view.features.items():
            if feature.expr is None:
                continue
            columns, _ = referenced_names(parse_expression(feature.expr))
            for column in sorted(columns):
                needed.setdefault(column, f"{view_name}:{feature_name}")
    return needed


def read_schemas(con: duckdb.DuckDBPyConnection, registry: Registry, base_dir: Path,
                 offline_path: Path) -> dict[str, dict[str, ColumnType]]:
    """Column types of every source a feature view reads, checked against the definitions.

    Raises:
        SourceError: a source is missing or unreadable, or lacks a column a feature needs.
    """
    schemas: dict[str, dict[str, ColumnType]] = {}
    for name in sorted({view.source for view in registry.feature_views.values()}):
        schema = describe_source(con, source_spec(registry, name, offline_path), base_dir)
        check_columns(schema, needed_columns(registry, name), name)
        schemas[name] = schema
    return schemas


def compile_registry(registry: Registry, registry_text: str, registry_name: str,
                     schemas: Mapping[str, Mapping[str, ColumnType]],
                     cache_dir: Path) -> CompiledGraph:
    """Compile the registry's definitions into kernels (cached on disk by graph hash).

    Raises:
        RegistryError: a definition cannot be compiled; the message is located in the file.
    """
    try:
        return compile_graph(registry.to_graph_spec(schemas), cache_dir)
    except GraphError as error:
        raise RegistryError([locate(error, registry_text, registry_name)]) from None


def locate(error: GraphError, registry_text: str, registry_name: str) -> str:
    """Render a compile error as `file:LINE:COL: path: message`."""
    return locate_problem(error, load_yaml(registry_text)).format(registry_name)


def locate_problem(error: GraphError, document: YamlDocument) -> Problem:
    """The position in the registry file of a compile error's definition."""
    path = error.path
    if error.column is not None:
        position = document.text_position(path, error.column)
    else:
        position = document.value_position(path)
    return Problem(position.line, position.column, format_path(path), error.message)


def type_problems(registry: Registry, schemas: Mapping[str, Mapping[str, ColumnType]],
                  document: YamlDocument, skipped: Collection[tuple[str, str]],
                  request_views: bool) -> list[Problem]:
    """Type every expression against the sources' real schemas, without compiling.

    The compiler stops at the first definition it cannot type; typing one feature at
    a time reports every ill-typed feature instead. Only parsing and typing run here
    (`build_graph`); code generation and Numba do not.

    Args:
        registry: the validated definitions.
        schemas: source name → its kernel-visible columns, for every source a feature
            view reads (empty for a source that could not be read).
        document: the registry file's YAML, for positions.
        skipped: (view, feature) pairs not to type: their source could not be read
            or lacks a column they use, which is reported already.
        request_views: also type the request views; they read the feature views'
            result types, so this is only meaningful when every feature view is sound.

    Returns:
        One located problem per ill-typed feature.
    """

    def problem(spec: GraphSpec) -> list[Problem]:
        try:
            build_graph(spec)
        except GraphError as error:
            return [locate_problem(error, document)]
        return []

    spec = registry.to_graph_spec(schemas)
    found: list[Problem] = []
    for view in spec.views:
        for feature in view.features:
            if (view.name, feature.name) not in skipped:
                alone = replace(view, features=(feature,))
                found.extend(problem(GraphSpec((alone,), (), spec.schemas)))
    if request_views and not found:
        for request_view in spec.request_views:
            for feature in request_view.features:
                alone = replace(request_view, features=(feature,))
                found.extend(problem(replace(spec, request_views=(alone,))))
    return found


CACHE_ENV = "FEATURESTORE_CACHE_DIR"


def kernel_cache_dir(offline_path: Path) -> Path:
    """Where generated kernel modules and their machine code are cached.

    `$FEATURESTORE_CACHE_DIR/kernels` when set (share one cache between projects with
    the same definitions), else `.featurestore-cache/kernels` beside the offline file.
    """
    shared = os.environ.get(CACHE_ENV)
    if shared:
        return Path(shared).resolve() / "kernels"
    return offline_path.parent / ".featurestore-cache" / "kernels"
