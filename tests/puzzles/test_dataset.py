"""Tests for puzzles.dataset: building dataset directories, reading them back, and batches."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from puzzles.dataset import (
    ARRAYS,
    SPLITS,
    BatchLoader,
    BuildSpec,
    DatasetError,
    PuzzleDataset,
    augment_tokens,
    build_dataset,
    shares_of,
    tier_mix,
)
from puzzles.sudoku import SudokuFamily

SUDOKU4 = BuildSpec("sudoku", 4, "easy", train=40, test=20, seed=0)
SUDOKU9 = BuildSpec("sudoku", 9, "easy", train=24, test=8, seed=3)
MAZE = BuildSpec("maze", 9, "easy", train=30, test=10, seed=0)
MAZE_MEDIUM = BuildSpec("maze", 10, "medium", train=16, test=8, seed=5)
SPECS = {"sudoku4": SUDOKU4, "sudoku9": SUDOKU9, "maze": MAZE, "maze_medium": MAZE_MEDIUM}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("datasets")
    return {name: build_dataset(spec, root / name) for name, spec in SPECS.items()}


def digests(path: Path) -> dict[str, str]:
    """sha256 of every file under ``path``, by relative path."""
    return {
        str(f.relative_to(path)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(path.rglob("*"))
        if f.is_file()
    }


def leftovers(parent: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name not in keep)


# --- building ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPECS)
def test_layout_shapes_and_dtypes(built, name):
    spec, path = SPECS[name], built[name]
    meta = json.loads((path / "meta.json").read_text())
    family = spec.make_family()
    assert meta["family"] == spec.family and meta["size"] == spec.size
    assert meta["difficulty"] == spec.difficulty and meta["seed"] == spec.seed
    assert meta["counts"] == {"train": spec.train, "test": spec.test}
    assert meta["seq_len"] == spec.size**2
    assert meta["vocab_size"] == family.vocab_size
    assert sorted(meta["sha256"]) == sorted(f"{s}/{a}.npy" for s in SPLITS for a in ARRAYS)
    for split in SPLITS:
        n = meta["counts"][split]
        arrays = {a: np.load(path / split / f"{a}.npy") for a in ARRAYS}
        assert arrays["inputs"].shape == arrays["labels"].shape == (n, spec.size**2)
        assert arrays["inputs"].dtype == arrays["labels"].dtype == np.uint8
        assert arrays["difficulty"].shape == arrays["group"].shape == (n,)
        assert arrays["difficulty"].dtype == np.float32
        assert arrays["group"].dtype == np.int32
        for tokens in (arrays["inputs"], arrays["labels"]):
            assert tokens.min() >= 1 and tokens.max() < family.vocab_size


def test_same_spec_and_seed_give_identical_bytes(built, tmp_path):
    again = build_dataset(SUDOKU4, tmp_path / "again")
    assert digests(again) == digests(built["sudoku4"])
    assert (again / "meta.json").read_text() == (built["sudoku4"] / "meta.json").read_text()


def test_two_workers_give_the_same_bytes_as_one(built, tmp_path):
    parallel = build_dataset(SUDOKU4, tmp_path / "parallel", workers=2)
    assert digests(parallel) == digests(built["sudoku4"])


@pytest.mark.parametrize("name", ["sudoku4", "maze"])
def test_another_seed_gives_other_puzzles(built, tmp_path, name):
    spec = SPECS[name]
    other = build_dataset(dataclasses.replace(spec, seed=spec.seed + 1), tmp_path / "other")
    for split in SPLITS:
        a = PuzzleDataset(built[name], split).inputs
        b = PuzzleDataset(other, split).inputs
        assert not np.array_equal(a, b)


@pytest.mark.parametrize("name", SPECS)
def test_splits_are_disjoint_and_free_of_duplicates(built, name):
    train = PuzzleDataset(built[name], "train")
    test = PuzzleDataset(built[name], "test")
    family = train.family

    def keys(ds: PuzzleDataset) -> list[bytes]:
        return [
            family.dedupe_key(family.decode(p), family.decode(s))
            for p, s in zip(ds.inputs, ds.labels, strict=True)
        ]

    train_keys, test_keys = keys(train), keys(test)
    assert len(set(train_keys)) == len(train_keys)
    assert len(set(test_keys)) == len(test_keys)
    assert not set(train_keys) & set(test_keys)
    assert not set(train.group.tolist()) & set(test.group.tolist())


def test_groups_of_several_puzzles_never_straddle_the_split(tmp_path, monkeypatch):
    real = SudokuFamily.generate_group

    def triple(self, rng, difficulty, limit):
        return [p for _ in range(3) for p in real(self, rng, difficulty, limit)]

    monkeypatch.setattr(SudokuFamily, "generate_group", triple)
    out = build_dataset(BuildSpec("sudoku", 4, "easy", train=7, test=5), tmp_path / "data")
    train, test = PuzzleDataset(out, "train"), PuzzleDataset(out, "test")
    assert (len(train), len(test)) == (7, 5)
    assert not set(train.group.tolist()) & set(test.group.tolist())
    assert np.bincount(test.group).max() <= 3 and len(set(test.group.tolist())) >= 2


def test_puzzles_seen_in_earlier_groups_are_skipped(tmp_path, monkeypatch):
    real = SudokuFamily.generate_group

    def few(self, rng, difficulty, limit):  # only three different puzzles exist
        return real(self, np.random.default_rng(int(rng.integers(3))), difficulty, limit)

    monkeypatch.setattr(SudokuFamily, "generate_group", few)
    out = build_dataset(BuildSpec("sudoku", 4, "easy", train=1, test=2), tmp_path / "data")
    rows = np.concatenate([PuzzleDataset(out, s).inputs for s in SPLITS])
    assert len(np.unique(rows, axis=0)) == 3


def test_test_split_is_filled_first(built):
    train = PuzzleDataset(built["maze"], "train")
    test = PuzzleDataset(built["maze"], "test")
    assert test.group.max() < train.group.min()


@pytest.mark.parametrize("name", SPECS)
def test_labels_solve_their_inputs(built, name):
    ds = PuzzleDataset(built[name], "train")
    family = ds.family
    for inputs, labels in zip(ds.inputs, ds.labels, strict=True):
        puzzle, answer = family.decode(inputs), family.decode(labels)
        assert family.grade(puzzle, answer).solved
        assert family.solve(puzzle).count >= 1


def test_sudoku_difficulty_matches_the_tier(built):
    ds = PuzzleDataset(built["sudoku9"], "test")
    for tokens, rating in zip(ds.inputs, ds.difficulty, strict=True):
        puzzle = ds.family.decode(tokens)
        solved = ds.family.solve(puzzle)
        assert solved.count == 1
        assert ds.family.tier_of(puzzle, solved.difficulty) == "easy"
        assert rating == 0.0  # singles alone solve an easy puzzle: no dead ends


def test_existing_out_without_force_is_refused(built):
    before = digests(built["sudoku4"])
    with pytest.raises(DatasetError, match="already exists"):
        build_dataset(BuildSpec("sudoku", 4, "easy", train=2, test=1), built["sudoku4"])
    assert digests(built["sudoku4"]) == before


def test_force_replaces_the_old_dataset(tmp_path):
    out = tmp_path / "data"
    build_dataset(BuildSpec("sudoku", 4, "easy", train=5, test=5), out)
    (out / "stale.txt").write_text("old")
    build_dataset(BuildSpec("sudoku", 4, "easy", train=3, test=2), out, force=True)
    assert not (out / "stale.txt").exists()
    assert PuzzleDataset(out, "test").inputs.shape == (2, 16)
    assert leftovers(tmp_path, {"data"}) == []


def test_force_fills_an_empty_directory(tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    build_dataset(BuildSpec("sudoku", 4, "easy", train=3, test=2), out, force=True)
    assert len(PuzzleDataset(out, "train")) == 3


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_force_never_replaces_what_is_not_a_dataset(tmp_path, kind):
    out = tmp_path / "data"
    if kind == "file":
        out.write_text("not a dataset")
    else:
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not a dataset"):
        build_dataset(BuildSpec("sudoku", 4, "easy", train=3, test=2), out, force=True)
    assert out.exists() and leftovers(tmp_path, {"data"}) == []


def test_unknown_difficulty_is_refused_before_writing(tmp_path):
    with pytest.raises(DatasetError, match="unknown difficulty 'bogus'"):
        build_dataset(BuildSpec("maze", 9, "bogus", train=2, test=1), tmp_path / "data")
    assert leftovers(tmp_path, set()) == []


@given(st.integers(0, 5000),
       st.lists(st.floats(0.01, 100, allow_nan=False), min_size=1, max_size=4))
def test_a_mix_splits_a_count_into_whole_shares_that_add_up(count, weights):
    tiers = ["easy", "medium", "hard", "extreme"][: len(weights)]
    mix = tier_mix(",".join(f"{t}:{w!r}" for t, w in zip(tiers, weights, strict=True)), tiers)
    counts = shares_of(count, mix)
    assert sum(counts) == count and min(counts) >= 0
    for n, (_, share) in zip(counts, mix, strict=True):
        assert abs(n - count * share) < 1  # each within one puzzle of its exact share


@pytest.mark.parametrize(("difficulty", "message"), [
    ("medium,bogus", "unknown difficulty 'bogus'"),
    ("hard:2,hard:1", "'hard' appears twice"),
    ("easy:0,hard", "weight of 'easy'.*positive number, not '0'"),
    ("easy:x", "weight of 'easy'.*not 'x'"),
    ("easy:nan", "weight of 'easy'"),
    ("easy:-1", "weight of 'easy'"),
])
def test_a_bad_mix_is_refused_by_name(difficulty, message):
    with pytest.raises(DatasetError, match=message):
        tier_mix(difficulty, ("easy", "medium", "hard", "extreme"))


def test_a_mix_of_tiers_holds_each_tier_in_its_share_and_is_deterministic(tmp_path):
    spec = BuildSpec("sudoku", 6, "easy:1,medium:3", train=20, test=8, seed=4)
    first = build_dataset(spec, tmp_path / "a")
    build_dataset(spec, tmp_path / "b", workers=2)
    for split, wanted in (("train", {"easy": 5, "medium": 15}), ("test", {"easy": 2, "medium": 6})):
        ds = PuzzleDataset(first, split)
        tiers = Counter(ds.family.tier_of(ds.family.decode(x), float(r))
                        for x, r in zip(ds.inputs, ds.difficulty, strict=True))
        assert tiers == wanted
        for name in ARRAYS:
            assert (tmp_path / "a" / split / f"{name}.npy").read_bytes() == \
                (tmp_path / "b" / split / f"{name}.npy").read_bytes()
    # no puzzle twice, and no search chain split between train and test
    ds_train, ds_test = PuzzleDataset(first, "train"), PuzzleDataset(first, "test")
    rows = {bytes(x) for x in ds_train.inputs} | {bytes(x) for x in ds_test.inputs}
    assert len(rows) == 28
    assert not set(ds_train.group.tolist()) & set(ds_test.group.tolist())
    assert json.loads((first / "meta.json").read_text())["difficulty"] == "easy:1,medium:3"


def test_a_single_tier_keeps_its_bytes_whatever_the_mix_code_does(tmp_path):
    # a mix of one tier is that tier: the same stream as ever, so old seeds keep their puzzles
    plain = build_dataset(BuildSpec("sudoku", 6, "medium", train=6, test=2, seed=9), tmp_path / "a")
    weighted = build_dataset(BuildSpec("sudoku", 6, "medium:5", train=6, test=2, seed=9),
                             tmp_path / "b")
    for split in SPLITS:
        for name in ARRAYS:
            assert (plain / split / f"{name}.npy").read_bytes() == \
                (weighted / split / f"{name}.npy").read_bytes()


def _fail_after(monkeypatch, calls: int) -> None:
    """Make Sudoku generation raise on its ``calls``-th group."""
    real = SudokuFamily.generate_group
    seen = []

    def flaky(self, *args, **kwargs):
        seen.append(1)
        if len(seen) == calls:
            raise RuntimeError("generator crashed")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(SudokuFamily, "generate_group", flaky)


def test_failure_during_generation_leaves_no_dataset(tmp_path, monkeypatch):
    _fail_after(monkeypatch, 5)
    with pytest.raises(RuntimeError, match="generator crashed"):
        build_dataset(BuildSpec("sudoku", 4, "easy", train=8, test=4), tmp_path / "data")
    assert leftovers(tmp_path, set()) == []


def test_failure_during_generation_keeps_the_old_dataset(built, tmp_path, monkeypatch):
    out = shutil.copytree(built["sudoku4"], tmp_path / "data")
    before = digests(out)
    _fail_after(monkeypatch, 5)
    with pytest.raises(RuntimeError, match="generator crashed"):
        build_dataset(BuildSpec("sudoku", 4, "easy", train=8, test=4, seed=9), out, force=True)
    assert digests(out) == before
    assert leftovers(tmp_path, {"data"}) == []


def test_failure_while_writing_keeps_the_old_dataset_and_cleans_up(built, tmp_path, monkeypatch):
    out = shutil.copytree(built["sudoku4"], tmp_path / "data")
    before = digests(out)
    real_save, saved = np.save, []

    def failing_save(*args, **kwargs):
        saved.append(1)
        if len(saved) == 3:
            raise OSError("disk full")
        return real_save(*args, **kwargs)

    monkeypatch.setattr(np, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        build_dataset(BuildSpec("sudoku", 4, "easy", train=3, test=2, seed=9), out, force=True)
    assert digests(out) == before
    assert leftovers(tmp_path, {"data"}) == []


# --- reading ----------------------------------------------------------------------------------


@pytest.fixture
def copy(built, tmp_path) -> Path:
    return shutil.copytree(built["sudoku4"], tmp_path / "copy")


def test_dataset_reads_the_split(built):
    ds = PuzzleDataset(built["sudoku4"], "test")
    assert len(ds) == 20 and ds.split == "test"
    assert isinstance(ds.family, SudokuFamily) and ds.family.size == 4
    assert np.array_equal(ds.group, np.load(built["sudoku4"] / "test" / "group.npy"))


def test_missing_meta_json(copy):
    (copy / "meta.json").unlink()
    with pytest.raises(DatasetError, match="no meta.json"):
        PuzzleDataset(copy)


def test_corrupt_meta_json_names_line_and_column(copy):
    (copy / "meta.json").write_text('{\n  "family": "sudoku",\n  "size": 4,,\n}\n')
    with pytest.raises(DatasetError, match=r"meta\.json:3:\d+: invalid JSON"):
        PuzzleDataset(copy)


@pytest.mark.parametrize("text", ["[]", "42", "null", '"sudoku"'])
def test_meta_json_that_is_not_an_object(copy, text):
    (copy / "meta.json").write_text(text)
    with pytest.raises(DatasetError, match="meta.json"):
        PuzzleDataset(copy)


def test_meta_json_missing_keys(copy):
    meta = json.loads((copy / "meta.json").read_text())
    del meta["seq_len"]
    (copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="missing keys seq_len"):
        PuzzleDataset(copy)


@pytest.mark.parametrize("name", ARRAYS)
def test_missing_array(copy, name):
    (copy / "test" / f"{name}.npy").unlink()
    PuzzleDataset(copy, "train")  # the other split still loads
    with pytest.raises(DatasetError, match=f"{name}.npy is missing"):
        PuzzleDataset(copy, "test")


def save_with_hash(folder: Path, name: str, array: np.ndarray) -> None:
    """Replace an array and record its new hash, as a hand edit that knew the format would: the
    checks after the hash must then catch it."""
    path = folder / name
    np.save(path, array, allow_pickle=True)
    meta = json.loads((folder / "meta.json").read_text())
    meta["sha256"][name] = hashlib.sha256(path.read_bytes()).hexdigest()
    (folder / "meta.json").write_text(json.dumps(meta))


def inputs_of(folder: Path) -> np.ndarray:
    return np.load(folder / "train" / "inputs.npy")


# (what is done to train/, what the one-line error must say); every case also names the file
DAMAGES = {
    "token out of range": (lambda d: save_with_hash(d, "train/inputs.npy", np.where(
        np.arange(inputs_of(d).size).reshape(inputs_of(d).shape) == 5, 200, inputs_of(d)
    ).astype(np.uint8)), r"inputs.npy: row 0, cell 5 holds token 200"),
    "padding row": (lambda d: save_with_hash(d, "train/labels.npy", np.concatenate(
        [np.zeros((1, 16), np.uint8), np.load(d / "train/labels.npy")[1:]])),
        "labels.npy: row 0, cell 0 holds token 0"),
    "wrong dtype": (lambda d: save_with_hash(d, "train/inputs.npy", inputs_of(d).astype(
        np.int64)), "inputs.npy: dtype int64, expected uint8"),
    "labels of another length": (lambda d: save_with_hash(d, "train/labels.npy", np.load(
        d / "train/labels.npy")[:, :9]), r"labels.npy: shape \(40, 9\), expected \(40, 16\)"),
    "a row short": (lambda d: save_with_hash(d, "train/group.npy", np.load(
        d / "train/group.npy")[:-1]), r"group.npy: shape \(39,\), expected \(40,\)"),
    "not finite": (lambda d: save_with_hash(d, "train/difficulty.npy", np.full(
        40, np.nan, np.float32)), "difficulty.npy: holds a value that is not finite"),
    "pickled objects": (lambda d: save_with_hash(d, "train/group.npy", np.array(
        [{"x": 1}] * 40, dtype=object)), "group.npy: not a numpy array file"),
    "truncated": (lambda d: save_with_hash(d, "train/inputs.npy", np.zeros(0)) or (
        d / "train/inputs.npy").write_bytes(b"\x93NUMPY"), "inputs.npy: contents do not match"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_array_is_refused_by_name(copy, damage):
    harm, message = DAMAGES[damage]
    harm(copy)
    PuzzleDataset(copy, "test")  # the other split is untouched and still loads
    with pytest.raises(DatasetError, match=message):
        PuzzleDataset(copy, "train")


def test_counts_that_disagree_with_the_arrays(copy):
    meta = json.loads((copy / "meta.json").read_text())
    meta["counts"]["train"] = 41
    (copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="40 puzzles, but meta.json counts 41"):
        PuzzleDataset(copy, "train")


@pytest.mark.parametrize(("key", "value", "message"), [
    ("size", "four", "'size' must be a positive integer"),
    ("size", 0, "'size' must be a positive integer"),
    ("counts", [40, 20], "'counts' must be an object"),
    ("sha256", {"train/inputs.npy": 5}, "'sha256' must be an object of hex digests"),
    ("family", "chess", "not a puzzle family this version knows"),
    ("seq_len", 81, "seq_len 81 does not fit a 4×4 sudoku"),
    ("vocab_size", 11, "vocab_size 11 does not fit"),
])
def test_meta_fields_are_checked(copy, key, value, message):
    meta = json.loads((copy / "meta.json").read_text())
    meta[key] = value
    (copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match=message):
        PuzzleDataset(copy)


@given(st.integers(0, 10**9), st.integers(1, 255))
@settings(max_examples=25)
def test_any_changed_byte_of_an_array_is_refused(tmp_path_factory, position, flip):
    """Whatever byte of whatever array changes, loading refuses the split by the file's name."""
    built = ORIGINAL.get("sudoku4") or ORIGINAL.setdefault(
        "sudoku4", build_dataset(SUDOKU4, tmp_path_factory.mktemp("flip") / "d"))
    folder = tmp_path_factory.mktemp("flipped") / "d"
    shutil.copytree(built, folder)
    name = ARRAYS[position % len(ARRAYS)]
    path = folder / "test" / f"{name}.npy"
    raw = bytearray(path.read_bytes())
    raw[position % len(raw)] ^= flip
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match=f"test/{name}.npy"):
        PuzzleDataset(folder, "test")


