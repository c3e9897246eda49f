"""Folder sources read each image once: links are followed, but every real folder (device,
inode) is read once, and a link back to one already read is noted once, not followed."""

from __future__ import annotations

import os
from pathlib import Path

from bottleneck.data import FolderSource
from tests.conftest import write_class_folder


def linked_tree(root: Path) -> Path:
    """circle/, square/, stripes/ with 2 images each, plus links that revisit folders:
    circle/loop → circle (a loop), square/deep/again → square (a loop two levels down),
    stripes/alias → square/deep (a folder read elsewhere) and circle/up → the root."""
    write_class_folder(root, per_class=2)
    (root / "square" / "deep").mkdir()
    (root / "square" / "deep" / "inner.png").write_bytes((root / "square" / "000.jpg")
                                                         .read_bytes())
    os.symlink("../circle", root / "circle" / "loop")
    os.symlink("../../square", root / "square" / "deep" / "again")
    os.symlink("../square/deep", root / "stripes" / "alias")
    os.symlink("..", root / "circle" / "up")
    return root


def test_a_tree_with_link_loops_is_read_once(tmp_path: Path) -> None:
    root = linked_tree(tmp_path / "images")
    source = FolderSource(root)
    keys = sorted(item.key for item in source.items())
    assert keys == ["circle/000.jpg", "circle/001.jpg", "square/000.jpg", "square/001.jpg",
                    "square/deep/inner.png", "stripes/000.jpg", "stripes/001.jpg"]
    noted = {path.relative_to(root).as_posix(): reason for path, reason in source.skipped}
    assert sorted(noted) == ["circle/loop", "circle/up", "square/deep/again", "stripes/alias"]
    assert all("again, through a link: read once" in reason for reason in noted.values())
    assert f"the folder {root / 'square' / 'deep'} again" in noted["stripes/alias"]
    assert len(source.skipped) == len(noted)  # each noted once


def test_a_class_folder_that_links_to_another_is_read_once(tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / "images", per_class=2, classes=("circle", "square"))
    os.symlink("circle", root / "round")  # the same images under a second class name
    source = FolderSource(root)
    assert sorted(item.key for item in source.items()) == [
        "circle/000.jpg", "circle/001.jpg", "square/000.jpg", "square/001.jpg"]
    assert [(p.name, r.split(",")[0]) for p, r in source.skipped] == [
        ("round", f"the folder {root / 'circle'} again")]


def test_links_to_folders_outside_the_root_are_still_read(tmp_path: Path) -> None:
    outside = write_class_folder(tmp_path / "elsewhere", per_class=2, classes=("circle",))
    root = write_class_folder(tmp_path / "images", per_class=2, classes=("square",))
    os.symlink(outside / "circle", root / "circle")
    source = FolderSource(root)
    assert len(source.items()) == 4 and source.skipped == []


def test_a_link_from_one_class_into_another_keeps_each_image_in_its_own_class(
        tmp_path: Path) -> None:
    root = write_class_folder(tmp_path / "images", per_class=2, classes=("circle", "square"))
    os.symlink("../square", root / "circle" / "also")  # circle is read first
    source = FolderSource(root)
    labels = {item.key: source.classes[item.label] for item in source.items()}
    assert labels == {"circle/000.jpg": "circle", "circle/001.jpg": "circle",
                      "square/000.jpg": "square", "square/001.jpg": "square"}
