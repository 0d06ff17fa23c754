"""The online path: lookups, pushes, skew verification and the HTTP server.

`lookup`, `push` and `verify` hold what `FeatureStore.get_online_features`, `push` and
`verify` delegate to; `server` is the FastAPI application on top of them (imported on
its own, so the SDK never loads the web stack).
"""
