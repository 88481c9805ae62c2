"""Dockerfile rendering per SDK: layer order, uv cache, pins, system packages, GPU images."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from spaceport.front_matter import load_config
from spaceport.settings import Settings
from spaceport_builder.build_job import uses_gpu
from spaceport_builder.image_build import index_build_args
from spaceport_builder.packs import BuildContext, pack_for
from tests.conftest import EXAMPLES

TORCH_INDEX = "https://download.pytorch.org/whl/cu128"


def render(repo: Path, base: str = "spaceport/python:3.11", **ctx: object) -> str:
    pack = pack_for(BuildContext(repo_dir=repo, config=load_config(repo), base_image=base, **ctx))  # type: ignore[arg-type]
    return pack.render()


def example(tmp_path: Path, name: str) -> Path:
    repo = tmp_path / name
    shutil.copytree(EXAMPLES / name, repo)
    return repo


def test_gradio_layers_put_dependencies_before_code(tmp_path: Path) -> None:
    text = render(example(tmp_path, "gradio-hello"))
    lines = text.splitlines()
    install = next(i for i, ln in enumerate(lines) if "-r /tmp/requirements.txt" in ln)
    code = lines.index("COPY --chown=1000:1000 . /home/user/app")
    assert install < code
    assert "--mount=type=cache,id=spaceport-uv,target=/home/user/.cache/uv" in lines[install]
    assert '"gradio" -r /tmp/requirements.txt' in lines[install]
    # The final image starts from the compiled or the plain dependency stage.
    assert lines[0] == "ARG SPACEPORT_DEPS=deps-compiled"
    assert "FROM ${SPACEPORT_DEPS}" in lines
    # Below them, the SDK alone (shared by every Space with this SDK version), then its
    # bytecode; the dependency stage starts from one of the two.
    assert lines[1] == "ARG SPACEPORT_SDK=sdk-compiled"
    sdk = next(i for i, ln in enumerate(lines) if ln.endswith(" AS sdk"))
    assert lines[sdk + 5].endswith('uv pip install "gradio"'), lines
    assert "FROM sdk AS sdk-compiled" in lines
    assert lines.index("FROM ${SPACEPORT_SDK} AS deps") > sdk
    assert lines[-1] == 'CMD ["python", "app.py"]'


def test_sdk_version_pins_the_sdk_and_system_packages_come_first(tmp_path: Path) -> None:
    repo = example(tmp_path, "gradio-hello")
    readme = (
        (repo / "README.md")
        .read_text()
        .replace("sdk: gradio", 'sdk: gradio\nsdk_version: "5.49.1"')
    )
    (repo / "README.md").write_text(readme)
    (repo / "packages.txt").write_text("ffmpeg\n# a comment\nlibsndfile1\n")
    (repo / "pre-requirements.txt").write_text("pip>=24\n")
    text = render(repo)
    assert '"gradio==5.49.1"' in text
    apt = text.index('apt-get install -y --no-install-recommends "ffmpeg" "libsndfile1"')
    pre = text.index("uv pip install -r /tmp/pre-requirements.txt")
    req = text.index('uv pip install "gradio==5.49.1" -r /tmp/requirements.txt')
    assert apt < pre < req < text.index("COPY --chown=1000:1000 . /home/user/app")
    # pre-requirements come before everything, the SDK included: no shared SDK stage.
    assert " AS sdk" not in text and "SPACEPORT_SDK" not in text
    assert text.index("USER root") < apt < text.index("USER user")


def test_streamlit_runs_on_its_port(tmp_path: Path) -> None:
    text = render(example(tmp_path, "streamlit-hello"))
    assert '"streamlit" -r /tmp/requirements.txt' in text
    assert 'CMD ["streamlit", "run", "app.py", "--server.port", "8501"' in text
    assert "EXPOSE 8501" in text


def test_static_serves_files_as_they_are(tmp_path: Path) -> None:
    text = render(example(tmp_path, "static-site"))
    assert "pip install" not in text and "SPACEPORT_DEPS" not in text
    assert '"7860", "index.html"]' in text


def test_docker_sdk_uses_the_repo_dockerfile(tmp_path: Path) -> None:
    repo = example(tmp_path, "docker-fastapi")
    pack = pack_for(BuildContext(repo_dir=repo, config=load_config(repo), base_image="x"))
    assert pack.uses_repo_dockerfile()
    assert pack.render() == (repo / "Dockerfile").read_text()


def test_pip_baseline_has_no_cache(tmp_path: Path) -> None:
    text = render(example(tmp_path, "gradio-hello"), installer="pip", cache=False)
    assert 'RUN pip install --no-cache-dir "gradio" -r /tmp/requirements.txt' in text
    assert "--mount=type=cache" not in text


def test_gpu_hardware_picks_the_cuda_image_and_the_torch_index(tmp_path: Path) -> None:
    """gpu-torch's rendered Dockerfile (its CUDA image is built by `make test-gpu` only)."""
    settings = Settings(data=tmp_path / "data")
    assert uses_gpu(settings, "t4-small") and uses_gpu(settings, "h100")
    assert not uses_gpu(settings, "cpu-basic")
    repo = example(tmp_path, "gpu-torch")
    text = render(repo, "spaceport/python-cuda:3.11", gpu=True, torch_index_url=TORCH_INDEX)
    assert "FROM spaceport/python-cuda:3.11 AS sdk" in text
    assert (
        f'uv pip install --extra-index-url {TORCH_INDEX} "gradio" -r /tmp/requirements.txt' in text
    )
    # Without torch in the requirements, the CUDA index is not consulted.
    nvml = example(tmp_path, "gradio-hello")
    assert TORCH_INDEX not in render(
        nvml, "spaceport/python-cuda:3.11", gpu=True, torch_index_url=TORCH_INDEX
    )
    # The GPU base image's default extra index is replaced by the operator's (empty here).
    assert index_build_args(settings, replace_extra=True)["UV_EXTRA_INDEX_URL"] == ""


@pytest.mark.parametrize("line", ["torch", "torch==2.5.1", "torchvision>=0.20", "Torch[opt]"])
def test_torch_requirements_are_recognised(tmp_path: Path, line: str) -> None:
    repo = example(tmp_path, "gpu-torch")
    (repo / "requirements.txt").write_text(f"numpy\n{line}\n")
    assert TORCH_INDEX in render(repo, gpu=True, torch_index_url=TORCH_INDEX)


def test_operator_index_settings_become_build_args(tmp_path: Path) -> None:
    settings = Settings(
        data=tmp_path / "d",
        build_index_url="https://pypi.corp.example/simple",
        build_extra_index_urls=["https://a.example/simple", "https://b.example/simple"],
    )
    assert index_build_args(settings) == {
        "UV_INDEX_URL": "https://pypi.corp.example/simple",
        "PIP_INDEX_URL": "https://pypi.corp.example/simple",
        "UV_EXTRA_INDEX_URL": "https://a.example/simple https://b.example/simple",
        "PIP_EXTRA_INDEX_URL": "https://a.example/simple https://b.example/simple",
    }
    assert index_build_args(Settings(data=tmp_path / "e")) == {}
