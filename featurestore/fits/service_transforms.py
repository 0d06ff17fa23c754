"""A service's transforms, resolved against the registry and its compiled graph: what
each reads, the types involved, and the definitions a fitted artifact is bound to."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson

from featurestore.errors import InputError, RegistryError
from featurestore.feature_columns import request_feature_type
from featurestore.registry import Registry
from featurestore.registry.checks import LocatedProblems
from featurestore.registry.loader import load_yaml
from featurestore.registry.models import Transform
from featurestore.registry.problems import KeyPath
from featurestore.registry.suggestions import did_you_mean
from transforms import CompiledGraph
from transforms.aggregations import PARAMETER_KEYS
from transforms.fitted_functions import FUNCTIONS, TransformSpec, with_defaults
from transforms.spec import ColumnType

_TYPE_NAMES = {ColumnType.INT: "int", ColumnType.FLOAT: "float", ColumnType.BOOL: "bool",
               ColumnType.STRING: "string", ColumnType.TIMESTAMP: "timestamp"}


@dataclass(frozen=True)
class ServiceTransforms:
    """The transforms of one service, ready to fit or apply.

    Attributes:
        service: the service.
        specs: the transforms, in file order.
        refs: per transform, the (view, feature) it reads.
        definitions: what a fitted artifact is bound to (JSON-compatible): the
            transforms with their parameters and the definitions of the features read.
        definitions_hash: sha256 of `definitions`.
    """

    service: str
    specs: tuple[TransformSpec, ...]
    refs: tuple[tuple[str, str], ...]
    definitions: dict[str, object]
    definitions_hash: str

    @property
    def categorical(self) -> tuple[bool, ...]:
        """Per transform, whether it reads its input as categories."""
        return tuple(spec.categorical for spec in self.specs)

    def inputs(self) -> list[tuple[tuple[str, str], bool]]:
        """The distinct (ref, categorical) input columns, in first-use order."""
        return list(dict.fromkeys(zip(self.refs, self.categorical, strict=True)))

    def input_index(self) -> list[int]:
        """Per transform, its index into `inputs()`."""
        inputs = self.inputs()
        return [inputs.index(pair) for pair in zip(self.refs, self.categorical, strict=True)]


def feature_type(registry: Registry, kernels: CompiledGraph, view: str, feature: str) -> ColumnType:
    """The result type of a feature-view or request-view feature."""
    if view in registry.feature_views:
        return kernels.views[view].feature_types[feature]
    return request_feature_type(kernels.request_views[view].feature_types.get(feature))


def service_transforms(registry: Registry, kernels: CompiledGraph,
                       service: str) -> ServiceTransforms:
    """Resolve a service's transforms.

    Raises:
        InputError: an unknown service, a service without transforms, or a transform
            whose input has a type its function does not take.
    """
    if service not in registry.services:
        raise InputError(f"unknown service '{service}'{did_you_mean(service, registry.services)}")
    transforms = registry.services[service].transforms
    if not transforms:
        raise InputError(f"service '{service}' declares no transforms: add a `transforms:` "
                         "mapping to it in the registry (docs/registry.md, Transforms)")
    problems = type_problems(registry, kernels, service)
    if problems:
        raise InputError(problems[0][1])
    specs, refs = [], []
    for name, transform in transforms.items():
        ref = registry.transform_input(service, transform.of)
        assert ref is not None  # the registry checks `of`
        kind = feature_type(registry, kernels, *ref)
        spec = TransformSpec(name, transform.fn, kind,
                             with_defaults(transform.fn, transform.given_parameters()))
        specs.append(spec)
        refs.append(ref)
    definitions = {
        "service": service,
        "transforms": {spec.name: {"fn": spec.fn, "of": f"{view}:{feature}",
                                   "input_type": str(spec.input_type),
                                   "parameters": dict(spec.parameters)}
                       for spec, (view, feature) in zip(specs, refs, strict=True)},
        "inputs": {f"{view}:{feature}": _feature_definition(registry, view, feature)
                   for view, feature in dict.fromkeys(refs)},
    }
    digest = hashlib.sha256(orjson.dumps(definitions, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return ServiceTransforms(service, tuple(specs), tuple(refs),
                             definitions, digest)


def _feature_definition(registry: Registry, view: str, feature: str) -> dict[str, object]:
    if view in registry.feature_views:
        definition = registry.feature_views[view].features[feature]
        # The parameters only when given, so that other features keep their digest.
        parameters = {key: getattr(definition, key) for key in PARAMETER_KEYS.values()
                      if getattr(definition, key) is not None}
        return {"agg": definition.agg, "expr": definition.expr, "window": definition.window,
                "hop": registry.effective_hop(view, feature),
                "source": registry.feature_views[view].source, **parameters}
    return {"expr": registry.request_views[view].features[feature]}


def check_transform_types(registry: Registry, kernels: CompiledGraph, text: str,
                          file_name: str) -> None:
    """Check every service's transforms against its features' types.

    Raises:
        RegistryError: each mistyped transform, located in the registry file.
    """
    report = LocatedProblems(load_yaml(text))
    for service in registry.services:
        for path, message in type_problems(registry, kernels, service):
            report.at_value(path, message)
    if report.problems:
        raise RegistryError([problem.format(file_name) for problem in sorted(report.problems)])


def type_problems(registry: Registry, kernels: CompiledGraph,
                  service: str) -> list[tuple[KeyPath, str]]:
    """Transforms whose input type their function does not take, located by key path."""
    problems: list[tuple[KeyPath, str]] = []
    for name, transform in registry.services[service].transforms.items():
        ref = registry.transform_input(service, transform.of)
        if ref is None:
            continue
        kind = feature_type(registry, kernels, *ref)
        message = _type_problem(transform, kind, f"{ref[0]}:{ref[1]}")
        if message is not None:
            problems.append((("services", service, "transforms", name, "of"),
                             f"transform '{name}': {message}"))
    return problems


def _type_problem(transform: Transform, kind: ColumnType, ref: str) -> str | None:
    function = FUNCTIONS[transform.fn]
    if kind not in function.inputs:
        takes = " or ".join(sorted(_TYPE_NAMES[k] for k in function.inputs))
        return f"{transform.fn} takes {takes} features; '{ref}' is {_TYPE_NAMES[kind]}"
    if transform.fn == "impute":
        numeric = kind in (ColumnType.INT, ColumnType.FLOAT)
        if transform.strategy in ("mean", "median") and not numeric:
            return (f"impute strategy '{transform.strategy}' needs a number; '{ref}' is "
                    f"{_TYPE_NAMES[kind]} (use most_frequent or constant)")
        if transform.strategy == "constant" and not _fits_type(transform.value, kind):
            return (f"impute value {transform.value!r} is not a {_TYPE_NAMES[kind]} like "
                    f"'{ref}'")
    return None


def _fits_type(value: object, kind: ColumnType) -> bool:
    if kind == ColumnType.STRING:
        return isinstance(value, str)
    if kind == ColumnType.BOOL:
        return isinstance(value, bool)
    if kind == ColumnType.INT:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, int | float) and not isinstance(value, bool)
