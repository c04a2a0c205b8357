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

# Tags a plain YAML document may carry implicitly (`merge` is the `<<` merge key); any other tag
# was written by hand, or is a scalar YAML reads as a date or binary.
_PLAIN_TAGS = {f"tag:yaml.org,2002:{t}"
               for t in ("str", "int", "float", "bool", "null", "map", "seq", "merge")}

# Limits that keep a hostile file from hanging or exhausting the loader. A prescription is a few
# kilobytes; these are far above any real one.
MAX_BYTES = 1_000_000          # document size
MAX_NODES = 100_000            # values after expanding aliases (a "billion laughs" file: 9⁹)
MAX_DEPTH = 64                 # nesting of mappings and lists


def yaml_rt() -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    y.width = 100
    return y


def read_text(path: Path) -> str:
    file = str(path)
    try:
        if path.is_dir():
            raise DesignError("this is a folder, not a prescription file", file=file,
                              suggestion="Pass a .yaml file, e.g. designs/quickstart.yaml.")
        if path.exists() and not path.is_file():
            raise DesignError("this is not a regular file (a pipe or device?)", file=file,
                              suggestion="Pass a .yaml file, e.g. designs/quickstart.yaml.")
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise DesignError("no such prescription file", file=file,
                          suggestion="Check the path; bundled designs are in `designs/`.") from None
    except OSError as e:
        raise DesignError(f"cannot read the prescription ({e.__class__.__name__}: {e.strerror or e})",
                          file=file) from None
    if len(raw) > MAX_BYTES:
        raise DesignError(f"the prescription is larger than {MAX_BYTES // 1000} kB", file=file,
                          suggestion="A prescription is a few kB of YAML; is this the right file?")
    return decode(raw, file)


def decode(raw: bytes, file: str) -> str:
    """UTF-8 text; a bad byte or a NUL byte is located at its line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DesignError(f"the file is not UTF-8 text (byte 0x{raw[e.start]:02x} at line {line})",
                          file=file, line=line,
                          suggestion="Save the prescription as UTF-8.") from None
    if "\0" in text:
        line = text[: text.index("\0")].count("\n") + 1
        raise DesignError("the file contains a NUL byte: it is binary, not YAML text",
                          file=file, line=line, suggestion="Save the prescription as plain UTF-8 text.")
    return text


def parse(text: str, file: str) -> Any:
    """Parse YAML text into ruamel's commented tree, refusing explicit tags."""
    if len(text) > MAX_BYTES:
        raise DesignError(f"the prescription is larger than {MAX_BYTES // 1000} kB", file=file)
    _check_flow_depth(text, file)
    y = yaml_rt()
    try:
        _check_tree(y.compose(io.StringIO(text)), file, text)
        return y.load(io.StringIO(text))
    except RecursionError:
        raise DesignError(f"the YAML is nested too deeply (more than {MAX_DEPTH} levels)", file=file,
                          suggestion="A prescription nests a few levels: sections, rows, options.") from None
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        what = " ".join(str(p) for p in (e.context, e.problem) if p)
        raise DesignError(f"YAML syntax error: {what}", file=file, line=line,
                          suggestion="Check indentation and that every `key: value` has a space "
                                     "after the colon.") from None
    except YAMLError as e:
        raise DesignError(f"YAML error: {e}", file=file) from None


def _check_flow_depth(text: str, file: str) -> None:
    """Refuse `[[[[…` nested beyond MAX_DEPTH before the (recursive) parser sees it. Brackets in
    comments are skipped; ones inside quotes count, which errs only for > 64 unclosed in text."""
    depth = 0
    for number, line in enumerate(text.splitlines(), start=1):
        for i, ch in enumerate(line):
            if ch == "#" and (i == 0 or line[i - 1] in " \t"):
                break
            if ch in "[{":
                depth += 1
                if depth > MAX_DEPTH:
                    raise DesignError(f"the YAML is nested too deeply (more than {MAX_DEPTH} levels)",
                                      file=file, line=number,
                                      suggestion="A prescription nests a few levels: sections, rows, "
                                                 "options.")
            elif ch in "]}":
                depth = max(0, depth - 1)


def _check_tree(root: Any, file: str, text: str) -> None:
    """Refuse explicit tags, and bound nesting and the size after alias expansion — before
    anything walks the expanded tree. Each distinct node is visited once (an alias is the same
    node object again), so this is linear in the file however the aliases multiply."""
    if root is None:
        return
    size: dict[int, int] = {}           # node id → values below it, aliases expanded
    stack = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        if done:
            size[id(node)] = 1 + sum(size[id(c)] for c in _children(node))
            if size[id(node)] > MAX_NODES:
                raise DesignError(
                    f"the YAML expands to more than {MAX_NODES:,} values (aliases `*name` "
                    "repeating anchors `&name`)", file=file, line=node.start_mark.line + 1,
                    suggestion="A prescription needs few aliases; write `repeat: N` for repeated rows.")
            continue
        if id(node) in size:
            continue
        _check_tag(node, file, text)
        if depth > MAX_DEPTH:
            raise DesignError(f"the YAML is nested too deeply (more than {MAX_DEPTH} levels)",
                              file=file, line=node.start_mark.line + 1,
                              suggestion="A prescription nests a few levels: sections, rows, options.")
        stack.append((node, depth, True))
        for child in _children(node):
            if id(child) not in size:
                stack.append((child, depth + 1, False))


def _children(node: Any) -> list:
    value = node.value
    if not isinstance(value, list):
        return []
    out = []
    for item in value:
        out.extend(item if isinstance(item, tuple) else (item,))   # a mapping: (key, value) pairs
    return out


def _check_tag(node: Any, file: str, text: str) -> None:
    tag = getattr(node.tag, "value", node.tag)  # ruamel ≥ 0.18 wraps tags in a Tag object
    explicit = text[node.start_mark.index:node.start_mark.index + 1] == "!"
    if tag is None or (str(tag) in _PLAIN_TAGS and not explicit):
        return
    line = node.start_mark.line + 1
    if not explicit:                                         # implicit: a date, say
        kind = str(tag).rsplit(":", 1)[-1]
        raise DesignError(f"YAML reads this value as a {kind}, which a prescription has no use for",
                          file=file, line=line, found=str(node.value)[:60],
                          suggestion="Quote it to make it text, e.g. `\"2024-01-01\"`.")
    raise DesignError(
        "tags are not allowed in a prescription",
        file=file, line=line, found=str(tag)[:60],
        suggestion="netlens loads YAML safely and never executes code; remove the `!` tag.")


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
