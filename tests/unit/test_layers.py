"""Imports only go down (issue 27): every `kernlab` import, at module level or inside a function, read from the
source; a package may import its own modules and the layers below it (kernlab/__init__.py draws them), never a
layer beside or above it, and no module imports itself back through others."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import kernlab

ROOT = Path(kernlab.__file__).parent
# The layers, bottom up; "" is the shared modules directly in kernlab/. Packages on one layer do not import
# each other.
LAYER = {"": 0, "config": 1, "results": 2, "vmlinux": 2, "verify": 3, "kernel": 3, "guest": 3, "vm": 4,
         "report": 4, "probes": 5, "lab": 6, "cli": 7}
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 60


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        name = ".".join(("kernlab", *path.relative_to(ROOT).with_suffix("").parts))
        found[name.removesuffix(".__init__")] = path
    return found


def package(module: str) -> str:
    """The layer a module belongs to: its package under kernlab, or "" for the shared modules."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYER) else ""


def imports(path: Path, known: dict[str, Path]) -> Iterator[tuple[int, str]]:
    """(line, module) for every kernlab module the file imports; `from pkg import module` names the module."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("kernlab"):
            for alias in node.names:
                module = f"{node.module}.{alias.name}"
                yield node.lineno, module if module in known else str(node.module)
        elif isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names if alias.name.startswith("kernlab"))


def test_every_package_is_on_a_layer() -> None:
    packages = {path.name for path in ROOT.iterdir() if (path / "__init__.py").exists()}
    assert packages == set(LAYER) - {""}


def test_imports_only_go_down() -> None:
    known = modules()
    wrong = [f"{path.relative_to(ROOT.parent)}:{line}: {module} ({package(module) or 'shared'}) imports {target} "
             f"({package(target) or 'shared'})"
             for module, path in known.items() for line, target in imports(path, known)
             if package(target) != package(module) and LAYER[package(target)] >= LAYER[package(module)]]
    assert not wrong, "\n".join(wrong)


def test_no_module_imports_itself_back() -> None:
    known = modules()
    graph = {module: {target for _, target in imports(path, known) if target in known and target != module}
             for module, path in known.items()}
    # a package's __init__ is imported by every module under it: only its own imports count
    cycles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            module, trail = stack.pop()
            for target in graph[module]:
                if target == start:
                    cycles.append(" > ".join([*trail, start]))
                elif target not in seen:
                    seen.add(target)
                    stack.append((target, [*trail, target]))
    assert not cycles, "\n".join(sorted(set(cycles))[:10])


def test_modules_and_functions_stay_short() -> None:
    long_modules = [f"{path.relative_to(ROOT.parent)}: {lines} lines" for path in modules().values()
                    if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES]
    long_functions = [f"{path.relative_to(ROOT.parent)}:{node.lineno} {node.name}: {length} lines"
                      for path in modules().values() for node in ast.walk(ast.parse(path.read_text()))
                      if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                      and (length := node.end_lineno - node.lineno + 1) > MAX_FUNCTION_LINES]
    assert not long_modules and not long_functions, "\n".join(long_modules + long_functions)
