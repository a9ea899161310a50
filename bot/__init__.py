"""Paved: a pull-request-driven internal developer platform."""
