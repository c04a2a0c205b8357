"""Writing a corrected tree back as text that looks like the user's file, and diffing it.

ruamel keeps comments and key order but not the user's indentation or line width; both are
read from the original text so that a file a correction did not touch comes back byte for byte
and the diff shows only what the correction changed.
"""
from __future__ import annotations

import difflib
import io
import re
from functools import lru_cache
from typing import Any

from ruamel.yaml.util import load_yaml_guess_indent

from netlens.prescription.yamlio import yaml_rt

# Never re-wrap a user's long line (an `about:` sentence): wrapping is a change they did not ask for.
WIDTH = 4096


def render(tree: Any, like: str | None = None) -> str:
    """The tree as YAML, indented like the text `like` (default: netlens's own style) and
    wrapped at its width: never, unless `like` was itself written wrapped (a run folder's
    `design.yaml`, written by netlens at ruamel's width)."""
    y = yaml_rt()
    y.width = _width(like) if like else WIDTH
    if like:
        mapping = _mapping_indent(like)
        _, seq, offset = load_yaml_guess_indent(like)
        if seq is not None and offset is not None:
            y.indent(mapping=mapping, sequence=seq, offset=offset)
        else:
            y.indent(mapping=mapping, sequence=mapping + 2, offset=mapping)
    buf = io.StringIO()
    y.dump(tree, buf)
    return buf.getvalue()


@lru_cache(maxsize=32)
def _width(like: str) -> int:
    """The line width that reproduces `like`: WIDTH, or netlens's own when `like` was wrapped."""
    from netlens.prescription.yamlio import parse

    try:
        tree = parse(like, "<like>")
    except Exception:           # not YAML we can read: keep lines as they come
        return WIDTH
    for width in (WIDTH, yaml_rt().width):
        y = yaml_rt()
        y.width = width
        buf = io.StringIO()
        y.dump(tree, buf)
        if buf.getvalue() == like:
            return width
    return WIDTH


def _mapping_indent(text: str) -> int:
    """Indentation of the first key nested under a top-level key (2 if there is none)."""
    previous = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if previous is not None and re.match(r"^[^\s#-][^:]*:\s*(#.*)?$", previous):
            m = re.match(r"^( +)[^\s#-][^:]*:", line)
            if m:
                return len(m.group(1))
        previous = line
    return 2


def unified(before: str, after: str, name: str, fixed_name: str | None = None) -> str:
    """A unified diff of two prescription texts, with two lines of context."""
    lines = difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                 fromfile=name, tofile=fixed_name or name, n=2)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
