"""Render the configuration reference (docs/configuration.md) from the Settings model itself,
so the documented names, defaults and descriptions can never drift from the code."""

from __future__ import annotations

import json

from pydantic import BaseModel

from spaceport.settings import Settings

HEADER = """# Configuration reference

Every setting is an environment variable `SPACEPORT_<NAME>` (upper case), or a key in the YAML
file named by `SPACEPORT_CONFIG`; environment variables win. Lists and mappings are given as
JSON in the environment (e.g. `SPACEPORT_FLAVORS='{"cpu-tiny": {"cpus": 0.5, "memory": "256m"}}'`).
This page is generated: `python -m spaceport.config_reference > docs/configuration.md`.

| variable | default | what |
| --- | --- | --- |
"""


def render() -> str:
    rows = []
    for name, field in Settings.model_fields.items():
        if name == "build_ca_bundle":
            default = "(computed)"
        elif field.default_factory is not None:
            made = field.default_factory()  # type: ignore[call-arg]
            if isinstance(made, BaseModel):  # a nested model: what is set of it
                made = made.model_dump(exclude_none=True)
            default = json.dumps(made, default=str) if made else "empty"
        else:
            default = json.dumps(field.default, default=str)
        desc = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `SPACEPORT_{name.upper()}` | `{default}` | {desc} |")
    return HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(render(), end="")
