"""The kept archives of images' app directories (engine/image_files.py): read back whole, one
per image and directory, an oversized directory remembered as such and not kept, gone once
the image is."""

from __future__ import annotations

import time
from pathlib import Path

from spaceport.engine import image_files
from spaceport.settings import Settings

APP = "/home/user/app"


def settings(tmp_path: Path) -> Settings:
    return Settings(data=tmp_path)


def test_kept_archives_are_read_back_by_image_and_directory(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert image_files.read(s, "sha256:aaa", APP) is None
    assert not image_files.known(s, "sha256:aaa", APP)
    image_files.keep(s, "sha256:aaa", APP, [b"code ", b"of a"])
    image_files.keep(s, "sha256:bbb", APP, [b"code of b"])
    assert image_files.read(s, "sha256:aaa", APP) == b"code of a"
    assert image_files.read(s, "sha256:bbb", APP) == b"code of b"
    assert image_files.known(s, "sha256:aaa", APP)
    assert image_files.read(s, "sha256:aaa", "/srv") is None
    assert not list(tmp_path.rglob("*.tmp"))


def test_an_oversized_directory_is_not_kept_nor_read_again(tmp_path: Path) -> None:
    s = settings(tmp_path)
    read: list[int] = []

    def chunks():  # type: ignore[no-untyped-def]
        for i in range(100):
            read.append(i)
            yield b"x" * (image_files.MAX_BYTES // 4)

    image_files.keep(s, "sha256:big", APP, chunks())
    assert image_files.read(s, "sha256:big", APP) is None
    assert len(read) == 5  # stopped reading past the limit
    assert image_files.known(s, "sha256:big", APP)  # the next deep sleep does not read it
    assert not list(tmp_path.rglob("*.tmp"))


def test_what_is_kept_for_images_the_node_no_longer_has_is_removed(tmp_path: Path) -> None:
    s = settings(tmp_path)
    for image in ("sha256:aaa", "sha256:bbb"):
        image_files.keep(s, image, APP, [b"code"])
    listed_at = time.time() + 1
    assert image_files.prune(s, {"sha256:bbb"}, listed_at) == 1
    assert image_files.read(s, "sha256:aaa", APP) is None
    assert image_files.read(s, "sha256:bbb", APP) == b"code"
    # One kept after the node's images were listed may be of an image the list missed.
    image_files.keep(s, "sha256:ccc", APP, [b"code"])
    assert image_files.prune(s, {"sha256:bbb"}, time.time() - 60) == 0
    assert image_files.read(s, "sha256:ccc", APP) == b"code"
