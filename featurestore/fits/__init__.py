"""Full-pass transforms of services: fitted on a training set, frozen, and applied by
one compiled kernel on both paths (`transforms.fitted_kernel`).

- `service_transforms`: a service's transforms resolved against the compiled graph.
- `artifacts`: fitted artifacts and pins, stored in the offline DuckDB file.
- `fitting`: `FeatureStore.fit`.
- `applying`: the transformed columns of a training set or a lookup.
"""
