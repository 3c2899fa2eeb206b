"""Imports point inward: the layers of the package, written down once, checked on every import of
every module (docs/architecture.md draws them)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "marketsync"

# From the centre out. A module may import its own layer and the layers before it, never one after.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("model", ("marketsync.model", "marketsync.errors")),
    ("support", ("marketsync.parse", "marketsync.masking", "marketsync.registry", "marketsync.config")),
    ("rules", ("marketsync.rules",)),
    ("adapters", ("marketsync.store", "marketsync.providers", "marketsync.inventory_files")),
    ("app", ("marketsync.app",)),
    ("cli", ("marketsync.cli", "marketsync.__main__")),
]
# The emulated marketplaces stand apart: they import nothing of marketsync's but themselves.
APART = ("marketsync.sandbox",)
# Within the adapters: the data layer knows no HTTP, the marketplace adapters no SQLite.
NEVER = [("marketsync.store", "marketsync.providers"), ("marketsync.providers", "marketsync.store")]
# The core reaches a marketplace only through the registry and build_adapter, never its module.
ADAPTER_MODULES = ("marketsync.providers.bricklink", "marketsync.providers.brickowl")
CORE = ("marketsync.model", "marketsync.rules", "marketsync.store", "marketsync.app", "marketsync.cli")


def _name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _layer(module: str) -> int | None:
    return next((n for n, (_, prefixes) in enumerate(LAYERS) if _within(module, prefixes)), None)


def imports() -> list[tuple[str, str, int]]:
    """(importing module, imported marketsync module, line) for every import, lazy ones too."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _name(path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                target = next((t for t in reversed(targets) if _is_module(t)), node.module)
                found.append((module, target, node.lineno))
            elif isinstance(node, ast.Import):
                found += [(module, a.name, node.lineno) for a in node.names]
    return [(m, t, line) for m, t, line in found if t == "marketsync" or t.startswith("marketsync.")]


def _is_module(dotted: str) -> bool:
    relative = Path(*dotted.split("."))
    return (PACKAGE.parent / relative).with_suffix(".py").exists() or (PACKAGE.parent / relative).is_dir()


def test_every_module_has_a_layer():
    modules = {_name(p) for p in PACKAGE.rglob("*.py")} - {"marketsync"}
    assert [m for m in sorted(modules) if _layer(m) is None and not _within(m, APART)] == []


def test_imports_point_inward():
    outward = []
    for module, target, line in imports():
        if target == "marketsync" or _within(module, APART):
            continue  # the package's face (__version__); the sandbox is checked below
        here, there = _layer(module), _layer(target)
        if here is not None and there is not None and there > here:
            outward.append(f"{module}:{line} ({LAYERS[here][0]}) imports {target} ({LAYERS[there][0]})")
    assert outward == []


def test_the_sandbox_imports_nothing_of_marketsync_but_itself():
    assert [f"{m}:{line} imports {t}" for m, t, line in imports()
            if _within(m, APART) and not _within(t, APART) and t != "marketsync"] == []


def test_the_data_layer_and_the_adapters_do_not_know_each_other():
    assert [f"{m}:{line} imports {t}" for m, t, line in imports()
            for a, b in NEVER if _within(m, (a,)) and _within(t, (b,))] == []


def test_the_core_never_imports_a_marketplace_adapter():
    assert [f"{m}:{line} imports {t}" for m, t, line in imports()
            if _within(m, CORE) and _within(t, ADAPTER_MODULES)] == []


def test_no_two_classes_share_a_name():
    """A class name says what it is: two ``Change`` classes in two use cases were two things."""
    seen: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                seen.setdefault(node.name, []).append(_name(path))
    assert {name: modules for name, modules in seen.items() if len(modules) > 1} == {}
