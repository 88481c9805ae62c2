"""When the compressed tier must not squeeze (engine/memory_squeeze.py), and reading the node's
swaps (engine/zram.py): pure logic, no container."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from spaceport.engine import memory_squeeze, zram

MiB = 1024**2


def test_squeezes_only_what_is_worth_it_and_fits_in_zram() -> None:
    assert memory_squeeze._wanted(100 * MiB, 4096 * MiB) == 100 * MiB - memory_squeeze.KEEP
    with pytest.raises(memory_squeeze.SqueezeSkipped, match="nothing to gain"):
        memory_squeeze._wanted(15 * MiB, 4096 * MiB)
    with pytest.raises(memory_squeeze.SqueezeSkipped, match="zram nearly full"):
        memory_squeeze._wanted(100 * MiB, memory_squeeze.ZRAM_MARGIN + 50 * MiB)


def test_reads_zram_swaps_among_the_nodes_swaps(tmp_path: Path) -> None:
    swaps = tmp_path / "swaps"
    swaps.write_text(
        "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
        "/dev/zram0                              partition\t25165820\t1024\t\t100\n"
        "/swapfile                               file\t\t1048572\t\t0\t\t-2\n"
    )
    assert zram._swaps(swaps) == [
        ("/dev/zram0", 25165820 * 1024, 1024 * 1024),
        ("/swapfile", 1048572 * 1024, 0),
    ]
    assert zram._swaps(tmp_path / "missing") == []


def test_the_helpers_entry_point_says_why_it_skipped_as_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a node's helper prints (engine/node_helper.py reads its last line): a skip is an
    answer, not a failure; the node's cgroup tree is where the helper mounted it."""
    import json

    swaps = tmp_path / "swaps"
    swaps.write_text("Filename Type Size Used Priority\n/dev/zram0 partition 4194304 0 100\n")
    read = zram._swaps
    monkeypatch.setattr(zram, "_swaps", lambda: read(swaps))  # a zram swap, whatever the host

    def said(*argv: str) -> dict[str, object]:
        assert memory_squeeze.main(list(argv)) == 0
        return dict(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))

    assert said("999999999", str(256 * MiB)) == {"skipped": "process 999999999 is gone"}
    # This process's cgroup, looked for in the tree at the root it was given:
    skipped = str(said(str(os.getpid()), str(256 * MiB), str(tmp_path / "cgroup"))["skipped"])
    assert skipped.startswith(str(tmp_path / "cgroup")) and "not visible here" in skipped
    # A pid that is not (or no longer) the container's: its cgroup is not squeezed.
    other = said(str(os.getpid()), str(256 * MiB), str(tmp_path / "cgroup"), "f" * 64)
    assert "is no longer the container's" in str(other["skipped"]), other


def test_the_helper_carries_the_modules_it_runs_and_nothing_else() -> None:
    import io
    import tarfile

    from spaceport.engine import node_helper

    with tarfile.open(fileobj=io.BytesIO(node_helper._package(["memory_squeeze", "zram"]))) as t:
        files = {m.name: t.extractfile(m).read() for m in t if m.isfile()}  # type: ignore[union-attr]
    root = node_helper.ROOT.strip("/")
    assert sorted(files) == [
        f"{root}/spaceport/__init__.py",
        f"{root}/spaceport/engine/__init__.py",
        f"{root}/spaceport/engine/memory_squeeze.py",
        f"{root}/spaceport/engine/zram.py",
    ]
    assert files[f"{root}/spaceport/__init__.py"] == b""
    assert b"def main(" in files[f"{root}/spaceport/engine/memory_squeeze.py"]