ORIGINAL: dict[str, Path] = {}  # one dataset for every example of the property above


def test_unknown_split(built):
    with pytest.raises(DatasetError, match="unknown split 'valid'"):
        PuzzleDataset(built["sudoku4"], "valid")


def test_a_fresh_dataset_passes_every_check(built):
    for name in built:
        for split in SPLITS:
            PuzzleDataset(built[name], split)


# --- batches ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sudoku_train(built) -> PuzzleDataset:
    return PuzzleDataset(built["sudoku4"], "train")


@pytest.fixture(scope="module")
def maze_train(built) -> PuzzleDataset:
    return PuzzleDataset(built["maze"], "train")


def row_ids(ds: PuzzleDataset, batches) -> list[int]:
    """Dataset row of each (unaugmented) batch row."""
    index = {row.tobytes(): i for i, row in enumerate(ds.inputs)}
    return [index[row.numpy().astype(np.uint8).tobytes()] for x, _ in batches for row in x]


def test_batches_are_int64_tensors_of_the_batch_shape(sudoku_train):
    batches = list(BatchLoader(sudoku_train, 16, seed=1).epoch(0))
    assert len(batches) == 2
    for x, y in batches:
        assert isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)
        assert x.dtype == y.dtype == torch.int64
        assert x.shape == y.shape == (16, 16)


