"""Adapters: how Paved reaches git, GitHub, the file system and other outside systems."""
