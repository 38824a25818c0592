"""The package's layers are visible and enforced: docs/architecture.md holds the table of who may import
whom, and these tests check every import of every module against it (module-level and lazy imports inside
functions alike), and that the page names every module, so a new module or a new dependency is a
decision written down where a newcomer reads it, never a drift.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "architecture.md"
PACKAGE = "aebench"


def package_modules() -> dict[str, Path]:
    """Every module of the package (dotted name -> file), through pyproject's package-dir mapping."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-dir"]
    modules: dict[str, Path] = {}
    for package, folder in mapping.items():
        base = ROOT / folder
        for file in base.rglob("*.py"):
            parts = list(file.relative_to(base).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join([package, *parts])
            # a folder mapped on its own (aebench.samplers -> samplers/) is read from its own root only
            owner = max((p for p in mapping if name == p or name.startswith(p + ".")), key=len)
            if owner == package and ".venv" not in file.parts:
                modules[name] = file
    return modules


def section(title: str) -> str:
    """The text of the page's section `## title`, up to the next `## `."""
    text = PAGE.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert match, f"docs/architecture.md has no section '## {title}'"
    return match.group(1)


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the first markdown table in `text`, as lists of cells."""
    rows = [line for line in text.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip().strip("|").split("|")] for row in rows[2:]]


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


@dataclass
class Layers:
    holds: dict[str, list[str]]  # layer -> the packages and modules it holds
    allowed: dict[str, set[str]]  # layer -> the layers it may import (its own always)
    types_only: dict[str, set[str]]  # layer -> layers it may import under `if TYPE_CHECKING:` only
    exceptions: dict[str, set[str]]  # module -> the further layers it alone may import

    def layer_of(self, module: str) -> str | None:
        """The layer of the most specific package or module in a `holds` cell covering `module`."""
        best: tuple[int, str] | None = None
        for layer, names in self.holds.items():
            for name in names:
                if module == name or module.startswith(name + "."):
                    if name == PACKAGE and module != PACKAGE:
                        continue  # `aebench` holds the package's own __init__ only; root modules are listed
                    if best is None or len(name) > best[0]:
                        best = (len(name), layer)
        return best[1] if best else None


def read_layers() -> Layers:
    holds: dict[str, list[str]] = {}
    allowed: dict[str, set[str]] = {}
    types_only: dict[str, set[str]] = {}
    for layer, cell, may in (row[:3] for row in table_rows(section("Layers"))):
        holds[layer] = ticked(cell)
        allowed[layer], types_only[layer] = {layer}, set()
        for word in (w.strip() for w in may.split(",") if w.strip() and w.strip() != "-"):
            if word.endswith("(types only)"):
                types_only[layer].add(word.removesuffix("(types only)").strip())
            else:
                allowed[layer].add(word)
    exceptions: dict[str, set[str]] = {}
    for module_cell, layers_cell, *_ in table_rows(section("Layer exceptions")):
        (module,) = ticked(module_cell)
        exceptions[module] = {w.strip() for w in layers_cell.split(",") if w.strip()}
    for layer, targets in [*allowed.items(), *types_only.items(), *((m, t) for m, t in exceptions.items())]:
        unknown = targets - set(holds)
        assert not unknown, f"docs/architecture.md: {layer} may import {sorted(unknown)}, which is no layer"
    return Layers(holds, allowed, types_only, exceptions)


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the module imported (the longest existing prefix of what the statement names)
    line: int
    type_only: bool


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(name: str, file: Path, modules: dict[str, Path]) -> list[Import]:
    """Every import of an aebench module in `file`, wherever it stands (functions, classes, try blocks)."""
    tree = ast.parse(file.read_text(encoding="utf-8"))
    is_package = file.name == "__init__.py"
    found: list[Import] = []

    def resolve(dotted: str) -> str:
        while dotted not in modules and "." in dotted:
            dotted = dotted.rsplit(".", 1)[0]
        return dotted

    def visit(node: ast.AST, type_only: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, type_only)
            return
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = name.split(".") if is_package else name.split(".")[:-1]
                base = ".".join(here[:len(here) - node.level + 1] + ([node.module] if node.module else []))
            # `from aebench.run import cells` imports the submodule aebench.run.cells
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        for target in dict.fromkeys(targets):  # once per statement and module
            if target == PACKAGE or target.startswith(PACKAGE + "."):
                found.append(Import(name, resolve(target), node.lineno, type_only))
        for child in ast.iter_child_nodes(node):
            visit(child, type_only)

    visit(tree, False)
    return found


def test_every_module_belongs_to_a_layer():
    layers = read_layers()
    homeless = [name for name in package_modules() if layers.layer_of(name) is None]
    assert not homeless, (f"docs/architecture.md (## Layers) puts these modules in no layer: {homeless}; "
                          f"add each to the `holds` cell of its layer")


def test_every_import_follows_the_layer_table():
    layers = read_layers()
    modules = package_modules()
    wrong = []
    for name, file in sorted(modules.items()):
        source = layers.layer_of(name)
        if source is None:
            continue  # reported by test_every_module_belongs_to_a_layer
        for imp in imports_of(name, file, modules):
            target = layers.layer_of(imp.target)
            if target is None or target in layers.allowed[source] or target in layers.exceptions.get(name, set()):
                continue
            if imp.type_only and target in layers.types_only[source]:
                continue
            wrong.append(f"{name}:{imp.line} ({source}) imports {imp.target} ({target})"
                         + (" under TYPE_CHECKING" if imp.type_only else ""))
    assert not wrong, ("imports that docs/architecture.md (## Layers) does not allow; move the code to the layer "
                       "it belongs to, pass what it needs in, or change the table with a reason:\n"
                       + "\n".join(wrong))


def test_built_in_plugins_are_imported_by_their_own_package_only():
    """The pipeline reaches built-in plugins through the registries (aebench.plugins loads them by name), as it
    reaches an installed plugin: a core module that imports one would work with it only."""
    import aebench.plugins

    layers = read_layers()
    modules = package_modules()
    builtin = set(aebench.plugins.DEFAULT_PLUGINS)
    wrong = []
    for name, file in sorted(modules.items()):
        for imp in imports_of(name, file, modules):
            if imp.target in builtin and layers.layer_of(imp.target) != layers.layer_of(name):
                wrong.append(f"{name}:{imp.line} imports the built-in plugin {imp.target}")
    assert not wrong, "\n".join(wrong)


def test_the_layer_check_sees_lazy_and_type_only_imports(tmp_path):
    """The scanner itself: an import inside a function counts, one under TYPE_CHECKING is marked."""
    file = tmp_path / "probe.py"
    file.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from aebench.stats import LatentStats\n"
                    "def f():\n    from aebench.run import cells\n    import aebench.reports.figures as fig\n",
                    encoding="utf-8")
    modules = package_modules()
    found = imports_of("aebench.maths.probe", file, modules)
    assert [(i.target, i.type_only) for i in found] == [
        ("aebench.stats", True), ("aebench.run.cells", False), ("aebench.reports.figures", False)]
    layers = read_layers()
    assert layers.layer_of("aebench.reports.figures") == "reports"
    assert "reports" not in layers.allowed["maths"]


def test_the_architecture_page_names_every_module():
    """Each module appears, in backticks, in its package's row of the layout table (## Where code goes)."""
    rows = {}
    for row in table_rows(section("Where code goes")):
        names = ticked(row[0])
        if names and names[0].startswith(PACKAGE):
            rows[names[0]] = " | ".join(row)
    missing = []
    for name in sorted(package_modules()):
        if name == PACKAGE or name in rows:
            continue  # the package itself, or a subpackage with its own row
        package, short = name.rsplit(".", 1)
        if package not in rows or f"`{short}`" not in rows[package]:
            missing.append(name)
    assert not missing, (f"docs/architecture.md (## Where code goes) does not name these modules in their "
                         f"package's row: {missing}")