def test_same_seed_and_epoch_give_the_same_batches(sudoku_train):
    a = list(BatchLoader(sudoku_train, 8, seed=4).epoch(3))
    b = list(BatchLoader(sudoku_train, 8, seed=4).epoch(3))
    assert len(a) == len(b) == 5
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_other_epochs_and_seeds_give_other_batches(sudoku_train):
    def first(seed: int, epoch: int) -> torch.Tensor:
        return next(iter(BatchLoader(sudoku_train, 40, seed=seed).epoch(epoch)))[0]

    assert not torch.equal(first(0, 0), first(0, 1))
    assert not torch.equal(first(0, 0), first(1, 0))


def test_augmentation_differs_between_epochs(sudoku_train):
    loader = BatchLoader(sudoku_train, 40, shuffle=False)
    first, second = (next(iter(loader.epoch(e)))[0] for e in (0, 1))
    assert not torch.equal(first, second)


def test_without_shuffle_or_augment_batches_are_the_rows_in_order(sudoku_train):
    loader = BatchLoader(sudoku_train, 16, augment=False, shuffle=False, drop_last=False)
    x = torch.cat([x for x, _ in loader.epoch(0)])
    assert torch.equal(x, torch.from_numpy(sudoku_train.inputs.astype(np.int64)))


