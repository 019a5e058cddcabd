"""The house rules (docs/architecture.md): layers as folders, what each may import, sizes."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "import_pipeline"
MODULES = sorted(PACKAGE.rglob("*.py"))

#: What a layer must never import: the domain is pure, the data path and the store know
#: nothing of Dagster, the landing zone nothing of the store.
FORBIDDEN = {
    "domain": {"dagster", "duckdb", "polars", "fsspec", "import_pipeline.store",
               "import_pipeline.pipeline", "import_pipeline.landing", "import_pipeline.defs",
               "import_pipeline.detection"},
    "pipeline": {"dagster", "import_pipeline.defs", "import_pipeline.cli",
                 "import_pipeline.detection"},
    "detection": {"dagster", "import_pipeline.defs", "import_pipeline.cli",
                  "import_pipeline.pipeline", "import_pipeline.landing"},
    "store": {"dagster", "polars.io", "import_pipeline.defs", "import_pipeline.pipeline",
              "import_pipeline.detection",
              "import_pipeline.landing", "import_pipeline.cli"},
    "formats": {"dagster", "duckdb", "polars", "fsspec", "import_pipeline.store",
                "import_pipeline.pipeline", "import_pipeline.landing", "import_pipeline.defs",
                "import_pipeline.detection", "import_pipeline.cli"},
    "landing": {"dagster", "duckdb", "import_pipeline.store", "import_pipeline.pipeline",
                "import_pipeline.defs"},
    "repair": {"dagster", "duckdb", "polars", "import_pipeline.store", "import_pipeline.pipeline",
               "import_pipeline.defs", "import_pipeline.detection", "import_pipeline.cli"},
}  # fmt: skip
MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_it_must_not(layer: str) -> None:
    offending = {
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in (PACKAGE / layer).rglob("*.py")
        for name in _imports(path)
        if any(name == banned or name.startswith(banned + ".") for banned in FORBIDDEN[layer])
    }
    assert not offending


def test_the_package_top_holds_at_most_six_modules() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= 6, top
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()} == {
        "domain", "landing", "formats", "pipeline", "detection", "store", "defs", "daemon_site",
        "cli", "repair",
    }  # fmt: skip


def test_what_every_process_loads_first_needs_only_the_standard_library() -> None:
    """`daemon_site` runs at the start of every process `dev` starts, the webserver's too."""
    outside = {
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in (PACKAGE / "daemon_site").rglob("*.py")
        for name in _imports(path)
        if name.split(".")[0] not in sys.stdlib_module_names
        and not name.startswith("import_pipeline.daemon_site")
    }
    assert not outside


def test_no_module_or_function_is_too_long() -> None:
    long_modules = {
        str(p.relative_to(PACKAGE)): n
        for p in MODULES
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    long_functions = {
        f"{p.relative_to(PACKAGE)}:{node.lineno} {node.name}": size
        for p in MODULES
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (size := (node.end_lineno or node.lineno) - node.lineno + 1) > MAX_FUNCTION_LINES
    }
    assert not long_modules and not long_functions, (long_modules, long_functions)


def test_only_settings_reads_the_environment() -> None:
    """The CLI may set variables for the processes it starts; only settings.py reads them."""
    writes = re.compile(r"os\.environ(\[[^\]]+\] = |\.setdefault\()")
    readers = sorted(
        str(p.relative_to(PACKAGE))
        for p in MODULES
        if "getenv" in (text := p.read_text()) or writes.sub("", text).count("os.environ")
    )
    assert readers == ["settings.py"]
