"""The layering of the code, checked on every run: a new import that points the wrong way or
closes a cycle fails here (and in `make lint`) with the modules named.

The contracts live in pyproject.toml (`[tool.importlinter]`); docs/architecture.md draws them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint is not None, "import-linter is not installed (pip install -e '.[dev]')"
    out = subprocess.run(
        [lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert "BROKEN" not in out.stdout and "KEPT" in out.stdout, out.stdout


def test_no_package_imports_itself_back() -> None:
    """No cycle between the packages of either source root (`spaceport.api`,
    `spaceport.engine`, ..., `spaceport_builder`): each pair imports one way at most."""
    import grimp

    graph = grimp.build_graph("spaceport", "spaceport_builder")
    top = sorted(m for m in graph.modules if m.count(".") == 1 and m.startswith("spaceport."))
    packages = [*top, "spaceport_builder"]
    both_ways = []
    for i, a in enumerate(packages):
        for b in packages[i + 1 :]:
            if graph.chain_exists(a, b, as_packages=True) and graph.chain_exists(
                b, a, as_packages=True
            ):
                ab = graph.find_shortest_chain(a, b, as_packages=True)
                ba = graph.find_shortest_chain(b, a, as_packages=True)
                both_ways.append(f"{a} <-> {b}: {' -> '.join(ab or ())} | {' -> '.join(ba or ())}")
    assert both_ways == [], "package cycles:\n" + "\n".join(both_ways)


def _exists(module: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def test_every_internal_import_names_a_module_that_exists() -> None:
    """mypy is told to ignore missing imports (third-party stubs), so a moved module must be
    caught here: every `spaceport*` module imported anywhere in the sources exists."""
    import ast

    missing = []
    for root in ("platform", "builder"):
        for path in sorted((ROOT / root).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names: list[str] = []
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                for name in names:
                    if name.split(".")[0] in ("spaceport", "spaceport_builder") and not _exists(
                        name
                    ):
                        missing.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert missing == [], "imports of modules that do not exist:\n" + "\n".join(missing)