def test_shuffled_epoch_visits_every_row_once(sudoku_train):
    loader = BatchLoader(sudoku_train, 10, seed=2, augment=False)
    ids = row_ids(sudoku_train, loader.epoch(0))
    assert sorted(ids) == list(range(40)) and ids != list(range(40))


@pytest.mark.parametrize("dataset", ["sudoku_train", "maze_train"])
def test_augmented_batches_are_still_solved(request, dataset):
    ds = request.getfixturevalue(dataset)
    family = ds.family
    x, y = next(iter(BatchLoader(ds, len(ds), seed=7, shuffle=False).epoch(0)))
    assert not torch.equal(x, torch.from_numpy(ds.inputs.astype(np.int64)))  # not the identity
    for inputs, labels in zip(x.numpy(), y.numpy(), strict=True):
        puzzle, answer = family.decode(inputs), family.decode(labels)
        assert family.grade(puzzle, answer).solved


def test_augmented_maze_batches_keep_their_path_lengths(maze_train):
    x, y = next(iter(BatchLoader(maze_train, 30, seed=3, shuffle=False).epoch(0)))
    family = maze_train.family
    lengths = [family.solve(family.decode(row)).difficulty for row in x.numpy()]
    assert np.array_equal(lengths, maze_train.difficulty)


