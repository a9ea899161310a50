"""The one exception tree of Paved.

Problems in what a developer asks for are `Finding`s (data), not exceptions. Exceptions are for what
stops Paved from judging at all: a broken rule file, a revision that does not exist, a bad command line.
Each class carries its data as attributes; the CLI maps them to exit code 2, the web app to HTTP status.
"""

from __future__ import annotations


class PavedError(Exception):
    """Raised when Paved cannot do what was asked; the message is meant for the person who asked."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ConfigurationError(PavedError):
    """Raised when the platform repo's rules (schemas, policies, prices, templates) cannot be used.

    `path` names the offending file (repo-relative) and `line` the line where known (0 otherwise).
    """

    def __init__(self, message: str, *, path: str = "", line: int = 0, hint: str | None = None) -> None:
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(f"{where}{message}", hint=hint)
        self.path = path
        self.line = line


class RevisionError(PavedError):
    """Raised when a git revision or repository cannot be read; `revision` is what was asked for."""

    def __init__(self, message: str, *, revision: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.revision = revision


class ObjectMismatchError(RevisionError):
    """Raised when what was read for a git object is not that object: git answered for another id or
    type, or not at all, or a file's bytes are not the blob its listing names.

    `requested` is the object id asked for and `answer` what came back (git's header line, or the id of
    the bytes read). Reading stops rather than give one file's content for another.
    """

    def __init__(self, message: str, *, requested: str, answer: str = "", hint: str | None = None) -> None:
        super().__init__(message, revision=requested, hint=hint)
        self.requested = requested
        self.answer = answer


class UsageError(PavedError):
    """Raised when a command is called with arguments that cannot work together."""
