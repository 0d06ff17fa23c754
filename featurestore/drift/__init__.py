"""Drift: how far a feature's current values moved from a baseline's.

- `measures`: PSI, Kolmogorov-Smirnov, L-infinity, Jensen-Shannon (numpy only).
- `profiles`: one feature's values on one side, and the summary a fit keeps of them.
- `sides`: the baselines and current sides a comparison names (saved training sets,
  files, fits, served values, windows of events), read into profiles.
- `served_values`: the values a server logged (`serving.served_log`), by column.
- `comparison`: the per-feature comparison and its report.
"""
