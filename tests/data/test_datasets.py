from __future__ import annotations

import logging
import shutil

import pytest
import torch
from datahelpers import ASSETS, make_broken_files
from tests.conftest import tiny

from vidnas.config import load_config
from vidnas.data import (
    BadVideoLog,
    ClipDataset,
    DataError,
    MultiViewDataset,
    VideoIndex,
    VideoRecord,
    load_index,
    make_loader,
    search_split,
    video_views,
)


def _batches(loader):
    return [(b["index"].tolist(), b["label"].tolist(), b["clip"]) for b in loader]


def test_train_items_are_a_function_of_seed_epoch_and_index(tiny_data_cfg):
    index = load_index(tiny_data_cfg, "train")
    ds = ClipDataset(index, tiny_data_cfg, "train")
    item = ds[0]
    assert item["clip"].shape == (3, 8, 32, 32) and item["clip"].dtype == torch.float32
    assert (item["label"], item["index"], item["failed"]) == (index.records[0].label, 0, [])
    first = [ds[i]["clip"] for i in range(len(ds))]
    assert all(torch.equal(a, ds[i]["clip"]) for i, a in enumerate(first))
    ds.set_epoch(1)
    assert sum(not torch.equal(a, ds[i]["clip"]) for i, a in enumerate(first)) > len(ds) // 2
    ev = ClipDataset(index, tiny_data_cfg, "eval")
    centre = ev[2]["clip"]
    ev.set_epoch(7)
    assert torch.equal(centre, ev[2]["clip"])  # the single validation view is fixed


def test_batch_order_resume_and_worker_count_do_not_change_batches(tiny_data_cfg):
    ds = ClipDataset(load_index(tiny_data_cfg, "train"), tiny_data_cfg, "train")
    args = dict(shuffle=True, seed=3, epoch=2, drop_last=False)
    full = _batches(make_loader(ds, 4, num_workers=0, **args))
    loader = make_loader(ds, 4, num_workers=2, **args)
    assert len(loader) == len(full) == 3
    with_workers = _batches(loader)
    resumed = _batches(make_loader(ds, 4, num_workers=0, start_batch=1, **args))
    for (i1, l1, c1), (i2, l2, c2) in zip(full, with_workers):
        assert i1 == i2 and l1 == l2 and torch.equal(c1, c2)
    assert len(resumed) == 2
    for (i1, l1, c1), (i2, l2, c2) in zip(full[1:], resumed):
        assert i1 == i2 and l1 == l2 and torch.equal(c1, c2)
    other_epoch = _batches(make_loader(ds, 4, num_workers=0, **{**args, "epoch": 3}))
    assert [b[0] for b in other_epoch] != [b[0] for b in full]


class _Counting(ClipDataset):
    """A real ClipDataset that counts the items it decodes."""

    def __init__(self, *args):
        super().__init__(*args)
        self.decoded = []

    def __getitem__(self, i):
        self.decoded.append(i)
        return super().__getitem__(i)


def test_resume_skips_batches_without_decoding_them(tiny_data_cfg):
    ds = _Counting(load_index(tiny_data_cfg, "train"), tiny_data_cfg, "train")
    loader = make_loader(
        ds, 4, shuffle=True, seed=0, epoch=0, start_batch=2, num_workers=0, drop_last=False
    )
    batches = list(loader)
    assert len(batches) == 1 and sorted(ds.decoded) == sorted(loader.batches[2])


@pytest.fixture
def mixed_index(tiny_data_cfg, tmp_path):
    """Four good videos and the five kinds of broken file, in a root of their own."""
    good = load_index(tiny_data_cfg, "train")
    root = tmp_path / "mixed"
    root.mkdir()
    records = []
    for k, rec in enumerate(good.records[:4]):
        shutil.copyfile(good.resolve(rec), root / f"good{k}.avi")
        records.append(VideoRecord(f"good{k}.avi", rec.label))
    broken = make_broken_files(root / "bad", root / "good0.avi")
    for k, path in enumerate(broken.values()):
        records.insert(1 + 2 * k % 8, VideoRecord(str(path.relative_to(root)), k % 4))
    return VideoIndex(records, good.classes, [], str(root)), broken


