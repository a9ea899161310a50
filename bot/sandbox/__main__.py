"""`python -m bot.sandbox COMMAND …`: the sandbox CLI on its own (same commands as `paved sandbox`)."""

from __future__ import annotations

import sys

from .commands import main

sys.exit(main())
