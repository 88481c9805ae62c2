"""GPUs against a FAKE inventory: test machines have no GPU, so the node runs with two fake
devices (tests/runtime/fake_gpus.py: stand-in device nodes made with mknod, a fake driver
folder). What is real: the allocator, the queue, and the container spec the engine records
and runs with. The check on a real GPU is docs/gpu.md.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import docker
import pytest
from huggingface_hub import SpaceHardware

from tests.conftest import Node, need
from tests.runtime.fake_gpus import FAKE_UUIDS
from tests.runtime.helpers import containers, echo_space, hf, settled, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fake_gpus(node: Node) -> list[Any]:
    whole = [g for g in node.settings.gpus if g.uuid in FAKE_UUIDS]  # not the shared pool's
    need(len(whole) == 2, "the fake GPU inventory (device nodes need root)")
    return whole


@pytest.fixture(scope="module")
def cleanup(node: Node) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for space_id in made:
        hf(node).delete_repo(space_id, repo_type="space", missing_ok=True)


def gpus_api(node: Node) -> dict[str, str | None]:
    with node.api() as c:
        return {g["uuid"]: g["space"] for g in c.get("/api/v1/gpus").json()}


def test_gpu_spaces_get_their_own_devices_and_wait_in_line(
    node: Node, fake_gpus: list[Any], cleanup: list[str]
) -> None:
    a = echo_space(node, "gpu-a", hardware="t4-small")
    b = echo_space(node, "gpu-b", hardware="t4-small")
    cleanup += [a, b]
    holders = gpus_api(node)
    assert {holders[FAKE_UUIDS[0]], holders[FAKE_UUIDS[1]]} == {a, b}

    # The container spec the engine recorded: the device, the driver folder read-only, the env.
    by_uuid = {}
    for space_id in (a, b):
        c = settled(node, space_id)
        env = dict(e.split("=", 1) for e in c.attrs["Config"]["Env"])
        by_uuid[env["NVIDIA_VISIBLE_DEVICES"]] = c
        devices = {d["PathInContainer"]: d for d in c.attrs["HostConfig"]["Devices"]}
        assert set(devices) == {
            "/dev/nvidia0" if holders[FAKE_UUIDS[0]] == space_id else "/dev/nvidia1",
            "/dev/nvidiactl",
            "/dev/nvidia-uvm",
        }
        assert all(d["CgroupPermissions"] == "rwm" for d in devices.values())
        mounts = {m["Destination"]: m for m in c.attrs["Mounts"]}
        assert mounts["/usr/local/nvidia/lib64"]["RW"] is False
        assert env["LD_LIBRARY_PATH"] == "/usr/local/nvidia/lib64"
        out = c.exec_run(["sh", "-c", "ls /dev/nvidia* && ls /usr/local/nvidia/lib64"]).output
        assert b"libcuda.so.1" in out
    assert set(by_uuid) == set(FAKE_UUIDS)  # never one device for two Spaces

    # A third GPU Space waits, visibly, until a device is free.
    c_id = node.create_space(f"gpu-c-{a.split('-')[-1]}", sdk="docker", hardware="t4-small")
    cleanup.append(c_id)
    from tests.runtime.helpers import ECHO

    assert node.push(ECHO, c_id).returncode == 0
    rt = wait_for(
        lambda: (
            "waiting for a free GPU" in ((r := node.runtime(c_id)).get("errorMessage") or "") and r
        ),
        120,
    )
    assert rt["stage"] == "APP_STARTING"
    assert "1 GPU" in rt["errorMessage"] or "needs 1" in rt["errorMessage"]
    assert containers(c_id, all=True) == []

    hf(node).pause_space(a)  # frees its device: the waiting Space gets it
    node.wait_stage(c_id, {"RUNNING"}, timeout=60)
    holders = gpus_api(node)
    assert a not in holders.values() and c_id in holders.values() and b in holders.values()

    # Back to CPU: the device is given back.
    hf(node).request_space_hardware(b, SpaceHardware("cpu-basic"))
    wait_for(lambda: b not in gpus_api(node).values(), 60)
    settled(node, b)

    # More GPUs than the node has: a clear, permanent error.
    hf(node).request_space_hardware(b, SpaceHardware("a10g-largex2"))  # 2 GPUs, 1 free
    rt = wait_for(
        lambda: (
            "waiting for a free GPU" in ((r := node.runtime(b)).get("errorMessage") or "") and r
        ),
        60,
    )
    with node.api() as c:  # h100x8: a Spaceport flavor (8 GPUs), not in huggingface_hub's enum
        assert c.post(f"/api/spaces/{b}/hardware", json={"flavor": "h100x8"}).status_code == 200
    rt = wait_for(lambda: (r := node.runtime(b))["stage"] == "RUNTIME_ERROR" and r, 60)
    assert "this node has 2" in rt["errorMessage"]
    assert "choose another hardware flavor" in rt["errorMessage"]
    # Permanent: no automatic retry flips it back to starting; it waits for the owner.
    time.sleep(4)
    assert node.runtime(b)["stage"] == "RUNTIME_ERROR"


def test_allocator_never_books_a_device_twice_under_concurrency(
    node: Node, fake_gpus: list[Any]
) -> None:
    from spaceport.db.models import Deployment, Space
    from spaceport.db.session import session_scope
    from spaceport.lifecycle import gpu_allocator as allocator

    with session_scope() as session:
        space = Space(owner="admin", name=f"alloc-{id(session)}", card_data={})
        session.add(space)
        session.flush()
        deps = [Deployment(space_id=space.id, image="none", status="starting") for _ in range(8)]
        session.add_all(deps)
        session.flush()
        space_pk, dep_ids = space.id, [d.id for d in deps]
    got: dict[int, list[str]] = {}
    refused: list[str] = []

    def take(dep_id: int) -> None:
        try:
            got[dep_id] = [g.uuid for g in allocator.allocate(node.settings, space_pk, dep_id, 1)]
        except allocator.GpuUnavailable as exc:
            refused.append(str(exc))

    free_before = len([h for h in gpus_api(node).values() if h is None])
    threads = [threading.Thread(target=take, args=(d,)) for d in dep_ids]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        booked = [u for uuids in got.values() for u in uuids]
        assert len(booked) == len(set(booked)) == free_before  # each free device once
        assert len(refused) == 8 - free_before
    finally:
        with session_scope() as session:
            session.delete(session.get(Space, space_pk))  # cascades to its bookings


@pytest.mark.parametrize("mode", ["device-requests", "cdi", "devices"])
def test_each_gpu_mode_records_the_right_container_spec(node: Node, mode: str) -> None:
    from spaceport.engine.base import ContainerSpec
    from spaceport.engine.docker_backend import DockerBackend
    from spaceport.engine.gpus.inventory import Gpu

    settings = node.settings.model_copy(update={"gpu_mode": mode})
    fake = Gpu(1, FAKE_UUIDS[1], "Fake GPU (tests)", node.settings.gpus[1].device)
    backend = DockerBackend(settings)
    spec = ContainerSpec(
        space_id="admin/gpu-spec",
        deployment_id=0,
        image=f"{settings.base_image_repo}:{settings.default_python}",
        name=f"spaceport-gpu-spec-{mode}-{settings.instance}",
        port=7860,
        gpus=[fake],
    )
    state = backend.create(spec)  # not started: the first two need NVIDIA's runtime
    try:
        attrs = docker.from_env().api.inspect_container(state.id)
        env = dict(e.split("=", 1) for e in attrs["Config"]["Env"])
        assert env["NVIDIA_VISIBLE_DEVICES"] == FAKE_UUIDS[1]
        host = attrs["HostConfig"]
        if mode == "devices":
            assert host["Devices"][0]["PathInContainer"] == "/dev/nvidia1"
            assert f"{settings.gpu_driver_dir}:/usr/local/nvidia/lib64:ro" in host["Binds"]
            assert not host.get("DeviceRequests")
        else:
            [request] = host["DeviceRequests"]
            if mode == "cdi":
                assert request["Driver"] == "cdi"
                assert request["DeviceIDs"] == ["nvidia.com/gpu=1"]
            else:
                assert request["Driver"] == "nvidia"
                assert request["DeviceIDs"] == [FAKE_UUIDS[1]]
                assert request["Capabilities"] == [["gpu"]]
            assert not host.get("Devices")
    finally:
        backend.stop(state.id, timeout=0)
