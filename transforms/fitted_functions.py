"""The full-pass transform functions a service may declare: their parameters, the
feature types they take and the type they give.

Plain data, no Numba: the registry checks definitions against it, `analyzers.py` fits
their statistics and `fitted_kernel.py` applies them.
"""

from __future__ import annotations

from dataclasses import dataclass

from transforms.spec import ColumnType

NUMBER = frozenset({ColumnType.INT, ColumnType.FLOAT})
CATEGORY = frozenset({ColumnType.STRING, ColumnType.INT})
ANY_VALUE = frozenset({ColumnType.INT, ColumnType.FLOAT, ColumnType.STRING, ColumnType.BOOL})

IMPUTE_STRATEGIES = ("mean", "median", "most_frequent", "constant")
CATEGORICAL_FUNCTIONS = ("vocabulary", "one_hot", "hash_bucket")
DEFAULT_CLIP_QUANTILES = (0.01, 0.99)
DEFAULT_OOV_BUCKETS = 1
DEFAULT_ONE_HOT_TOP_K = 10


@dataclass(frozen=True)
class TransformFunction:
    """One function's contract.

    Attributes:
        name: how the registry names it (`fn:`).
        parameters: the keys it accepts besides `fn` and `of`.
        required: the keys it needs.
        inputs: the feature types it takes.
        output: the type it gives (None: the input's type, for `impute`).
        fitted: whether it has statistics to fit (`log1p` and `hash_bucket` do not).
        summary: one line for messages and the reference.
    """

    name: str
    parameters: tuple[str, ...]
    required: tuple[str, ...]
    inputs: frozenset[ColumnType]
    output: ColumnType | None
    fitted: bool
    summary: str


FUNCTIONS: dict[str, TransformFunction] = {
    function.name: function
    for function in (
        TransformFunction("zscore", (), (), NUMBER, ColumnType.FLOAT, True,
                          "(x - mean) / std"),
        TransformFunction("min_max", (), (), NUMBER, ColumnType.FLOAT, True,
                          "(x - min) / (max - min)"),
        TransformFunction("robust_scale", (), (), NUMBER, ColumnType.FLOAT, True,
                          "(x - median) / (p75 - p25)"),
        TransformFunction("quantile_bucket", ("buckets",), ("buckets",), NUMBER,
                          ColumnType.INT, True, "the bucket 0..buckets-1 between quantiles"),
        TransformFunction("clip_quantiles", ("quantiles",), (), NUMBER, ColumnType.FLOAT,
                          True, "x clipped to the fitted quantiles [lo, hi]"),
        TransformFunction("impute", ("strategy", "value"), ("strategy",), ANY_VALUE, None,
                          True, "x, or a fitted or constant value where x is null"),
        TransformFunction("vocabulary", ("top_k", "min_count", "oov_buckets"), (), CATEGORY,
                          ColumnType.INT, True, "the value's rank in the fitted vocabulary"),
        TransformFunction("one_hot", ("top_k", "min_count"), (), CATEGORY, ColumnType.INT,
                          True, "one 0/1 column per value of the fitted vocabulary"),
        TransformFunction("hash_bucket", ("buckets",), ("buckets",), CATEGORY,
                          ColumnType.INT, False, "a stable hash of the value, modulo buckets"),
        TransformFunction("log1p", (), (), NUMBER, ColumnType.FLOAT, False, "log(1 + x)"),
    )
}


@dataclass(frozen=True)
class TransformSpec:
    """One declared transform, resolved: its function, input type and parameters.

    Attributes:
        name: the output column (one-hot: the prefix of its columns).
        fn: a key of FUNCTIONS.
        input_type: the type of the feature it reads.
        parameters: every parameter of the function, defaults filled in, as sorted
            (name, value) pairs.
    """

    name: str
    fn: str
    input_type: ColumnType
    parameters: tuple[tuple[str, object], ...]

    def parameter(self, name: str) -> object:
        """A parameter's value (defaults filled in)."""
        return dict(self.parameters)[name]

    @property
    def categorical(self) -> bool:
        """Reads its input as categories (each distinct value as text), not as numbers:
        the vocabulary, one-hot and hash functions, and `impute` of a string."""
        return self.fn in CATEGORICAL_FUNCTIONS or (
            self.fn == "impute" and self.input_type == ColumnType.STRING)

    @property
    def output_type(self) -> ColumnType:
        """The type of the column(s) it gives."""
        function = FUNCTIONS[self.fn]
        if function.output is not None:
            return function.output
        if self.parameter("strategy") in ("mean", "median"):
            return ColumnType.FLOAT
        return self.input_type


def with_defaults(fn: str, given: dict[str, object]) -> tuple[tuple[str, object], ...]:
    """A function's parameters as given, with the defaults of those left out."""
    defaults: dict[str, object] = {
        "clip_quantiles": {"quantiles": DEFAULT_CLIP_QUANTILES},
        "impute": {"value": None},
        "vocabulary": {"top_k": None, "min_count": 1, "oov_buckets": DEFAULT_OOV_BUCKETS},
        "one_hot": {"top_k": DEFAULT_ONE_HOT_TOP_K, "min_count": 1},
    }.get(fn, {})
    merged = {**defaults, **{key: value for key, value in given.items() if value is not None}}
    if "quantiles" in merged:
        merged["quantiles"] = tuple(float(q) for q in merged["quantiles"])  # type: ignore[union-attr]
    return tuple(sorted(merged.items()))
