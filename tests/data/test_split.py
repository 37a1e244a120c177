from __future__ import annotations

import json
from collections import Counter

import pytest
from tests.conftest import tiny

from vidnas.data.index import VideoIndex, VideoRecord
from vidnas.data.split import holdout_split, search_split, stratified_split
from vidnas.errors import DataError


def _index(per_class: list[int]) -> VideoIndex:
    records = [VideoRecord(f"c{c}/v{i}.avi", c) for c, n in enumerate(per_class) for i in range(n)]
    return VideoIndex(records, [f"c{c}" for c in range(len(per_class))], [], "/data")


def test_stratified_split_matches_fractions_per_class_and_overall():
    index = _index([22] * 10)
    parts = stratified_split(index.records, (0.6, 0.2, 0.2), seed=0, salt="search")
    assert [len(p) for p in parts] == [132, 44, 44]
    for part, frac in zip(parts, (0.6, 0.2, 0.2)):
        counts = Counter(r.label for r in part)
        assert all(abs(counts[c] - 22 * frac) <= 1 for c in range(10))
    assert sorted(r.path for p in parts for r in p) == sorted(r.path for r in index.records)
    # Small and uneven classes: totals still follow the fractions to within one video.
    skewed = _index([1, 2, 3, 4, 5, 6, 7])
    parts = stratified_split(skewed.records, (0.6, 0.2, 0.2), seed=3, salt="search")
    assert [len(p) for p in parts] in ([17, 5, 6], [17, 6, 5], [16, 6, 6])
    assert all(parts)


def test_split_is_seeded():
    index = _index([10] * 4)
    a = stratified_split(index.records, (0.5, 0.5), seed=1, salt="x")
    assert a == stratified_split(index.records, (0.5, 0.5), seed=1, salt="x")
    assert a != stratified_split(index.records, (0.5, 0.5), seed=2, salt="x")
    assert a != stratified_split(index.records, (0.5, 0.5), seed=1, salt="y")


def test_search_split_is_saved_and_read_back_never_recomputed(tmp_path):
    index = _index([12] * 5)
    path = tmp_path / "run" / "split.json"
    train, validate, inference = search_split(index, tiny(), path)
    assert (len(train), len(validate), len(inference)) == (36, 12, 12)
    assert train.classes == index.classes and train.root == "/data"
    doc = json.loads(path.read_text())
    assert doc["format"] == "vidnas-split/1" and doc["kind"] == "search" and doc["seed"] == 0
    assert doc["parts"]["validate"][0] == [validate.records[0].path, validate.records[0].label]
    assert [p.name for p in path.parent.iterdir()] == ["split.json"]  # written atomically
    # Another seed, or other fractions: the saved split still wins.
    other = tiny(None, "seed=5", "data.search_split=[0.5,0.25,0.25]")
    again = search_split(index, other, path)
    assert [p.records for p in again] == [train.records, validate.records, inference.records]
    fresh = search_split(index, other, tmp_path / "fresh.json")
    assert fresh[0].records != train.records


def test_saved_split_refuses_a_changed_dataset(tmp_path):
    index = _index([12] * 5)
    path = tmp_path / "split.json"
    search_split(index, tiny(), path)
    smaller = VideoIndex(index.records[1:], index.classes, [], index.root)
    with pytest.raises(DataError, match="not .* in the dataset now"):
        search_split(smaller, tiny(), path)
    larger = _index([13] * 5)
    with pytest.raises(DataError, match="in no part of this split"):
        search_split(larger, tiny(), path)
    path.write_text("{broken")
    with pytest.raises(DataError, match="unreadable split file"):
        search_split(index, tiny(), path)


def test_search_split_needs_enough_videos(tmp_path):
    with pytest.raises(DataError, match="too few"):
        search_split(_index([2]), tiny(), tmp_path / "s.json")


def test_holdout_split(tmp_path):
    index = _index([20] * 3)
    train, hold = holdout_split(index, 0.1, seed=0, path=tmp_path / "holdout.json")
    assert len(hold) == 6 and Counter(r.label for r in hold.records) == {0: 2, 1: 2, 2: 2}
    assert not {r.path for r in train.records} & {r.path for r in hold.records}
    again = holdout_split(index, 0.3, seed=9, path=tmp_path / "holdout.json")
    assert again[1].records == hold.records  # read back, not recomputed
    train, hold = holdout_split(index, 0.0, seed=0, path=tmp_path / "none.json")
    assert len(train) == 60 and len(hold) == 0
    search_split(index, tiny(), tmp_path / "search.json")
    with pytest.raises(DataError, match="not a 'holdout' split file"):
        holdout_split(index, 0.1, seed=0, path=tmp_path / "search.json")
