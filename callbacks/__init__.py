"""Callback modules: one per page, each with ``register(dash_app, policy)``."""
