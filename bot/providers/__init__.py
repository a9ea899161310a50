"""Providers: what makes merged requests real, one module per system (`bot/provider.py` is their port)."""
