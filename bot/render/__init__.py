"""Renderers that turn one `Plan` and its findings into each surface's format."""