class FakeAPI:
    """The engine calls a node helper makes, recorded; `status`, `stdout`, `stderr` and a
    hanging `wait` are what the helper does."""

    def __init__(self, status: int = 0, stdout: bytes = b"", stderr: bytes = b"") -> None:
        self.status, self.stdout, self.stderr = status, stdout, stderr
        self.hangs = False
        self.calls: list[tuple[str, object]] = []

    def create_host_config(self, **kw: object) -> dict[str, object]:
        return kw

    def create_container(self, image: str, **kw: object) -> dict[str, str]:
        self.calls.append(("create", image))
        return {"Id": "helper1"}

    def containers(self, **kw: object) -> list[dict[str, str]]:
        self.calls.append(("list", kw["filters"]))
        return [{"Id": "old-helper"}]

    def put_archive(self, cid: str, path: str, data: bytes) -> None:
        self.calls.append(("put", path))

    def start(self, cid: str) -> None:
        self.calls.append(("start", cid))

    def wait(self, cid: str, timeout: int) -> dict[str, int]:
        if self.hangs:
            raise TimeoutError("read timed out")  # what requests raises: an OSError
        return {"StatusCode": self.status}

    def stop(self, cid: str, timeout: int) -> None:
        self.calls.append(("stop", timeout))

    def logs(self, cid: str, stdout: bool, stderr: bool) -> bytes:
        return self.stdout if stdout else self.stderr

    def remove_container(self, cid: str, force: bool) -> None:
        self.calls.append(("remove", cid))


class FakeClient:
    def __init__(self, api: FakeAPI, image_id: str = "sha256:good") -> None:
        from types import SimpleNamespace

        self.api = api
        self.images = SimpleNamespace(get=lambda name: SimpleNamespace(id=image_id))


def run_on(api: FakeAPI, image_id: str = "sha256:good") -> dict[str, object]:
    from spaceport.engine import node_helper

    client = FakeClient(api, image_id)
    return node_helper.run_module(client, "reg/h:1", "sha256:good", "zram", [], [])  # type: ignore[arg-type]


def test_a_node_helper_answers_and_is_always_removed() -> None:
    """Run from the published image's id (not its tag), its last line read as JSON, and
    removed whatever happened, with helpers an earlier control plane left."""
    from spaceport.engine.base import RuntimeBackendError

    ok = FakeAPI(stdout=b'warming up\n{"devices": []}\n')
    assert run_on(ok) == {"devices": []}
    assert ("create", "sha256:good") in ok.calls
    assert ("remove", "old-helper") in ok.calls and ok.calls[-1] == ("remove", "helper1")

    failed = FakeAPI(status=1, stderr=b"Traceback ...\nPermissionError: [Errno 13] denied\n")
    with pytest.raises(RuntimeBackendError, match="PermissionError: \\[Errno 13\\] denied"):
        run_on(failed)
    assert failed.calls[-1] == ("remove", "helper1")

    garbled = FakeAPI(stdout=b"not json\n")
    with pytest.raises(RuntimeBackendError, match="said 'not json"):
        run_on(garbled)
    assert garbled.calls[-1] == ("remove", "helper1")

    hung = FakeAPI()
    hung.hangs = True
    with pytest.raises(RuntimeBackendError, match="did not finish"):
        run_on(hung)
    from spaceport.engine import node_helper

    # told to stop first (its `finally` puts the limit back), then removed
    assert hung.calls[-2:] == [("stop", node_helper.STOP_S), ("remove", "helper1")]


def test_a_node_helper_runs_only_from_the_published_image(tmp_path: Path) -> None:
    from spaceport.engine import node_helper
    from spaceport.engine.base import RuntimeBackendError
    from spaceport.settings import Settings

    moved = FakeAPI()
    with pytest.raises(RuntimeBackendError, match="not the image `spaceport up` published"):
        run_on(moved, image_id="sha256:someone-elses")
    assert not [c for c in moved.calls if c[0] == "create"]

    with pytest.raises(RuntimeBackendError, match="SPACEPORT_REGISTRY"):
        node_helper.published(Settings(data=tmp_path, runtime="swarm"))
    settings = Settings(data=tmp_path, runtime="swarm", registry="10.0.0.5:5000")
    with pytest.raises(RuntimeBackendError, match="run `spaceport up`"):
        node_helper.published(settings)
    node_helper.note_published(settings, "sha256:abc")
    assert node_helper.published(settings) == (
        "10.0.0.5:5000/spaceport/node-helper:1",
        "sha256:abc",
    )