def test_ranks_partition_an_epoch(sudoku_train):
    def ids(rank: int) -> list[int]:
        loader = BatchLoader(
            sudoku_train, 6, seed=5, augment=False, drop_last=False, rank=rank, world_size=2
        )
        return row_ids(sudoku_train, loader.epoch(1))

    first, second = ids(0), ids(1)
    assert len(first) == len(second) == 20
    assert not set(first) & set(second)
    assert sorted(first + second) == list(range(40))


def test_ranks_drop_the_uneven_remainder(built):
    ds = PuzzleDataset(built["maze_medium"], "test")  # 8 rows
    loaders = [
        BatchLoader(ds, 8, augment=False, drop_last=False, rank=rank, world_size=3)
        for rank in (0, 1, 2)
    ]
    ids = [row_ids(ds, loader.epoch(0)) for loader in loaders]
    assert [len(i) for i in ids] == [2, 2, 2]
    assert len(set(sum(ids, []))) == 6


@pytest.mark.parametrize(
    ("batch_size", "drop_last", "world_size", "sizes"),
    [
        (16, True, 1, [16, 16]),
        (16, False, 1, [16, 16, 8]),
        (40, True, 1, [40]),
        (41, True, 1, []),
        (41, False, 1, [40]),
        (8, True, 2, [8, 8]),
        (8, False, 2, [8, 8, 4]),
    ],
)
def test_drop_last_and_batches_per_epoch(sudoku_train, batch_size, drop_last, world_size, sizes):
    loader = BatchLoader(sudoku_train, batch_size, drop_last=drop_last, world_size=world_size)
    assert loader.batches_per_epoch() == len(sizes)
    assert [len(x) for x, _ in loader.epoch(0)] == sizes


def test_batch_size_must_be_positive(sudoku_train):
    with pytest.raises(ValueError, match="batch_size"):
        BatchLoader(sudoku_train, 0)


@pytest.mark.parametrize("dataset", ["sudoku_train", "maze_train"])
def test_augment_tokens_keeps_padding(request, dataset):
    ds = request.getfixturevalue(dataset)
    inputs, labels = ds.inputs[:12].copy(), ds.labels[:12].copy()
    inputs[:, -3:] = 0
    labels[:, :2] = 0
    rng = np.random.default_rng(0)
    new_inputs, new_labels = augment_tokens(ds.family, rng, inputs, labels)
    assert ((new_inputs == 0).sum(axis=1) == 3).all()
    assert ((new_labels == 0).sum(axis=1) == 2).all()
    # the other cells are moved and relabelled: how often each token occurs is kept
    for before, after in zip(inputs, new_inputs, strict=True):
        counts = sorted(Counter(before[before > 0].tolist()).values())
        assert sorted(Counter(after[after > 0].tolist()).values()) == counts
