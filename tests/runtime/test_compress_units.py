"""When the compressed tier must not squeeze (engine/memory_squeeze.py), and reading the node's
swaps (engine/zram.py): pure logic, no container."""

from __future__ import annotations

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
