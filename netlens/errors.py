"""Errors a user can act on.

Every error that reaches the command line is one of these: a one-paragraph message
naming where the problem is, what was expected, what was found and what to try.
The CLI maps them to exit codes; nothing here prints.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


def suggest(word: str, options: Iterable[str]) -> str | None:
    """The closest known name to a misspelt one, or None."""
    found = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return found[0] if found else None


class NetlensError(Exception):
    """Base of errors that carry a user-facing message and an exit code."""

    exit_code = 3


class DesignError(NetlensError):
    """An invalid prescription or argument (exit code 2).

    `file` and `line` (1-based) locate the problem; `path` is the field path such as
    `layers[3].linear.width`.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        path: str | None = None,
        expected: str | None = None,
        found: object = None,
        suggestion: str | None = None,
    ):
        self.message = message
        self.file = file
        self.line = line
        self.path = path
        self.expected = expected
        self.found = found
        self.suggestion = suggestion
        super().__init__(self.render())

    def located(self, *, file: str | None = None, line: int | None = None,
                path: str | None = None) -> "DesignError":
        """A copy with location filled in where it was missing."""
        return DesignError(
            self.message,
            file=self.file or file,
            line=self.line or line,
            path=self.path or path,
            expected=self.expected,
            found=self.found,
            suggestion=self.suggestion,
        )

    def render(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "")
        parts = []
        head = f"{where}: " if where else ""
        if self.path:
            head += f"`{self.path}`: "
        parts.append(head + self.message.rstrip("."))
        if self.expected is not None:
            parts.append(f"expected {self.expected}")
        if self.found is not None:
            parts.append(f"found {self.found!r}" if not isinstance(self.found, str) else f"found `{self.found}`")
        text = "; ".join(parts) + "."
        if self.suggestion:
            text += f" {self.suggestion}"
        return text


class RunError(NetlensError):
    """A run that could not complete: unreadable file, out of memory (exit code 3)."""

    exit_code = 3
