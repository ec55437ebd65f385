"""The layering rule, read from every module's imports (function-level ones included).

Layers, lowest first: ``assets`` <- ``devices`` <- ``controllers`` <- ``training`` <-
``teleop_app``. A module imports its own layer or lower ones only, so controllers never
import ``training`` or ``teleop_app``, ``training`` never imports ``teleop_app``, and
nothing outside ``teleop_app`` knows the app exists. Qt (PyQt6, pyqtgraph) is imported only
under ``teleop_app/ui``. Module-level imports form no cycle. See ARCHITECTURE.md.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("assets", "devices", "controllers", "training", "teleop_app")
QT = ("PyQt6", "pyqtgraph", "pytestqt")
QT_HOME = "teleop_app.ui"
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


def _modules() -> dict[str, Path]:
    out = {}
    for layer in LAYERS:
        for path in sorted((REPO / layer).rglob("*.py")):
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def imports(module: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every import in the file, resolving
    relative imports and ``from pkg import submodule``. Imports under ``if TYPE_CHECKING``
    count for the layering (they still name the layer) but not for cycles."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                out.extend((a.name, child.lineno, top) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    name = ".".join(base + ([child.module] if child.module else []))
                else:
                    name = child.module or ""
                subs = [f"{name}.{a.name}" for a in child.names if f"{name}.{a.name}" in MODULES]
                if len(subs) < len(child.names):  # a name defined in ``name`` itself
                    out.append((name, child.lineno, top))
                out.extend((sub, child.lineno, top) for sub in subs)  # from pkg import module
            elif _is_type_checking(child) or isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            ):
                visit(child, False)
            else:
                visit(child, top)

    visit(tree, True)
    return out


def violations() -> list[str]:
    found = []
    for module, path in MODULES.items():
        layer = LAYERS.index(module.split(".")[0])
        for name, line, _ in imports(module, path):
            top = name.split(".")[0]
            shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
            where = f"{shown}:{line} imports {name}"
            if top in LAYERS and LAYERS.index(top) > layer:
                found.append(f"{where} (layer {LAYERS[layer]} may not import {top})")
            if top in QT and not (module == QT_HOME or module.startswith(QT_HOME + ".")):
                found.append(f"{where} (Qt only under teleop_app/ui)")
    return found


def cycles() -> list[list[str]]:
    """Strongly connected components of the module-level import graph with > 1 module.

    An edge goes to the module an import names (``from a.b import c``: ``a.b``, or ``a.b.c``
    when that is a module). A package's ``__init__`` importing its plugins while they import
    their siblings is not a cycle; a plugin importing a name from its own package's
    ``__init__`` while that ``__init__`` imports the plugin is (it works only by the order
    of the lines)."""
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for name, _, top in imports(module, path):
            if not top:
                continue
            parts = name.split(".")
            for i in range(len(parts), 0, -1):  # the module named (a.b.c, else a.b, ...)
                target = ".".join(parts[:i])
                if target in MODULES:
                    if target != module:
                        graph[module].add(target)
                    break
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:  # Tarjan
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_every_module_parses_and_is_seen():
    assert len(MODULES) > 100
    for layer in LAYERS:
        assert layer in MODULES


def test_no_layering_violations():
    found = violations()
    assert not found, "layering violations:\n" + "\n".join(found)


def test_no_import_cycles():
    found = cycles()
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


@pytest.mark.parametrize(
    "module, source, expected",
    [
        ("controllers.x", "import training.rl", "may not import training"),
        ("controllers.x", "def f():\n    from teleop_app import cli", "may not import teleop_app"),
        ("training.x", "from teleop_app.session import Session", "may not import teleop_app"),
        ("devices.x", "from controllers.base import Controller", "may not import controllers"),
        ("teleop_app.x", "import PyQt6.QtWidgets", "Qt only"),
        ("assets.x", "if TYPE_CHECKING:\n    from devices.tick import Command", "may not import"),
    ],
)
def test_the_checker_catches_violations(tmp_path, monkeypatch, module, source, expected):
    """The rule is not vacuous: a module with a bad import (even inside a function or under
    TYPE_CHECKING) is reported."""
    path = tmp_path / "x.py"
    path.write_text(source + "\n")
    monkeypatch.setitem(MODULES, module, path)
    assert any(expected in v for v in violations())


def test_the_checker_catches_cycles(tmp_path, monkeypatch):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("import devices.cycle_b\n")
    b.write_text("def f():\n    pass\nfrom devices import cycle_a\n")
    monkeypatch.setitem(MODULES, "devices.cycle_a", a)
    monkeypatch.setitem(MODULES, "devices.cycle_b", b)
    assert ["devices.cycle_a", "devices.cycle_b"] in cycles()


def test_light_imports():
    """The tick's types and the controller registry load without pinocchio,
    dex-retargeting, torch, a renderer or Qt (a fresh interpreter)."""
    import subprocess
    import sys

    heavy = ("torch", "pinocchio", "dex_retargeting", "PyQt6", "diffusers", "training")
    code = (
        "import sys, devices.tick, controllers, devices.robots.base\n"
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
