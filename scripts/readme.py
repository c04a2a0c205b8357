"""Regenerate README.md's output blocks from the code, so the README stays true.

Every output block in the README is written as a marker line followed by a console block:

    <!-- netlens-run: netlens paraxial designs/deep-tanh.yaml -->
    ```console
    $ netlens paraxial designs/deep-tanh.yaml
    …the command's real output…
    ```

This script runs each marked COMMAND, in README order, in one temporary folder holding a copy of
the bundled designs (so `runs/…` and `*.best.yaml` land there, and a later command can read what
an earlier one wrote, as a reader following the README would), at a fixed terminal width, and
replaces the block's body with `$ COMMAND` and the output.

Options after the command, each behind a `|`:

    | head N          keep the first N lines of the output …
    | tail N          … and/or the last N; what is left out becomes a line `   …`
    | rc              add `$ echo $?` and the exit code

e.g. `<!-- netlens-run: netlens paraxial designs/deep-tanh.yaml | head 8 | tail 5 -->`.
The first line of the block is always `$ COMMAND` (without the options).

    python scripts/readme.py                 # rewrite README.md
    python scripts/readme.py --check         # exit 1 if a block differs (timings ignored)
    python scripts/readme.py --only paraxial # only the blocks whose command contains this

Timings (`in 1.5s`, `14.4 s`, trials per minute) differ from run to run; `--check` compares with
them normalized.
"""
from __future__ import annotations

import argparse
import difflib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
WIDTH = 100
MARKER = re.compile(r"^<!-- netlens-run: (?P<spec>.+?) -->\s*$")
ELISION = "   …"

# Files a README example needs beside the bundled designs (written into the temporary folder).
FILES = {
    "broken.yaml": (ROOT / "designs" / "quickstart.yaml", ("- relu", "- reluu")),
}


@dataclass
class Block:
    start: int            # index of the marker line
    end: int              # index of the closing fence
    command: str
    head: int | None
    tail: int | None
    rc: bool


def parse_spec(spec: str) -> tuple[str, int | None, int | None, bool]:
    parts = [p.strip() for p in spec.split(" | ")]
    command, head, tail, rc = parts[0], None, None, False
    for opt in parts[1:]:
        words = opt.split()
        if words[:1] == ["head"] and len(words) == 2:
            head = int(words[1])
        elif words[:1] == ["tail"] and len(words) == 2:
            tail = int(words[1])
        elif words == ["rc"]:
            rc = True
        else:
            raise SystemExit(f"README marker `{spec}`: unknown option `{opt}` "
                             "(expected `head N`, `tail N` or `rc`)")
    return command, head, tail, rc


def find_blocks(lines: list[str]) -> list[Block]:
    blocks = []
    for i, line in enumerate(lines):
        m = MARKER.match(line)
        if not m:
            continue
        command, head, tail, rc = parse_spec(m.group("spec"))
        if i + 2 >= len(lines) or lines[i + 1].strip() != "```console" \
                or lines[i + 2].rstrip() != f"$ {command}":
            raise SystemExit(f"README.md:{i + 1}: the marker must be followed by a ```console "
                             f"block whose first line is `$ {command}`")
        end = next((j for j in range(i + 3, len(lines)) if lines[j].strip() == "```"), None)
        if end is None:
            raise SystemExit(f"README.md:{i + 1}: the console block is not closed")
        blocks.append(Block(i, end, command, head, tail, rc))
    return blocks


def workspace() -> Path:
    tmp = Path(tempfile.mkdtemp(prefix="netlens-readme-"))
    shutil.copytree(ROOT / "designs", tmp / "designs", symlinks=False,
                    ignore=shutil.ignore_patterns("*.best.yaml", "*.fixed.yaml", "*.db", "*.db-*"))
    for extra in ("examples", "docs"):      # scripts and example files the README runs
        if (ROOT / extra).is_dir():
            shutil.copytree(ROOT / extra, tmp / extra, ignore=shutil.ignore_patterns("__pycache__"))
    for name, (src, (old, new)) in FILES.items():
        (tmp / name).write_text(src.read_text().replace(old, new, 1))
    return tmp


def run(command: str, cwd: Path) -> tuple[str, int]:
    argv = shlex.split(command)
    if argv[0] == "netlens":
        argv = [sys.executable, "-m", "netlens"] + argv[1:]
    env = {**os.environ, "COLUMNS": str(WIDTH), "OMP_NUM_THREADS": "1", "NO_COLOR": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "TERM": "dumb"}
    env.pop("FORCE_COLOR", None)
    p = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    out = p.stdout + (p.stderr if p.stderr and not p.stderr.isspace() else "")
    return out.rstrip("\n"), p.returncode


def body(block: Block, output: str, code: int) -> list[str]:
    lines = [line.rstrip() for line in output.splitlines()]
    if block.head is not None or block.tail is not None:
        head, tail = block.head or 0, block.tail or 0
        if head + tail < len(lines):
            lines = lines[:head] + [ELISION] + (lines[-tail:] if tail else [])
    out = [f"$ {block.command}"] + lines
    if block.rc:
        out += ["$ echo $?", str(code)]
    return out


TIMING = [
    (re.compile(r"\b\d+(\.\d+)?\s?s\b"), "<T>s"),                    # 1.5s, 14.4 s
    (re.compile(r"\b\d+(\.\d+)?\s?(ms|µs|min)\b"), "<T>"),
    (re.compile(r"\d[\d,]*(\.\d+)?/min\b"), "<N>/min"),
    (re.compile(r"^(│ time\s+│).*$", re.M), r"\1 <T>"),              # tolerance's wall-time operand
]


def normalize(text: str) -> str:
    for pattern, repl in TIMING:
        text = pattern.sub(repl, text)
    return text


def regenerate(text: str, only: str | None = None, progress: bool = True) -> str:
    lines = text.split("\n")
    blocks = find_blocks(lines)
    cwd = workspace()
    try:
        for block in blocks:        # in order: later commands may read what earlier ones wrote
            if only is not None and only not in block.command:
                continue
            if progress:
                print(f"running: {block.command}", file=sys.stderr)
            output, code = run(block.command, cwd)
            new = body(block, output, code)
            lines[block.start + 2:block.end] = new
            shift = len(new) - (block.end - block.start - 2)
            for later in blocks:
                if later.start > block.start:
                    later.start += shift
                    later.end += shift
    finally:
        shutil.rmtree(cwd, ignore_errors=True)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare only; exit 1 on a difference")
    ap.add_argument("--only", help="only the blocks whose command contains this text")
    ap.add_argument("--readme", type=Path, default=README)
    args = ap.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    new = regenerate(text, args.only)
    if args.check:
        if normalize(new) == normalize(text):
            return 0
        diff = difflib.unified_diff(normalize(text).split("\n"), normalize(new).split("\n"),
                                    "README.md", "regenerated", lineterm="")
        print("\n".join(diff))
        return 1
    if new != text:
        args.readme.write_text(new, encoding="utf-8")
        print(f"rewrote {args.readme}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
