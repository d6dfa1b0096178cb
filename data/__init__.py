"""The data layer: tables, sessions, queries, the model registry and caches."""
