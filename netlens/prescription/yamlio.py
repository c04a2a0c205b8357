"""Reading prescription YAML safely, with line numbers, in a form that round-trips comments.

ruamel.yaml's round-trip loader keeps comments and key order (so `diagnose --fix` can write the
user's file back untouched where it changed nothing) and records each key's line. It never
constructs Python objects; explicit tags are refused here so that nothing in a prescription can
import or execute code. YAML 1.2 rules apply: `1e-4` is a number and `on` is a string.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from netlens.errors import DesignError

# Tags a plain YAML document may carry implicitly; anything else was written by hand.
_PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")}


def yaml_rt() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 100
    return y


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DesignError("no such prescription file", file=str(path),
                          suggestion="Check the path; bundled designs are in `designs/`.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DesignError(f"cannot read the prescription ({e.__class__.__name__}: {e})",
                          file=str(path)) from None


def parse(text: str, file: str) -> Any:
    """Parse YAML text into ruamel's commented tree, refusing explicit tags."""
    y = yaml_rt()
    try:
        _refuse_tags(y.compose(io.StringIO(text)), file)
        return y.load(io.StringIO(text))
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        what = " ".join(str(p) for p in (e.context, e.problem) if p)
        raise DesignError(f"YAML syntax error: {what}", file=file, line=line,
                          suggestion="Check indentation and that every `key: value` has a space "
                                     "after the colon.") from None
    except YAMLError as e:
        raise DesignError(f"YAML error: {e}", file=file) from None


def _refuse_tags(node: Any, file: str) -> None:
    if node is None:
        return
    tag = getattr(node.tag, "value", node.tag)  # ruamel ≥ 0.18 wraps tags in a Tag object
    if tag is not None and str(tag) not in _PLAIN_TAGS:
        raise DesignError(
            "tags are not allowed in a prescription",
            file=file, line=node.start_mark.line + 1, found=str(tag),
            suggestion="netlens loads YAML safely and never executes code; remove the `!` tag.")
    value = node.value
    if isinstance(value, list):
        for item in value:
            if isinstance(item, tuple):      # mapping: (key node, value node)
                _refuse_tags(item[0], file)
                _refuse_tags(item[1], file)
            else:
                _refuse_tags(item, file)


def line_of(tree: Any, path: tuple) -> int | None:
    """1-based line of the node at `path` (keys and indices), or of its deepest existing parent."""
    line = None
    node = tree
    for key in path:
        lc = getattr(node, "lc", None)
        try:
            if isinstance(node, dict) and key in node:
                if lc is not None:
                    line = lc.key(key)[0] + 1
                node = node[key]
            elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
                if lc is not None:
                    line = lc.item(key)[0] + 1
                node = node[key]
            else:
                break
        except (KeyError, IndexError, TypeError):
            break
    if line is None and getattr(tree, "lc", None) is not None:
        line = tree.lc.line + 1
    return line


def plain(node: Any) -> Any:
    """The tree as plain dicts, lists and Python scalars (for JSON and pydantic)."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def dump(tree: Any) -> str:
    buf = io.StringIO()
    yaml_rt().dump(tree, buf)
    return buf.getvalue()


def path_str(path: tuple) -> str:
    """`('layers', 3, 'linear', 'width')` → `layers[3].linear.width`."""
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out
