"""Paved's settings: the only module that reads the environment.

Settings are read once, when a command starts (never at import time), into one typed object that is
passed to whatever needs it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    """How this Paved process is set up.

    `data_dir` holds Paved's own state (the results cache now; queues and mirrors later). `color` says
    whether terminal output may use ANSI colours when it goes to a terminal.
    """

    data_dir: Path
    color: bool = True

    @property
    def catalogue_index(self) -> Path:
        """Where judged files and catalogue states are kept between runs (see `bot.catalog`)."""
        return self.data_dir / "catalogue.sqlite"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        if env.get("PAVED_DATA_DIR"):
            data_dir = Path(env["PAVED_DATA_DIR"]).expanduser()
        else:
            xdg = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "share")
            data_dir = Path(xdg) / "paved"
        color = "NO_COLOR" not in env and env.get("TERM") != "dumb"
        return cls(data_dir=data_dir, color=color)
