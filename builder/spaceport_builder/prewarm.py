"""Which modules a standby container may import before the app's own code runs.

A standby (platform's lifecycle/standby.py) imports the SDK first and runs the app later, in the
same interpreter. That behaves like `python app.py` only when nothing the app does before its
SDK import could change what that import does: an environment variable it sets, a `sys.path`
change, a module that must be imported first (Hugging Face's `spaces` before torch). So a
Gradio app qualifies only when the top-level statements before its first `gradio` import are
docstrings, `from __future__` imports and imports of the standard library. Streamlit runs the
app file itself, later, in its script thread: importing Streamlit's own modules first changes
nothing for it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from spaceport.front_matter import SpaceConfig

GRADIO = ("gradio",)
STREAMLIT = ("streamlit", "streamlit.web.cli", "streamlit.web.bootstrap")


def modules(config: SpaceConfig, repo_dir: Path) -> list[str]:
    """The modules a standby of this app may import ahead of it ([]: no standby)."""
    if config.sdk == "streamlit":
        return list(STREAMLIT)
    if config.sdk != "gradio":
        return []
    try:
        tree = ast.parse((repo_dir / (config.app_file or "app.py")).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return []
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring
        names = _imported(node)
        if names is None:
            return []  # code before the SDK import
        if "gradio" in names:
            return list(GRADIO)
        if names != ["__future__"] and not all(n in sys.stdlib_module_names for n in names):
            return []
    return []


def _imported(node: ast.stmt) -> list[str] | None:
    """Top-level package names an absolute import statement imports; None: not one."""
    if isinstance(node, ast.Import):
        return [alias.name.split(".")[0] for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module.split(".")[0]]
    return None
