"""The package's layers (README, "Inside shared/ossdirect/"): every import, lazy ones included, points down."""

import ast
from pathlib import Path

from support import ROOT

PKG = ROOT / "shared" / "ossdirect"  # this repository's own package (ROOT: the checkout's top)
# bottom to top; a module may import its own layer and any layer below it
LAYERS = {"settings": 0, "errors": 0, "rsa": 0, "log": 0, "http1": 0, "oss": 1, "store": 2, "core": 3, "app": 4, "client": 5, "__init__": 6,
          "__main__": 6}
# the one documented exception: the older ApiError(status, ...) form reads the edge's status mapping
ALLOWED_UP = {("errors", "app.http")}


def layer_of(dotted: str) -> int:
    return LAYERS[dotted.split(".")[0]]


def imports_of(path: Path, root: Path = PKG) -> "list[tuple[str, str]]":
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    module = ".".join(p for p in parts if p != "__init__") or "__init__"
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
            target = ".".join([*base, *([node.module] if node.module else [])])
            names = [target] if node.module or not target == "" else []
            if not node.module:  # from . import x: each name may be a submodule
                names = [".".join([*base, a.name]) for a in node.names]
            found += [(module, t) for t in names if t]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [(module, m[len("ossdirect."):]) for m in mods if m.startswith("ossdirect.")]
    return found


def test_every_import_points_down():
    up = []
    for path in sorted(PKG.rglob("*.py")):
        for source, target in imports_of(path):
            if target.split(".")[0] not in LAYERS:
                continue  # a name of the package itself (from .. import __version__)
            if layer_of(target) > layer_of(source) and (source, target) not in ALLOWED_UP:
                up.append(f"{source} imports {target}")
    assert up == []


def test_the_check_sees_an_upward_import(tmp_path):
    # the check itself can fail: a lazy import of the edge inside a core module is found and resolved
    (tmp_path / "core").mkdir()
    src = tmp_path / "core" / "forms.py"
    src.write_text("def f():\n    from ..app.http import json_response\n    from . import limits\n")
    found = imports_of(src, tmp_path)
    assert found == [("core.forms", "app.http"), ("core.forms", "core.limits")]
    assert layer_of("app.http") > layer_of("core.forms")
