"""What a pull-request comment asks of Paved: a command to run, a reply to give, or nothing.

Parsing is pure and total: any text becomes exactly one of `Command`, `Reply` or `Ignore`, so the
comment handler only decides who may do what. Only a line that starts with `/paved` speaks to Paved;
quoted lines (`> /paved plan`) and code blocks are someone talking about Paved, and are ignored.

Anyone who may comment can write a command, so what a reply repeats of it (an unknown command's name,
arguments it does not take) goes through `bot.render.markdown.echo`: shown as text, it mentions
nobody and cannot change the reply's Markdown.
"""

from __future__ import annotations

import difflib
import shlex
from dataclasses import dataclass
from typing import Literal

from bot.render.markdown import echo

PREFIX = "/paved"

CommandName = Literal["plan", "retry", "explain", "status", "feedback"]


@dataclass(frozen=True, slots=True)
class Command:
    """A command to run. `acts` is True when it changes something (and so needs permission)."""

    name: CommandName
    argument: str | None = None

    @property
    def acts(self) -> bool:
        return self.name in ("plan", "retry")


@dataclass(frozen=True, slots=True)
class Reply:
    """Text to answer with, without running anything (help, or what was wrong with the command)."""

    text: str


@dataclass(frozen=True, slots=True)
class Ignore:
    """The comment is not for Paved."""

    reason: str


Parsed = Command | Reply | Ignore

USAGE: dict[str, str] = {
    "plan": "Plan this pull request again now.",
    "retry": "On a merged pull request: apply again what failed.",
    "explain KIND": "Describe the fields of a kind (Team, Service, Database, Environment, Access).",
    "status SERVICE": "Show where a service is deployed: each environment's latest deployment, and the latest "
                      "run of its default branch.",
    "feedback TEXT": "Tell the platform team how asking Paved went: your words are kept with your name and this "
                     "pull request, for the platform's adoption reports.",
    "help": "Show this help.",
}


def help_text() -> str:
    rows = "\n".join(f"| `{PREFIX} {usage}` | {what} |" for usage, what in USAGE.items())
    return ("**Paved commands** — write one at the start of a comment line.\n\n"
            "| command | what it does |\n|---|---|\n" + rows + "\n")


def _command_line(body: str) -> str | None:
    found = _command_at(body)
    return found[0] if found else None


def _command_at(body: str) -> tuple[str, list[str]] | None:
    """The first line speaking to Paved, and the lines after it."""
    in_code = False
    lines = body.splitlines()
    for index, raw in enumerate(lines):
        line = raw.strip()
        if line.startswith(("```", "~~~")):
            in_code = not in_code
            continue
        if in_code or line.startswith(">"):
            continue
        if line == PREFIX or line.startswith(PREFIX + " ") or line.startswith(PREFIX + "\t"):
            return line, lines[index + 1:]
    return None


def _feedback(body: str) -> Parsed:
    """`/paved feedback` takes the rest of its line and every line after it, as they are: words, not
    arguments (no quoting rules), kept as data."""
    found = _command_at(body)
    assert found is not None
    line, after = found
    first = line[len(PREFIX):].strip()[len("feedback"):]
    text = "\n".join([first.strip(), *after]).strip()
    if not text:
        return Reply(f"`{PREFIX} feedback` needs your words, for example `{PREFIX} feedback the plan was clear, "
                     "but I did not know which size to pick`.")
    return Command("feedback", text)


def parse(body: str) -> Parsed:
    """Read a comment's text as Paved does."""
    line = _command_line(body or "")
    if line is None:
        return Ignore("no line starts with /paved")
    try:
        words = shlex.split(line[len(PREFIX):])
    except ValueError:
        words = line[len(PREFIX):].split()
    if not words or words[0] == "help":
        return Reply(help_text())
    name, rest = words[0].lower(), words[1:]
    if name in ("plan", "retry"):
        if rest:
            return Reply(f"`{PREFIX} {name}` takes no arguments; got “{echo(' '.join(rest))}”.\n\n" + help_text())
        return Command(name)  # type: ignore[arg-type]
    if name == "explain":
        if len(rest) != 1:
            return Reply(f"`{PREFIX} explain` needs one kind, for example `{PREFIX} explain Database`.")
        return Command("explain", rest[0])
    if name == "feedback":
        return _feedback(body or "")
    if name == "status":
        if len(rest) != 1:
            return Reply(f"`{PREFIX} status` needs one service, for example `{PREFIX} status payments-api`.")
        return Command("status", rest[0])
    close = difflib.get_close_matches(name, ["plan", "retry", "explain", "status", "feedback", "help"], n=1, cutoff=0.5)
    hint = f" — did you mean `{PREFIX} {close[0]}`?" if close else ""
    return Reply(f"Unknown command “{echo(name)}”{hint}\n\n" + help_text())