def test_bad_videos_are_replaced_in_training_and_skipped_in_evaluation(
    tiny_data_cfg, mixed_index, caplog
):
    index, broken = mixed_index
    train = ClipDataset(index, tiny_data_cfg, "train")
    for i, rec in enumerate(index.records):
        item = train[i]
        assert item["clip"].shape == (3, 8, 32, 32)
        assert item["index"] == next(
            j % len(index)
            for j in range(i, i + len(index))
            if index.records[j % len(index)].path.startswith("good")
        )  # the rule: the next readable index
        assert bool(item["failed"]) == (not rec.path.startswith("good"))
    log = BadVideoLog()
    with caplog.at_level(logging.WARNING, logger="vidnas.data"):
        for epoch in range(2):
            for mode in ("train", "eval"):
                ds = ClipDataset(index, tiny_data_cfg, mode)
                for batch in make_loader(
                    ds, 4, shuffle=True, seed=0, epoch=epoch, num_workers=0, drop_last=False
                ):
                    log.update(batch["failed"])
                    assert batch["clip"].shape[0] == len(batch["label"])
                    if mode == "train":
                        assert batch["skipped"] == 0  # every bad video was replaced
    assert log.count == 5
    assert sorted(log.bad) == sorted(str(p) for p in broken.values())
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 5  # each path once, though met in 2 epochs x 2 datasets
    assert "empty file (0 bytes)" in log.bad[str(broken["empty"])]
    assert "5 unreadable video(s) skipped" in log.summary()
    ev = ClipDataset(index, tiny_data_cfg, "eval")
    all_batch = make_loader(ev, 9, shuffle=False, seed=0, epoch=0, num_workers=0, drop_last=False)
    batch = next(iter(all_batch))
    assert batch["clip"].shape == (4, 3, 8, 32, 32) and batch["skipped"] == 5
    assert len(batch["failed"]) == 5 and batch["index"].tolist() == [
        i for i, r in enumerate(index.records) if r.path.startswith("good")
    ]


def test_no_readable_video_fails_at_once(tiny_data_cfg, mixed_index):
    index, _ = mixed_index
    bad_only = index.subset([r for r in index.records if not r.path.startswith("good")])
    with pytest.raises(DataError, match="none of the 5 videos is readable"):
        ClipDataset(bad_only, tiny_data_cfg, "train")
    with pytest.raises(DataError, match="none of the 5 videos is readable"):
        MultiViewDataset(bad_only, tiny_data_cfg, 2, 3)


def test_multi_view_dataset(tiny_data_cfg, mixed_index):
    index, _ = mixed_index
    ds = MultiViewDataset(index, tiny_data_cfg, clips=2, crops=3)
    batch = next(
        iter(make_loader(ds, 9, shuffle=False, seed=0, epoch=0, num_workers=0, drop_last=False))
    )
    assert batch["clip"].shape == (4, 6, 3, 8, 32, 32) and batch["skipped"] == 5
    one = ds[0]["clip"]
    # Clip-major: views 0-2 are the left, centre and right crops of clip 0 (of a 48x36
    # frame, 32 wide: at x = 0, 8, 16), views 3-5 those of clip 1.
    assert torch.equal(one[0][..., 8:], one[1][..., :24])
    assert torch.equal(one[1][..., 8:], one[2][..., :24])
    assert torch.equal(one[3][..., 8:], one[4][..., :24])
    assert not torch.equal(one[0], one[3])
    centre_only = MultiViewDataset(index, tiny_data_cfg, clips=1, crops=1)[0]["clip"]
    assert centre_only.shape == (1, 3, 8, 32, 32)


def test_video_views_of_a_real_clip():
    cfg = load_config("paper")
    views = video_views(str(ASSETS / "test.avi"), cfg, clips=10, crops=3)
    assert views.shape == (30, 3, 16, 224, 224) and torch.isfinite(views).all()
    assert not torch.equal(views[0], views[3])  # clip 0 and clip 1 differ in time


def test_video_views_names_an_unreadable_file(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    with pytest.raises(DataError, match=r"notes.mp4: not a readable video"):
        video_views(str(bad), tiny(), clips=2, crops=3)


def test_search_pipeline_end_to_end(tiny_data_cfg, tmp_path):
    """What the search does with the data: index, saved split, three loaders."""
    index = load_index(tiny_data_cfg, "train")
    parts = search_split(index, tiny_data_cfg, tmp_path / "run" / "search_split.json")
    assert sum(len(p) for p in parts) == len(index) == 12
    log = BadVideoLog()
    for part, mode in zip(parts, ("train", "eval", "eval")):
        ds = ClipDataset(part, tiny_data_cfg, mode)
        for batch in make_loader(
            ds, 4, shuffle=mode == "train", seed=0, epoch=0, num_workers=0, drop_last=False
        ):
            log.update(batch["failed"])
            assert batch["clip"].shape[1:] == (3, 8, 32, 32)
            assert batch["label"].dtype == torch.int64
    assert log.count == 0


def test_bad_videos_met_in_worker_processes_reach_the_main_log(tiny_data_cfg, mixed_index):
    index, broken = mixed_index
    log, skipped = BadVideoLog(), 0
    for mode in ("train", "eval"):
        ds = ClipDataset(index, tiny_data_cfg, mode)
        for batch in make_loader(
            ds, 3, shuffle=True, seed=1, epoch=0, num_workers=2, drop_last=False
        ):
            log.update(batch["failed"])
            skipped += batch["skipped"]
    assert sorted(log.bad) == sorted(str(p) for p in broken.values())
    assert skipped == 5  # evaluation skipped each bad video once; training replaced them
