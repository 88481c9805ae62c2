"""GPU Spaces. Here (no GPU): a Space on GPU hardware is built on the CUDA base image and runs
with the node's FAKE GPU inventory (tests/runtime/fake_gpus.py). On a GPU host (`make
test-gpu`, `-m gpu`): gpu-nvml lists the real GPUs and gpu-torch computes on CUDA."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest

from tests.builder.helpers import LogReader, clean_later, head_sha, variant
from tests.conftest import EXAMPLES, PUBLIC_PORT, Node, unique


def gpu_host(request: pytest.FixtureRequest) -> None:
    """Real-GPU tests run where a GPU is: skipped elsewhere, failed if `-m gpu` asked for them."""
    if shutil.which("nvidia-smi") or Path("/dev/nvidia0").exists():
        return
    if "gpu" in (request.config.getoption("-m") or ""):
        pytest.fail("`-m gpu` needs an NVIDIA GPU and its driver (nvidia-smi) on this host")
    pytest.skip("no NVIDIA GPU on this machine: run `make test-gpu` on a GPU host")


@pytest.mark.slow
def test_gpu_hardware_builds_on_the_cuda_base_image(node: Node, tmp_path: Path) -> None:
    """Any SDK on GPU hardware starts from the CUDA image (static here: the quickest build;
    the gradio/torch Dockerfile is checked in test_packs.py)."""
    space_id = node.create_space(unique("cuda"), sdk="static", hardware="t4-small")
    try:
        assert node.push(variant(tmp_path, "static-site"), space_id).returncode == 0
        reader = LogReader(node, space_id).start()
        assert reader.done.wait(180)
        assert (
            "--- Dockerfile (static, base image spaceport/python-cuda:3.11) ---" in reader.lines()
        )
        assert "FROM spaceport/python-cuda:3.11" in reader.lines()
        rt, _ = node.wait_stage(space_id, {"RUNNING"}, sha=head_sha(node, space_id))
        assert rt["hardware"]["current"] == "t4-small"  # with the node's FAKE GPU inventory
        assert "Hello from a static Space" in node.app_get(space_id, "/").text
    finally:
        # Give the (fake) GPU back now: later tests count on the node's GPUs being free.
        from huggingface_hub import HfApi

        HfApi(endpoint=node.url, token=node.token).pause_space(space_id)
        clean_later([space_id])


@pytest.mark.gpu
@pytest.mark.slow
def test_gpu_nvml_lists_the_real_gpus(node: Node, request: pytest.FixtureRequest) -> None:
    gpu_host(request)
    space_id = node.create_space(unique("nvml"), sdk="docker", hardware="t4-small")
    try:
        assert node.push(EXAMPLES / "gpu-nvml", space_id).returncode == 0
        node.wait_stage(space_id, {"RUNNING"}, timeout=300)
        body = node.app_get(space_id, "/").json()
        assert body["gpus"], body
        assert body["gpus"][0]["name"] and body["driver"]
    finally:
        clean_later([space_id])


@pytest.mark.gpu
@pytest.mark.slow
def test_gpu_torch_computes_on_cuda(node: Node, request: pytest.FixtureRequest) -> None:
    """Builds the large CUDA PyTorch image (needs the CUDA PyTorch index reachable)."""
    gpu_host(request)
    space_id = node.create_space(unique("torch"), hardware="t4-small")
    try:
        assert node.push(EXAMPLES / "gpu-torch", space_id).returncode == 0
        node.wait_stage(space_id, {"RUNNING"}, timeout=1800)
        host = {"Host": node.app_host(space_id)}
        base = f"http://127.0.0.1:{PUBLIC_PORT}/gradio_api/call/matmul"
        event = httpx.post(base, json={"data": [512]}, headers=host, timeout=60).json()["event_id"]
        answer = httpx.get(f"{base}/{event}", headers=host, timeout=120).text
        data = [json.loads(ln[5:]) for ln in answer.splitlines() if ln.startswith("data:")]
        assert data[-1][0].startswith("device: cuda:0"), answer
    finally:
        clean_later([space_id])
