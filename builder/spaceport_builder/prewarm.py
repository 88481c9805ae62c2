"""Which modules a standby container may import before the app's own code runs.

A standby (platform's lifecycle/standby.py) imports them first and runs the app later, in the
same interpreter. That behaves like `python app.py` only when importing them ahead is what the
app would have done first anyway: so they are the third-party imports of the app's leading
block of import statements, in its order, and only when that block imports the SDK. The block
ends at the first other statement (code that may set an environment variable or change
`sys.path` before an import), at a relative import or one of the app's own modules (never
run the app's code early: a standby does not even hold it yet). `import torch` before
`import gradio` is fine; `spaces` (Hugging Face's ZeroGPU package, which must wrap what is
imported after it and talks to the node's GPU broker) gets no standby. Standard-library
modules are left out: importing them earlier changes nothing. Streamlit runs the app file
itself, later, in its script thread: importing Streamlit's own modules first changes nothing.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from spaceport.front_matter import SpaceConfig

GRADIO = ("gradio",)
STREAMLIT = ("streamlit", "streamlit.web.cli", "streamlit.web.bootstrap")
NEVER_AHEAD = {"spaces"}


def modules(config: SpaceConfig, repo_dir: Path) -> list[str]:
    """The modules a standby of this app may import ahead of it, in order ([]: no standby)."""
    if config.sdk == "streamlit":
        return list(STREAMLIT)
    if config.sdk != "gradio":
        return []
    try:
        tree = ast.parse((repo_dir / (config.app_file or "app.py")).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return []
    ahead: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring
        names = _imported(node)
        if names is None or any(_local(name, repo_dir) for name in names):
            break  # code, or the app's own modules: the leading block ends
        for name in names:
            top = name.split(".")[0]
            if top == "__future__" or top in sys.stdlib_module_names or name in ahead:
                continue
            ahead.append(name)
    tops = {name.split(".")[0] for name in ahead}
    if "gradio" not in tops or tops & NEVER_AHEAD:
        return []
    return ahead


def _imported(node: ast.stmt) -> list[str] | None:
    """The modules an absolute import statement imports; None: not one."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module]
    return None


def _local(module: str, repo_dir: Path) -> bool:
    """A module of the app itself (a file or folder of its repository), not of its image."""
    top = module.split(".")[0]
    return (repo_dir / f"{top}.py").is_file() or (repo_dir / top).is_dir()
