from __future__ import annotations

import shutil

from vidnas.apps.cli import main
from vidnas.config import load_config
from vidnas.data.check import check_dataset

SYNTH = ["--classes", "3", "--per-class", "4", "--frames", "6", "--size", "32"]


def test_synth_command_writes_a_dataset(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["data", "synth", str(out), *SYNTH]) == 0
    assert "12 videos, 3 classes, 6 frames of 32x24" in capsys.readouterr().out
    assert len(list((out / "UCF-101").rglob("*.avi"))) == 12
    assert main(["data", "synth", str(out), *SYNTH]) == 0  # the same dataset: nothing to do
    assert main(["data", "synth", str(out), *SYNTH[:-1], "48"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vidnas: error: ") and "holds a synthetic dataset made with" in err
    assert main(["data", "synth", str(tmp_path / "x"), "--classes", "11"]) == 2
    assert "data.synth.classes" in capsys.readouterr().err


def test_check_counts_and_lists_every_bad_file(tmp_path, capsys):
    root = tmp_path / "ds"
    assert main(["data", "synth", str(root), *SYNTH]) == 0
    assert main(["data", "check", str(root)]) == 0
    out = capsys.readouterr().out
    assert "train: 9 videos on disk, 9 readable, 0 unreadable, 0 listed but missing" in out
    assert "test: 3 videos on disk, 3 readable" in out
    assert "  Shake         3         3" in out
    videos = root / "UCF-101"
    text = videos / "Glide/v_Glide_g02_c01.avi"
    text.write_text("not a video")
    cut = videos / "Shake/v_Shake_g03_c01.avi"
    cut.write_bytes(cut.read_bytes()[:300])
    (videos / "Stutter/v_Stutter_g04_c01.avi").unlink()
    empty = videos / "Stutter/v_Stutter_g01_c01.avi"  # a test video
    empty.write_bytes(b"")
    assert main(["data", "check", str(root)]) == 1
    out = capsys.readouterr().out
    assert "train: 8 videos on disk, 6 readable, 2 unreadable, 1 listed but missing" in out
    assert f"{text}: not a readable video" in out
    assert f"{cut}: " in out
    assert "UCF-101/Stutter/v_Stutter_g04_c01.avi" in out
    assert f"{empty}: empty file (0 bytes)" in out
    assert "  Stutter       2         2" in out  # per class: on disk, readable
    # The same through a config and overrides, one split only.
    cfg = ["tiny", f"data.root={root}", "data.format=ucf101"]
    assert main(["data", "check", *cfg, "--split", "test", "--workers", "1"]) == 1
    out = capsys.readouterr().out
    assert "test: 3 videos on disk, 2 readable, 1 unreadable" in out and "train:" not in out


def test_check_guesses_folder_layout_and_reports_unlistable_splits(tmp_path, capsys):
    root = tmp_path / "folders"
    assert main(["data", "synth", str(tmp_path / "s"), *SYNTH]) == 0
    shutil.copytree(tmp_path / "s" / "UCF-101", root)  # class folders only: train, no test
    assert main(["data", "check", str(root)]) == 1
    out = capsys.readouterr().out
    assert "folder dataset at" in out and "train: 12 videos on disk, 12 readable" in out
    assert "test: cannot be listed:" in out and "no test split" in out
    reports = check_dataset(load_config(None, [f"data.root={root}", "data.format=folder"]))
    assert reports["train"].ok and not reports["test"].ok
    assert sum(reports["train"].readable.values()) == 12
