"""Readers of the dataset layouts, each into a :class:`VideoIndex`.

``ucf101`` (also the synthetic dataset's layout): ``classInd.txt`` (``1
ApplyEyeMakeup``, 1-based), ``trainlistNN.txt`` (``Class/v_..._gXX_cYY.avi
label``, 1-based) and ``testlistNN.txt`` (path only; the label is the
folder's class), NN = ``data.ucf_split``. The lists are looked for in
``data.annotations`` if set, else ``ROOT/ucfTrainTestlist`` (the official
zip), ``ROOT/annotations`` or ``ROOT``; the videos in ``ROOT/UCF-101`` (the
official rar), ``ROOT/UCF101``, ``ROOT/videos`` or ``ROOT``. Official lists have
CRLF line ends and one class whose file names differ in case from its folder
(``HandstandPushups/v_HandStandPushups_...``): both are fine here.

``kinetics``: a CSV with header ``label,youtube_id,time_start,time_end,split``
per split (``data.annotations`` for train, ``data.test_annotations`` for test;
default ``ROOT/annotations/{train,val}.csv`` or ``ROOT/{train,val}.csv``). A
row's file is ``{youtube_id}_{start:06d}_{end:06d}`` with any video extension,
in ``ROOT/{split column}/`` or a class folder below it. Class ids are the
sorted label names of the training CSV.

``folder``: ``ROOT/train/<class>/*`` and ``ROOT/test/<class>/*`` (``val`` is
accepted for ``test``); a ROOT holding class folders directly is a training
set only. Class ids are the sorted folder names of the training set.

``list``: text or CSV files of ``path,label`` (or ``path label``), one video a
line, ``#`` comments and a ``path,label`` header allowed; paths relative to
``data.root``. Labels are all integers (ids) or all class names (ids are the
sorted names of the training list).

Listed videos missing on disk are collected in ``VideoIndex.missing``, not
raised: a partly downloaded Kinetics is normal.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from vidnas.config import Config, DataConfig
from vidnas.data.decode import VIDEO_EXTENSIONS
from vidnas.data.index import Split, VideoIndex, VideoRecord, relative_to_root, report_missing
from vidnas.data.synth import ensure_synthetic
from vidnas.errors import DataError


def _read_lines(path: Path, key: str) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as err:
        raise DataError(f"{key}: cannot read {path}: {err.strerror or err}") from None
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def _first_dir(candidates: Iterable[Path], has: str | None = None) -> Path | None:
    for c in candidates:
        if c.is_dir() and (has is None or (c / has).is_file()):
            return c
    return None


def _is_video(name: str) -> bool:
    return name.lower().endswith(VIDEO_EXTENSIONS)


# --------------------------------------------------------------------------- UCF101


def read_ucf101(root: Path, split: Split, ucf_split: int, lists: str | None) -> VideoIndex:
    if not root.is_dir():
        raise DataError(f"data.root: {root} is not a directory")
    candidates = [Path(lists)] if lists else []
    candidates += [root / "ucfTrainTestlist", root / "annotations", root]
    list_dir = _first_dir(candidates, has="classInd.txt")
    if list_dir is None:
        where = ", ".join(str(c) for c in candidates)
        raise DataError(f"{root}: no UCF101 classInd.txt in any of {where}")
    classes = _read_class_ind(list_dir / "classInd.txt")
    by_name = {c.lower(): i for i, c in enumerate(classes)}
    name = f"{split}list{ucf_split:02d}.txt"
    list_path = list_dir / name
    if not list_path.is_file():
        raise DataError(f"{list_path}: no such file (data.ucf_split={ucf_split})")
    entries: list[tuple[str, int]] = []
    for n, line in enumerate(_read_lines(list_path, "data.annotations"), 1):
        parts = line.split()
        rel = parts[0].replace("\\", "/")
        if split == "train" and len(parts) >= 2:
            try:
                label = int(parts[1]) - 1
            except ValueError:
                raise DataError(f"{list_path}:{n}: label {parts[1]!r} is not an integer") from None
            if not 0 <= label < len(classes):
                raise DataError(f"{list_path}:{n}: label {parts[1]} is not in classInd.txt")
        else:
            folder = rel.split("/")[0].lower()
            if folder not in by_name:
                raise DataError(f"{list_path}:{n}: class folder {folder!r} is not in classInd.txt")
            label = by_name[folder]
        entries.append((rel, label))
    video_dirs = [root / "UCF-101", root / "UCF101", root / "videos", root]
    video_dir = next(
        (d for d in video_dirs if entries and (d / entries[0][0]).exists()),
        _first_dir(video_dirs) or root,
    )
    records, missing = [], []
    for rel, label in entries:
        path = video_dir / rel
        if path.exists() or path.is_symlink():
            records.append(VideoRecord(relative_to_root(path, root), label))
        else:
            missing.append(relative_to_root(path, root))
    return VideoIndex(records, classes, missing, str(root))


def _read_class_ind(path: Path) -> list[str]:
    pairs = []
    for n, line in enumerate(_read_lines(path, "data.annotations"), 1):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise DataError(f"{path}:{n}: expected 'index name', got {line!r}")
        pairs.append((int(parts[0]), parts[1]))
    pairs.sort()
    if [i for i, _ in pairs] != list(range(1, len(pairs) + 1)):
        raise DataError(f"{path}: class indices must be 1..{len(pairs)} without gaps")
    return [name for _, name in pairs]


# --------------------------------------------------------------------------- Kinetics

_KINETICS_COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")
_SPLIT_FOLDERS = {
    "train": ("train", "training"),
    "val": ("val", "validate", "validation"),
    "validate": ("val", "validate", "validation"),
    "test": ("test", "testing"),
}


def _kinetics_csv(root: Path, given: str | None, names: tuple[str, ...], key: str) -> Path:
    if given:
        path = Path(given).expanduser()
        if not path.is_absolute() and not path.exists():
            path = root / path
        if not path.is_file():
            raise DataError(f"{key}: no such file {given}")
        return path
    for name in names:
        for folder in (root / "annotations", root):
            if (folder / name).is_file():
                return folder / name
    raise DataError(
        f"{key}: not set and no {' or '.join(names)} under {root}/annotations or {root}"
    )


def _read_kinetics_rows(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in reader.fieldnames or []]
            lacking = [c for c in _KINETICS_COLUMNS if c not in columns and c != "split"]
            if lacking:
                raise DataError(
                    f"{path}: missing column(s) {', '.join(lacking)} (expected a header "
                    f"{','.join(_KINETICS_COLUMNS)})"
                )
            return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    except OSError as err:
        raise DataError(f"{path}: cannot read: {err.strerror or err}") from None


def _scan_videos(folders: Iterable[Path]) -> dict[str, Path]:
    """Video files by stem in ``folders`` and one level of class folders below them."""
    found: dict[str, Path] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            if entry.is_dir():
                for sub in os.scandir(entry.path):
                    if _is_video(sub.name):
                        found.setdefault(os.path.splitext(sub.name)[0], Path(sub.path))
            elif _is_video(entry.name):
                found.setdefault(os.path.splitext(entry.name)[0], Path(entry.path))
    return found


def read_kinetics(
    root: Path, split: Split, annotations: str | None, test_annotations: str | None
) -> VideoIndex:
    if not root.is_dir():
        raise DataError(f"data.root: {root} is not a directory")
    train_csv = _kinetics_csv(root, annotations, ("train.csv",), "data.annotations")
    train_rows = _read_kinetics_rows(train_csv)
    classes = sorted({r["label"] for r in train_rows if r.get("label")})
    if not classes:
        raise DataError(f"{train_csv}: no labelled rows")
    if split == "train":
        path, rows = train_csv, train_rows
    else:
        names = ("val.csv", "validate.csv", "test.csv")
        path = _kinetics_csv(root, test_annotations, names, "data.test_annotations")
        rows = _read_kinetics_rows(path)
    ids = {c: i for i, c in enumerate(classes)}
    folder_names = {r.get("split") or ("train" if split == "train" else "val") for r in rows}
    folders = [root / alias for s in sorted(folder_names) for alias in _SPLIT_FOLDERS.get(s, (s,))]
    files = _scan_videos([*folders, root / "videos", root])
    records, missing = [], []
    for n, row in enumerate(rows, 2):
        label = row.get("label", "")
        if label not in ids:
            raise DataError(f"{path}:{n}: label {label!r} is not a class of {train_csv}")
        try:
            stem = f"{row['youtube_id']}_{int(float(row['time_start'])):06d}_"
            stem += f"{int(float(row['time_end'])):06d}"
        except (KeyError, ValueError):
            raise DataError(f"{path}:{n}: bad youtube_id/time_start/time_end") from None
        if stem in files:
            records.append(VideoRecord(relative_to_root(files[stem], root), ids[label]))
        else:
            missing.append(f"{row.get('split') or split}/{stem}.mp4")
    return VideoIndex(records, classes, missing, str(root))


# --------------------------------------------------------------------------- folder


def _class_folders(folder: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))


def read_folder(root: Path, split: Split) -> VideoIndex:
    if not root.is_dir():
        raise DataError(f"data.root: {root} is not a directory")
    train_dir = root / "train" if (root / "train").is_dir() else root
    classes = _class_folders(train_dir)
    if not classes:
        raise DataError(f"{train_dir}: no class folders (data.format=folder)")
    if split == "train":
        folder = train_dir
    else:
        folder = _first_dir([root / "test", root / "val"])
        if folder is None:
            raise DataError(
                f"{root}: no test split: the folder format needs {root}/test/<class>/ "
                f"(or val/) beside {root}/train/<class>/"
            )
        extra = sorted(set(_class_folders(folder)) - set(classes))
        if extra:
            raise DataError(f"{folder}: class folder(s) {', '.join(extra)} not in {train_dir}")
    records = []
    for label, name in enumerate(classes):
        class_dir = folder / name
        if not class_dir.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(class_dir):
            dirnames.sort()
            for fname in sorted(filenames):
                if _is_video(fname):
                    path = Path(dirpath) / fname
                    records.append(VideoRecord(relative_to_root(path, root), label))
    return VideoIndex(records, classes, [], str(root))


# --------------------------------------------------------------------------- list

_INT = re.compile(r"^-?\d+$")


def _read_list_file(path: Path, key: str) -> list[tuple[str, str, int]]:
    rows = []
    for n, line in enumerate(_read_lines(path, key), 1):
        if "," in line:
            parts = next(csv.reader([line]))
            if len(parts) < 2:
                raise DataError(f"{path}:{n}: expected 'path,label', got {line!r}")
            vid, label = ",".join(parts[:-1]).strip(), parts[-1].strip()
        else:
            parts = line.rsplit(None, 1)
            if len(parts) != 2:
                raise DataError(f"{path}:{n}: expected 'path,label', got {line!r}")
            vid, label = parts
        if n == 1 and label.lower() == "label":
            continue  # header
        rows.append((vid, label, n))
    return rows


def _list_path(given: str | None, key: str, root: Path) -> Path:
    if not given:
        raise DataError(f"{key}: the list format needs the path of a 'path,label' file")
    path = Path(given).expanduser()
    if not path.is_absolute() and not path.exists() and (root / path).exists():
        path = root / path
    if not path.is_file():
        raise DataError(f"{key}: no such file {given}")
    return path


def read_list(
    root: Path, split: Split, annotations: str | None, test_annotations: str | None
) -> VideoIndex:
    train_path = _list_path(annotations, "data.annotations", root)
    train_rows = _read_list_file(train_path, "data.annotations")
    if not train_rows:
        raise DataError(f"{train_path}: the list is empty")
    numeric = all(_INT.match(label) for _, label, _ in train_rows)
    if numeric:
        n_classes = max(int(label) for _, label, _ in train_rows) + 1
        classes = [str(i) for i in range(n_classes)]
    else:
        classes = sorted({label for _, label, _ in train_rows})
    ids = {c: i for i, c in enumerate(classes)}
    if split == "train":
        path, rows = train_path, train_rows
    else:
        path = _list_path(test_annotations, "data.test_annotations", root)
        rows = _read_list_file(path, "data.test_annotations")
    records, missing = [], []
    for vid, label, n in rows:
        if numeric and _INT.match(label):
            label = str(int(label))  # "07" is class 7
        if label not in ids:
            what = "an integer id below" if numeric else "a class name of"
            raise DataError(f"{path}:{n}: label {label!r} is not {what} {train_path}")
        p = Path(vid).expanduser()
        p = p if p.is_absolute() else root / p
        if p.exists() or p.is_symlink():
            records.append(VideoRecord(relative_to_root(p, root), ids[label]))
        else:
            missing.append(relative_to_root(p, root))
    return VideoIndex(records, classes, missing, str(root))


# --------------------------------------------------------------------------- by name


def _synthetic(d: DataConfig, root: Path, split: Split) -> VideoIndex:
    ensure_synthetic(root, d.synth)  # generated on first use
    return read_ucf101(root, split, d.ucf_split, None)


# data.format -> reader of one split of that layout.
READERS: dict[str, Callable[[DataConfig, Path, Split], VideoIndex]] = {
    "synthetic": _synthetic,
    "ucf101": lambda d, root, split: read_ucf101(root, split, d.ucf_split, d.annotations),
    "kinetics": lambda d, root, split: read_kinetics(
        root, split, d.annotations, d.test_annotations
    ),
    "folder": lambda d, root, split: read_folder(root, split),
    "list": lambda d, root, split: read_list(root, split, d.annotations, d.test_annotations),
}


def load_index(cfg: Config, split: Split) -> VideoIndex:
    """The videos of ``split`` ("train" or "test") of the dataset ``cfg.data`` describes.

    The synthetic dataset is generated at ``data.root`` first if it is not there.
    Raises :class:`DataError` naming the path or key when the dataset cannot be
    read or lists no video that exists.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    d = cfg.data
    root = Path(d.root).expanduser()
    if d.format not in READERS:  # the config's Literal type makes this unreachable from a file
        raise DataError(f"data.format: unknown format {d.format!r}")
    index = READERS[d.format](d, root, split)
    report_missing(index.missing, f"{d.format} {split} split at {root}")
    if not index.records:
        why = f" ({len(index.missing)} listed, none on disk)" if index.missing else ""
        raise DataError(f"{root}: the {d.format} {split} split has no videos{why}")
    return index
