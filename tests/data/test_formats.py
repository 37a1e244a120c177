from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from datahelpers import write_video
from tests.conftest import tiny

from vidnas.data import load_index
from vidnas.errors import DataError


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """One small real video, copied wherever a dataset needs a file."""
    return write_video(tmp_path_factory.mktemp("clip") / "clip.avi", 4)


def _put(clip: Path, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(clip, path)


def _cfg(root: Path, fmt: str, *extra: str):
    return tiny(root, f"data.format={fmt}", *extra)


def _ucf(root: Path, clip: Path, lists: Path, videos: Path, crlf: bool = True) -> None:
    nl = "\r\n" if crlf else "\n"  # the official lists have Windows line ends
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "classInd.txt").write_text(nl.join(["1 ApplyEyeMakeup", "2 HandstandPushups"]) + nl)
    train = [
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1",
        "HandstandPushups/v_HandStandPushups_g08_c01.avi 2",
        "HandstandPushups/v_HandStandPushups_g09_c01.avi 2",
    ]
    test = [
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi",
        "HandstandPushups/v_HandStandPushups_g01_c01.avi",
    ]
    (lists / "trainlist01.txt").write_text(nl.join(train) + nl)
    (lists / "testlist01.txt").write_text(nl.join(test) + nl)
    (lists / "trainlist02.txt").write_text(train[0] + nl)
    (lists / "testlist02.txt").write_text(test[1] + nl)
    for line in train[:2] + test:
        _put(clip, videos / line.split()[0])


def test_ucf101_official_layout(tmp_path, clip, caplog):
    root = tmp_path / "ucf"
    _ucf(root, clip, root / "ucfTrainTestlist", root / "UCF-101")
    with caplog.at_level(logging.WARNING, logger="vidnas.data"):
        train = load_index(_cfg(root, "ucf101"), "train")
    assert train.classes == ["ApplyEyeMakeup", "HandstandPushups"]
    assert [(r.path, r.label) for r in train.records] == [
        ("UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", 0),
        ("UCF-101/HandstandPushups/v_HandStandPushups_g08_c01.avi", 1),
    ]
    assert train.missing == ["UCF-101/HandstandPushups/v_HandStandPushups_g09_c01.avi"]
    assert "1 listed videos are not on disk" in caplog.text
    assert Path(train.resolve(train.records[0])).is_file()
    test = load_index(_cfg(root, "ucf101"), "test")
    assert [r.label for r in test.records] == [0, 1]  # from the folder name, case-insensitively
    split2 = load_index(_cfg(root, "ucf101", "data.ucf_split=2"), "test")
    assert [r.label for r in split2.records] == [1]


def test_ucf101_flat_layout_and_explicit_lists(tmp_path, clip):
    root = tmp_path / "flat"
    _ucf(root, clip, root, root, crlf=False)
    assert len(load_index(_cfg(root, "ucf101"), "train")) == 2
    other = tmp_path / "elsewhere"
    _ucf(other, clip, other / "lists", other / "videos")
    index = load_index(_cfg(other, "ucf101", f"data.annotations={other / 'lists'}"), "test")
    assert index.records[0].path == "videos/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi"


def test_ucf101_errors_name_the_file(tmp_path, clip):
    root = tmp_path / "ucf"
    root.mkdir()
    with pytest.raises(DataError, match="no UCF101 classInd.txt"):
        load_index(_cfg(root, "ucf101"), "train")
    _ucf(root, clip, root / "ucfTrainTestlist", root / "UCF-101")
    with pytest.raises(DataError, match="trainlist03.txt: no such file"):
        load_index(_cfg(root, "ucf101", "data.ucf_split=3"), "train")
    (root / "ucfTrainTestlist" / "trainlist01.txt").write_text("A/v_A_g01_c01.avi 7\n")
    with pytest.raises(DataError, match=r"trainlist01.txt:1: label 7 is not in classInd"):
        load_index(_cfg(root, "ucf101"), "train")
    (root / "ucfTrainTestlist" / "trainlist01.txt").write_text("A/v_A_g01_c01.avi 1\n")
    with pytest.raises(DataError, match=r"has no videos \(1 listed, none on disk\)"):
        load_index(_cfg(root, "ucf101"), "train")


def _kinetics(root: Path, clip: Path) -> None:
    (root / "annotations").mkdir(parents=True)
    header = "label,youtube_id,time_start,time_end,split\n"
    train = [
        "riding a bike,aaa,10,20,train",
        "abseiling,bbb,0,10,train",
        "riding a bike,ccc,5,15,train",  # not downloaded
        "zumba,ddd,100,110,train",
    ]
    (root / "annotations" / "train.csv").write_text(header + "\n".join(train) + "\n")
    (root / "annotations" / "val.csv").write_text(header + "zumba,eee,30,40,val\n")
    _put(clip, root / "train" / "aaa_000010_000020.mp4")
    _put(clip, root / "train" / "bbb_000000_000010.mkv")  # any video extension
    _put(clip, root / "train" / "zumba" / "ddd_000100_000110.mp4")  # class folders too
    _put(clip, root / "val" / "eee_000030_000040.mp4")


