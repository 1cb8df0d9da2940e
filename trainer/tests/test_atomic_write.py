"""The trainer's one atomic writer: whole file or nothing, normal permissions, no temporary left behind."""
import os

import pytest
import torch

from segment_train.train import atomic_torch_save, atomic_write, atomic_write_text


def test_writes_the_whole_file_with_normal_permissions(tmp_path):
    target = tmp_path / "best.pth"
    atomic_torch_save({"w": torch.arange(3.0)}, str(target))
    assert torch.equal(torch.load(str(target))["w"], torch.arange(3.0))
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
    atomic_write_text("hello\n", str(tmp_path / "note.txt"))
    assert (tmp_path / "note.txt").read_text() == "hello\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pth", "note.txt"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "run.json"
    target.write_text("old")

    def half_then_fail(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(str(target), half_then_fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]
