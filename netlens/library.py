"""The bundled designs: prescriptions shipped inside the package (`netlens/designs/`, also at
`designs/` in the repository), listed by `netlens designs` and copied by `netlens init NAME`.

Sub-folders (`healthy/`, `phenomena/`, …) are discovered: a design's name is its path below the
folder without `.yaml` (`healthy/small-mlp`), and a bare file name also finds it.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from netlens.errors import DesignError, suggest

SKIP = (".fixed.yaml", ".best.yaml")


def root() -> Path:
    return Path(__file__).resolve().parent / "designs"


def bundled() -> list[dict]:
    """Every bundled design: name, path, and its `about:` line (read without validating)."""
    import yaml

    out = []
    base = root()
    for path in sorted(base.rglob("*.yaml")):
        if path.name.endswith(SKIP):
            continue
        try:
            about = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("about", "")
        except (OSError, yaml.YAMLError, AttributeError):
            about = ""
        name = path.relative_to(base).with_suffix("").as_posix()
        out.append({"name": name, "path": str(path), "about": " ".join(str(about or "").split())})
    return out


def find(name: str) -> Path:
    designs = {d["name"]: Path(d["path"]) for d in bundled()}
    key = name[:-5] if name.endswith(".yaml") else name
    if key in designs:
        return designs[key]
    by_file = [p for n, p in designs.items() if n.rsplit("/", 1)[-1] == key]
    if len(by_file) == 1:
        return by_file[0]
    hint = suggest(key, list(designs))
    raise DesignError(f"no bundled design is called `{name}`", expected="a name from `netlens designs`",
                      suggestion=(f"Did you mean `{hint}`? " if hint else "")
                      + "Run `netlens designs` to list them.")


def init(name: str, dest: Path | None = None, force: bool = False) -> Path:
    """Copy bundled design `name` to `dest` (a file, or a folder; default ./NAME.yaml)."""
    src = find(name)
    dest = Path(dest) if dest is not None else Path(src.name)
    if dest.is_dir():
        dest = dest / src.name
    if dest.exists() and not force:
        raise DesignError(f"`{dest}` already exists", suggestion="Pass --force to overwrite it, "
                          "or give another destination.")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return dest