def test_kinetics_csv_and_split_folders(tmp_path, clip, caplog):
    root = tmp_path / "k400"
    _kinetics(root, clip)
    with caplog.at_level(logging.WARNING, logger="vidnas.data"):
        train = load_index(_cfg(root, "kinetics"), "train")
    assert train.classes == ["abseiling", "riding a bike", "zumba"]  # sorted names
    assert sorted((r.path, r.label) for r in train.records) == [
        ("train/aaa_000010_000020.mp4", 1),
        ("train/bbb_000000_000010.mkv", 0),
        ("train/zumba/ddd_000100_000110.mp4", 2),
    ]
    assert train.missing == ["train/ccc_000005_000015.mp4"]
    assert "1 listed videos are not on disk" in caplog.text and "ccc_000005" in caplog.text
    test = load_index(_cfg(root, "kinetics"), "test")
    assert [(r.path, r.label) for r in test.records] == [("val/eee_000030_000040.mp4", 2)]


def test_kinetics_bad_csv(tmp_path, clip):
    root = tmp_path / "k400"
    _kinetics(root, clip)
    (root / "annotations" / "train.csv").write_text("label,id\nzumba,x\n")
    with pytest.raises(DataError, match="missing column"):
        load_index(_cfg(root, "kinetics"), "train")
    with pytest.raises(DataError, match="data.annotations: no such file"):
        load_index(_cfg(root, "kinetics", "data.annotations=nope.csv"), "train")


def test_folder_format(tmp_path, clip):
    root = tmp_path / "folders"
    for split, cls, name in [
        ("train", "jump", "a.mp4"),
        ("train", "jump", "b.AVI"),
        ("train", "run", "c.webm"),
        ("train", "run", "notes.txt"),
        ("val", "run", "d.mp4"),
    ]:
        _put(clip, root / split / cls / name)
    train = load_index(_cfg(root, "folder"), "train")
    assert train.classes == ["jump", "run"]
    assert [(r.path, r.label) for r in train.records] == [
        ("train/jump/a.mp4", 0),
        ("train/jump/b.AVI", 0),
        ("train/run/c.webm", 1),
    ]
    test = load_index(_cfg(root, "folder"), "test")
    assert [(r.path, r.label) for r in test.records] == [("val/run/d.mp4", 1)]
    only = tmp_path / "only"
    _put(clip, only / "jump" / "a.mp4")
    assert len(load_index(_cfg(only, "folder"), "train")) == 1
    with pytest.raises(DataError, match="no test split"):
        load_index(_cfg(only, "folder"), "test")


def test_list_format_names_and_ids(tmp_path, clip):
    root = tmp_path / "lst"
    for name in ("a.mp4", "b.mp4", "sub dir/c.mp4", "d.mp4"):
        _put(clip, root / name)
    (root / "train.csv").write_text(
        "path,label\na.mp4,walk\n# a comment\nsub dir/c.mp4,run\nmissing.mp4,walk\n"
    )
    (root / "test.txt").write_text("b.mp4 run\n")
    cfg = _cfg(root, "list", "data.annotations=train.csv", "data.test_annotations=test.txt")
    train = load_index(cfg, "train")
    assert train.classes == ["run", "walk"]
    assert [(r.path, r.label) for r in train.records] == [("a.mp4", 1), ("sub dir/c.mp4", 0)]
    assert train.missing == ["missing.mp4"]
    assert [(r.path, r.label) for r in load_index(cfg, "test").records] == [("b.mp4", 0)]
    (root / "ids.txt").write_text(f"{root / 'a.mp4'},2\nd.mp4,0\n")
    (root / "ids_test.txt").write_text("b.mp4,02\n")
    cfg = _cfg(root, "list", "data.annotations=ids.txt", "data.test_annotations=ids_test.txt")
    ids = load_index(cfg, "train")
    assert ids.classes == ["0", "1", "2"] and [r.label for r in ids.records] == [2, 0]
    assert [r.label for r in load_index(cfg, "test").records] == [2]
    (root / "bad.txt").write_text("b.mp4,jump\n")
    cfg = _cfg(root, "list", "data.annotations=train.csv", "data.test_annotations=bad.txt")
    with pytest.raises(DataError, match=r"bad.txt:1: label 'jump' is not a class name"):
        load_index(cfg, "test")
    with pytest.raises(DataError, match="data.annotations: the list format needs"):
        load_index(_cfg(root, "list"), "train")


def test_synthetic_is_generated_once_and_guarded(tmp_path):
    root = tmp_path / "synth"
    cfg = _cfg(root, "synthetic", "data.synth.per_class=2", "data.synth.frames=4")
    train = load_index(cfg, "train")
    assert (root / "synth.json").is_file() and len(train.classes) == 4
    assert [p.name for p in tmp_path.iterdir()] == ["synth"]  # no temporary folder left
    mtime = (root / "synth.json").stat().st_mtime_ns
    load_index(cfg, "test")
    assert (root / "synth.json").stat().st_mtime_ns == mtime  # not generated again
    with pytest.raises(DataError, match="holds a synthetic dataset made with"):
        load_index(_cfg(root, "synthetic", "data.synth.per_class=3"), "train")
    other = tmp_path / "mine"
    (other / "keep.txt").parent.mkdir()
    (other / "keep.txt").write_text("user data")
    with pytest.raises(DataError, match="is not a vidnas synthetic dataset"):
        load_index(_cfg(other, "synthetic"), "train")
