"""The kept archives of images' app directories (engine/image_files.py): read back whole, one
per image and directory, none for an oversized directory, gone once the image is."""

from __future__ import annotations

from pathlib import Path

from spaceport.engine import image_files
from spaceport.settings import Settings


def settings(tmp_path: Path) -> Settings:
    return Settings(data=tmp_path)


def test_kept_archives_are_read_back_by_image_and_directory(tmp_path: Path) -> None:
    s = settings(tmp_path)
    assert image_files.read(s, "sha256:aaa", "/home/user/app") is None
    image_files.keep(s, "sha256:aaa", "/home/user/app", b"code of a")
    image_files.keep(s, "sha256:bbb", "/home/user/app", b"code of b")
    assert image_files.read(s, "sha256:aaa", "/home/user/app") == b"code of a"
    assert image_files.read(s, "sha256:bbb", "/home/user/app") == b"code of b"
    assert image_files.read(s, "sha256:aaa", "/srv") is None
    assert not list(tmp_path.rglob("*.tmp"))


def test_an_oversized_directory_is_not_kept(tmp_path: Path) -> None:
    s = settings(tmp_path)
    image_files.keep(s, "sha256:big", "/home/user/app", b"x" * (image_files.MAX_BYTES + 1))
    assert image_files.read(s, "sha256:big", "/home/user/app") is None


def test_archives_of_images_the_node_no_longer_has_are_removed(tmp_path: Path) -> None:
    s = settings(tmp_path)
    for image in ("sha256:aaa", "sha256:bbb"):
        image_files.keep(s, image, "/home/user/app", b"code")
    assert image_files.prune(s, {"sha256:bbb"}) == 1
    assert image_files.read(s, "sha256:aaa", "/home/user/app") is None
    assert image_files.read(s, "sha256:bbb", "/home/user/app") == b"code"
