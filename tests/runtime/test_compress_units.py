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
