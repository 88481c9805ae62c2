"""This node's hardware as people choose it: its GPUs and who holds each, and every flavor with
whether it can be given now (the create form, the Space page, `GET /api/v1/hardware`)."""

from __future__ import annotations

from typing import Any

from spaceport.engine.gpus.shared import pool as shared_pool
from spaceport.lifecycle.gpu_allocator import usage as gpu_usage
from spaceport.lifecycle.hardware import flavor_table, shared_gpu_refusal
from spaceport.settings import Settings


def node_gpus(settings: Settings) -> list[dict[str, Any]]:
    """This node's GPUs (NVML or config) and the Space holding each (from the allocations)."""
    return [
        {"index": u.gpu.index, "uuid": u.gpu.uuid, "name": u.gpu.name, "heldBy": u.space_id}
        for u in gpu_usage(settings)
    ]


def hardware_options(settings: Settings) -> list[dict[str, Any]]:
    """Every flavor with its size and whether this node can give it now (free GPUs)."""
    gpus = node_gpus(settings)
    total = len(gpus)
    free = sum(1 for g in gpus if g["heldBy"] is None)
    out = []
    pool = len(shared_pool(settings))
    for flavor in flavor_table(settings).values():
        available = flavor.gpus <= free
        if flavor.shared_gpu:
            refusal = shared_gpu_refusal(settings, flavor)
            available = refusal is None
            note = refusal or (
                f"shares {pool} GPU{'s' if pool != 1 else ''} with other Spaces, call by call"
            )
        elif flavor.gpus:
            note = f"{free} of {total} GPUs free" if total else "this node has no GPU"
        else:
            note = "always available"
        out.append(
            {
                "name": flavor.name,
                "cpus": flavor.cpus,
                "memory": flavor.memory,
                "gpus": flavor.gpus,
                "gpuKind": flavor.gpu_kind,
                "sharedGpu": flavor.shared_gpu,
                "available": available,
                "note": note,
            }
        )
    return out
