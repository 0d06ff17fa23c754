"""Sources checked against the definitions that read them, each problem located in
registry.yaml.

`plan` and `apply` run this before anything is compiled or recorded. Every source a
feature view reads is probed (`offline/source_probe.py`: the file, table or query
exists and reads, the timestamp column is a timestamp); then what the definitions use
is checked against what each source holds: entity key columns (present, an integer or
a string, and of one kind in every source of the entity) and the columns named in
expressions (present and of a type features can use); last, every expression is typed
against the real schemas. All problems are collected and reported together, each at
the registry line that names the thing, in file order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from featurestore.compilation import source_spec, type_problems
from featurestore.errors import RegistryError
from featurestore.offline.keys import CANONICAL_KEY_TYPES
from featurestore.offline.schema import column_type, kernel_schema
from featurestore.offline.source_probe import OfflineFile, probe_source
from featurestore.registry import Registry
from featurestore.registry.checks import LocatedProblems, name_offsets
from featurestore.registry.loader import load_yaml
from featurestore.registry.problems import KeyPath
from featurestore.registry.state import AppliedState
from featurestore.registry.suggestions import did_you_mean
from featurestore.validation.registry_checks import check_expectation_columns
from transforms.expressions import parse_expression, referenced_names
from transforms.spec import ColumnType

_USABLE_TYPES = "int, float, bool, string or timestamp"
_KEY_KINDS = {ColumnType.INT: "an integer", ColumnType.STRING: "a string"}

Schemas = dict[str, dict[str, ColumnType]]
"""Source name → column → the type the kernels see."""


@dataclass
class _Findings(LocatedProblems):
    """What the check found: schemas, located problems, features not to type."""

    schemas: Schemas = field(default_factory=dict)
    skipped: set[tuple[str, str]] = field(default_factory=set)


def check_sources(
    registry: Registry,
    registry_text: str,
    registry_path: Path,
    offline_path: Path,
    database: AppliedState,
) -> Schemas:
    """Check every source a feature view reads against the definitions.

    Reads only schemas (DuckDB's DESCRIBE), never events, and creates nothing: while
    the offline file does not exist, file and query sources are read through an
    in-memory database, and table sources are reported as not existing yet.

    Args:
        registry: the validated definitions.
        registry_text: the text they were read from (for positions).
        registry_path: the registry file; relative paths start at its folder, and
            messages name it by its file name.
        offline_path: the offline DuckDB file.
        database: the offline file's access (retries while another process holds it).

    Returns:
        The kernel-visible schema of every source a feature view reads.

    Raises:
        RegistryError: one `registry.yaml:LINE:COL: path: message` line per problem,
            in file order.
        StoreLockedError: the offline file stayed locked by another process.
    """
    base_dir = registry_path.parent
    offline = OfflineFile(_label(offline_path, base_dir), offline_path.exists())
    findings = _Findings(load_yaml(registry_text))

    def work(con: duckdb.DuckDBPyConnection) -> None:
        _check_all(con, registry, base_dir, offline_path, offline, findings)

    if offline.exists:
        database.run(work)
    else:
        with duckdb.connect() as con:
            # As on the offline file: relative file names in a query start at the registry.
            con.execute("SET file_search_path = ?", [str(base_dir)])
            work(con)
    problems = findings.problems
    problems += type_problems(
        registry, findings.schemas, findings.document, findings.skipped, request_views=not problems
    )
    if problems:
        name = registry_path.name
        raise RegistryError([problem.format(name) for problem in sorted(set(problems))])
    return findings.schemas


def _label(offline_path: Path, base_dir: Path) -> str:
    """The offline file as messages name it: relative to the registry when inside it."""
    try:
        return str(offline_path.relative_to(base_dir))
    except ValueError:
        return str(offline_path)


def _check_all(
    con: duckdb.DuckDBPyConnection,
    registry: Registry,
    base_dir: Path,
    offline_path: Path,
    offline: OfflineFile,
    findings: _Findings,
) -> None:
    # A retried run (the file was locked) starts again from nothing.
    findings.schemas.clear()
    findings.problems.clear()
    findings.skipped.clear()
    columns: dict[str, dict[str, str] | None] = {}
    for name in sorted({view.source for view in registry.feature_views.values()}):
        spec = source_spec(registry, name, offline_path)
        probe = probe_source(con, spec, base_dir, offline)
        for fault in probe.faults:
            findings.at_value(("sources", name, fault.key), fault.message)
        columns[name] = probe.duckdb_types
        findings.schemas[name] = kernel_schema(
            probe.duckdb_types or {}, spec.timestamp, spec.timestamp_unit
        )
    for view_name, view in registry.feature_views.items():
        types = columns[view.source]
        if types is None:
            # The source could not be read: what its views use cannot be checked.
            findings.skipped.update((view_name, feature) for feature in view.features)
            continue
        _check_keys(registry, view_name, types, findings)
        for feature, definition in view.features.items():
            if definition.expr is not None:
                _check_expression(view_name, view.source, feature, definition.expr, types, findings)
    _check_key_kinds(registry, columns, findings)
    check_expectation_columns(registry, columns, findings)


def _check_keys(
    registry: Registry, view_name: str, types: Mapping[str, str], findings: _Findings
) -> None:
    """Each key column of the view's entity is in its source, as an integer or string.

    Problems point at the view's `entity:`: the view is what joins the entity to this
    source (the entity's own `keys` line is shared by views over other sources).
    """
    view = registry.feature_views[view_name]
    path: KeyPath = ("feature_views", view_name, "entity")
    for key in registry.entities[view.entity].keys:
        if key not in types:
            findings.at_value(
                path,
                f"source '{view.source}' has no column '{key}', the key of entity "
                f"'{view.entity}'{did_you_mean(key, types)}",
            )
        elif column_type(types[key]) not in CANONICAL_KEY_TYPES:
            findings.at_value(
                path,
                f"key column '{key}' of entity '{view.entity}' has type {types[key]} in "
                f"source '{view.source}'; keys must be integers or strings",
            )


def _check_expression(
    view_name: str,
    source: str,
    feature: str,
    text: str,
    types: Mapping[str, str],
    findings: _Findings,
) -> None:
    """Each column an expression names is in the source, of a type features can use."""
    path: KeyPath = ("feature_views", view_name, "features", feature, "expr")
    # The registry checks have parsed every expression already: this cannot fail.
    expression = parse_expression(text)
    offsets = name_offsets(expression)
    columns, _ = referenced_names(expression)
    for column in sorted(columns, key=lambda name: offsets.get(name, 0)):
        if column not in types:
            message = f"source '{source}' has no column '{column}'{did_you_mean(column, types)}"
        elif column_type(types[column]) is None:
            message = (
                f"column '{column}' of source '{source}' has type {types[column]}, which "
                f"features cannot use (they read {_USABLE_TYPES} columns)"
            )
        else:
            continue
        findings.at_text(path, offsets.get(column, 0), message)
        findings.skipped.add((view_name, feature))


def _check_key_kinds(
    registry: Registry, columns: Mapping[str, Mapping[str, str] | None], findings: _Findings
) -> None:
    """An entity's key has one kind (integer or string) in every source that holds it.

    Online states and training sets find an entity by its key value, so `1` in one
    source and `'1'` in another would be two entities that never meet. The first view
    (in file order) over the entity sets the kind; each later view that disagrees is
    reported at its `entity:`, naming both sources.
    """
    first: dict[tuple[str, str], tuple[str, str, str]] = {}
    for view_name, view in registry.feature_views.items():
        types = columns[view.source] or {}
        for key in registry.entities[view.entity].keys:
            kind = column_type(types[key]) if key in types else None
            if kind is None or kind not in CANONICAL_KEY_TYPES:
                continue  # a missing or unusable key is reported on its own
            first_view, first_source, first_type = first.setdefault(
                (view.entity, key), (view_name, view.source, types[key])
            )
            first_kind = column_type(first_type)
            if first_kind is None or kind == first_kind:
                continue
            findings.at_value(
                ("feature_views", view_name, "entity"),
                f"key '{key}' of entity '{view.entity}' is {_KEY_KINDS[kind]} ({types[key]}) "
                f"in source '{view.source}' but {_KEY_KINDS[first_kind]} ({first_type}) in "
                f"source '{first_source}' (read by feature view '{first_view}'); an entity's "
                "key must have one type in every source",
            )
