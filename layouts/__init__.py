"""Page layouts: one module per page, each with a ``PAGE`` spec, its ids and ``layout(ctx)``."""
