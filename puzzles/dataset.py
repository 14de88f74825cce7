"""Datasets on disk, and the loader that feeds token batches to training with random symmetries.

A dataset is a directory::

    meta.json               family, its options, difficulty, seed, counts, hashes, versions
    train/inputs.npy        [N, L] uint8 puzzle tokens      (L = cells per puzzle)
    train/labels.npy        [N, L] uint8 solution tokens
    train/difficulty.npy    [N] float32 rating (Sudoku: mean dead ends; maze: path length)
    train/group.npy         [N] int32 search chain each puzzle came from
    test/...                the same for the test split

Building is deterministic: puzzle group ``i`` is generated from the ``i``-th child of the seed,
whatever the number of worker processes, so the same command gives the same bytes. Groups fill
the test split first, then train; a group never straddles the split and no puzzle (by the
family's dedupe key) appears twice. The directory is written under a temporary name and renamed
into place, so a killed build never leaves a complete-looking dataset.

This module deliberately does not know any model: batches are plain token tensors.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import multiprocessing
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from puzzles import make_family
from puzzles.base import PuzzleFamily
from puzzles.files import read_json_object, replace_dir

if TYPE_CHECKING:
    import torch

FORMAT_VERSION = 1
GENERATOR_VERSION = 1  # bump when a generator change alters the puzzles a seed gives
SPLITS = ("train", "test")
ARRAYS = ("inputs", "labels", "difficulty", "group")
MAX_GROUPS_WITHOUT_NEWS = 2000  # a family this short of new puzzles cannot fill the request


class DatasetError(ValueError):
    """A dataset directory is missing, incomplete or not one of ours."""


# --- building ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildSpec:
    """Everything that determines a dataset's bytes."""

    family: str
    size: int
    difficulty: str  # a tier ("hard"), or a mix of tiers with weights ("medium:1,hard:2")
    train: int
    test: int
    seed: int = 0
    options: tuple[tuple[str, Any], ...] = ()  # family constructor options, sorted
    group_size: int = 8  # most puzzles one search chain may contribute

    part: int | None = None  # which tier of a mix this is: each draws from its own stream

    def make_family(self) -> PuzzleFamily:
        return make_family(self.family, self.size, **dict(self.options))


def tier_mix(difficulty: str, known: tuple[str, ...] | list[str]) -> list[tuple[str, float]]:
    """The tiers a ``difficulty`` names, each with its share: ``"hard"`` is all ``hard``;
    ``"medium:1,hard:2"`` is a third ``medium`` and two thirds ``hard``."""
    mix: dict[str, float] = {}
    for item in difficulty.split(","):
        tier, _, weight = item.strip().partition(":")
        if tier not in known:
            raise DatasetError(f"unknown difficulty {tier!r} (tiers here: {', '.join(known)}; "
                               "a mix reads tier:weight,tier:weight)")
        if tier in mix:
            raise DatasetError(f"tier {tier!r} appears twice in {difficulty!r}")
        try:
            share = float(weight) if weight else 1.0
        except ValueError:
            share = -1.0
        if not (share > 0 and np.isfinite(share)):
            raise DatasetError(f"the weight of {tier!r} in {difficulty!r} must be a positive "
                               f"number, not {weight!r}")
        mix[tier] = share
    total = sum(mix.values())
    return [(tier, share / total) for tier, share in mix.items()]


def shares_of(count: int, mix: list[tuple[str, float]]) -> list[int]:
    """``count`` split by the mix's shares into whole numbers that add up to ``count``
    (largest remainders get the leftovers, the first tier on ties)."""
    exact = [count * share for _, share in mix]
    counts = [int(x) for x in exact]
    by_remainder = sorted(range(len(mix)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in by_remainder[: count - sum(counts)]:
        counts[i] += 1
    return counts


def _generate_group(args: tuple[BuildSpec, int]) -> list[tuple[np.ndarray, np.ndarray, float]]:
    spec, index = args
    family = spec.make_family()
    # a single tier keeps the stream it has always had, so its datasets keep their bytes
    entropy = [spec.seed, index] if spec.part is None else [spec.seed, spec.part, index]
    rng = np.random.default_rng(np.random.SeedSequence(entropy))
    if hasattr(family, "generate_group"):
        return family.generate_group(rng, spec.difficulty, spec.group_size)
    return [family.generate(rng, spec.difficulty)]


def _groups(spec: BuildSpec, workers: int) -> Iterator[list]:
    """Puzzle groups 0, 1, 2, ... in order, generated by ``workers`` processes."""
    indices = ((spec, i) for i in range(10**12))
    if workers <= 1:
        yield from map(_generate_group, indices)
        return
    # spawn: forked children would inherit torch's thread pools and numba's state
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield from pool.imap(_generate_group, indices, chunksize=4)


def generate_splits(
    spec: BuildSpec, workers: int = 1, progress: Callable[[int], None] | None = None
) -> dict[str, dict[str, np.ndarray]]:
    """The arrays of each split, in memory. A mix of tiers is each tier's share generated on
    its own and put one after the other (the loader shuffles); the tiers are disjoint, so no
    puzzle can come from two."""
    family = spec.make_family()
    mix = tier_mix(spec.difficulty, family.difficulties)
    if len(mix) == 1:
        return _generate_tier(replace(spec, difficulty=mix[0][0]), family, workers, progress)
    trains, tests = shares_of(spec.train, mix), shares_of(spec.test, mix)
    parts = []
    for part, ((tier, _), train, test) in enumerate(zip(mix, trains, tests, strict=True)):
        one = replace(spec, difficulty=tier, train=train, test=test, part=part)
        arrays = _generate_tier(one, family, workers, progress)
        for split in arrays.values():  # a group names its tier's search chain
            split["group"] = split["group"] * len(mix) + part
        parts.append(arrays)
    return {split: {name: np.concatenate([p[split][name] for p in parts]) for name in ARRAYS}
            for split in SPLITS}


def _generate_tier(
    spec: BuildSpec, family: PuzzleFamily, workers: int, progress: Callable[[int], None] | None
) -> dict[str, dict[str, np.ndarray]]:
    wanted = {"test": spec.test, "train": spec.train}
    items: dict[str, list] = {"test": [], "train": []}
    seen: set[bytes] = set()
    split_order = [s for s in ("test", "train") if wanted[s] > 0]
    groups = _groups(spec, workers)
    groups_without_news = 0
    for index, group in enumerate(groups):
        if not split_order:
            break
        split = split_order[0]
        groups_without_news += 1
        for puzzle, solution, rating in group:
            key = family.dedupe_key(puzzle, solution)
            if key in seen or len(items[split]) >= wanted[split]:
                continue
            seen.add(key)
            groups_without_news = 0
            items[split].append((puzzle, solution, rating, index))
            if progress:
                progress(1)
        if len(items[split]) >= wanted[split]:
            split_order.pop(0)
        if groups_without_news >= MAX_GROUPS_WITHOUT_NEWS:
            groups.close()
            raise DatasetError(
                f"only {len(seen)} distinct {spec.difficulty} puzzles found after "
                f"{MAX_GROUPS_WITHOUT_NEWS} draws in a row gave none new; ask for fewer"
            )
    groups.close()
    return {split: _to_arrays(family, rows) for split, rows in items.items()}


def _to_arrays(family: PuzzleFamily, rows: list) -> dict[str, np.ndarray]:
    length = family.seq_len
    if not rows:
        empty = np.zeros((0, length), dtype=np.uint8)
        return {
            "inputs": empty,
            "labels": empty.copy(),
            "difficulty": np.zeros(0, dtype=np.float32),
            "group": np.zeros(0, dtype=np.int32),
        }
    return {
        "inputs": np.stack([family.encode(p) for p, _, _, _ in rows]),
        "labels": np.stack([family.encode(s) for _, s, _, _ in rows]),
        "difficulty": np.array([r for _, _, r, _ in rows], dtype=np.float32),
        "group": np.array([g for _, _, _, g in rows], dtype=np.int32),
    }


def build_dataset(
    spec: BuildSpec,
    out: str | Path,
    *,
    workers: int = 1,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Generate and write a dataset directory atomically; returns its path."""
    out = Path(out)
    if out.exists() and not force:
        raise DatasetError(f"{out} already exists (use --force to replace it)")
    is_dataset = (out / "meta.json").is_file()
    if out.exists() and not is_dataset and not (out.is_dir() and not any(out.iterdir())):
        raise DatasetError(f"{out} exists and is not a dataset; --force replaces only datasets")
    family = spec.make_family()
    tier_mix(spec.difficulty, family.difficulties)  # a bad tier fails before any work
    splits = generate_splits(spec, workers, progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _write_dir(tmp, spec, family, splits)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _write_dir(
    tmp: Path, spec: BuildSpec, family: PuzzleFamily, splits: dict[str, dict[str, np.ndarray]]
) -> None:
    hashes = {}
    for split, arrays in splits.items():
        (tmp / split).mkdir(parents=True)
        for name, array in arrays.items():
            path = tmp / split / f"{name}.npy"
            np.save(path, array, allow_pickle=False)
            hashes[f"{split}/{name}.npy"] = hashlib.sha256(path.read_bytes()).hexdigest()
    meta = {
        "format_version": FORMAT_VERSION,
        "generator_version": GENERATOR_VERSION,
        "family": spec.family,
        "size": spec.size,
        "options": dict(spec.options),
        "difficulty": spec.difficulty,
        "seed": spec.seed,
        "group_size": spec.group_size,
        "counts": {split: int(len(a["inputs"])) for split, a in splits.items()},
        "seq_len": family.seq_len,
        "vocab_size": family.vocab_size,
        "sha256": hashes,
    }
    # meta.json last: a directory without it is not a dataset
    (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


# --- reading ----------------------------------------------------------------------------------


def read_meta(path: str | Path) -> dict[str, Any]:
    """A dataset's ``meta.json``, checked field by field, so that later code can trust it."""
    meta_path = Path(path) / "meta.json"
    if not meta_path.is_file():
        raise DatasetError(f"{path} is not a dataset directory (no meta.json)")
    meta = read_json_object(meta_path, DatasetError)
    missing = {"family", "size", "counts", "seq_len", "vocab_size"} - set(meta)
    if missing:
        raise DatasetError(f"{meta_path}: missing keys {', '.join(sorted(missing))}")
    _check_meta_fields(meta, meta_path)
    return meta


def _check_meta_fields(meta: dict[str, Any], meta_path: Path) -> None:
    def integer(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)

    checks = [
        ("family", isinstance(meta["family"], str), "a family name"),
        ("size", integer(meta["size"]) and meta["size"] > 0, "a positive integer"),
        ("seq_len", integer(meta["seq_len"]), "an integer"),
        ("vocab_size", integer(meta["vocab_size"]), "an integer"),
        ("counts", isinstance(meta["counts"], dict)
         and all(integer(v) and v >= 0 for v in meta["counts"].values()),
         "an object of puzzle counts"),
        ("options", isinstance(meta.get("options", {}), dict), "an object"),
        ("sha256", isinstance(meta.get("sha256", {}), dict)
         and all(isinstance(v, str) for v in meta.get("sha256", {}).values()),
         "an object of hex digests"),
    ]
    for key, ok, wanted in checks:
        if not ok:
            raise DatasetError(f"{meta_path}: {key!r} must be {wanted}, not {meta[key]!r}")
    try:
        family = family_of(meta)
    except (TypeError, ValueError) as err:
        raise DatasetError(f"{meta_path}: not a puzzle family this version knows ({err})") from None
    for key in ("seq_len", "vocab_size"):
        if meta[key] != getattr(family, key):
            raise DatasetError(f"{meta_path}: {key} {meta[key]} does not fit a "
                               f"{meta['size']}×{meta['size']} {meta['family']} "
                               f"({getattr(family, key)})")


def changed_array(before: dict[str, str], now: dict[str, str]) -> str:
    """The first array whose recorded sha256 differs between two ``meta.json`` hash maps."""
    names = sorted(set(before) | set(now))
    return next((n for n in names if before.get(n) != now.get(n)), "an array")


def family_of(meta: dict[str, Any]) -> PuzzleFamily:
    return make_family(meta["family"], meta["size"], **meta.get("options", {}))


# what each array must hold: dtype, and whether its values are tokens of the family
ARRAY_DTYPES = {"inputs": np.uint8, "labels": np.uint8, "difficulty": np.float32,
                "group": np.int32}


def load_array(file: Path, digest: str | None = None) -> np.ndarray:
    """One ``.npy`` array, read once: checked against its recorded sha256 (when there is one)
    and parsed without unpickling. Every failure names the file."""
    if not file.is_file():
        raise DatasetError(f"{file} is missing")
    try:
        raw = file.read_bytes()
    except OSError as err:
        raise DatasetError(f"{file}: cannot be read ({err.strerror})") from None
    if digest is not None and hashlib.sha256(raw).hexdigest() != digest:
        raise DatasetError(f"{file}: contents do not match the sha256 in meta.json (the file "
                           "was changed or damaged; rebuild the dataset)")
    try:
        return np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DatasetError(f"{file}: not a numpy array file ({err})") from None


class PuzzleDataset:
    """One split of a dataset directory, held in memory (datasets are small).

    Loading checks everything later code relies on, so that a damaged or hand-edited dataset is
    refused with the file named instead of training or scoring silently wrong: each array
    against the sha256 that ``meta.json`` records for it (hashing the bytes as they are read
    costs about a millisecond a megabyte: BENCHMARKS.md), dtypes, shapes, the counts, and that
    every token is one of the family's (0, padding, never occurs in a fixed-size grid)."""

    def __init__(self, path: str | Path, split: str = "train") -> None:
        if split not in SPLITS:
            raise DatasetError(f"unknown split {split!r}: choose from {', '.join(SPLITS)}")
        self.path = Path(path)
        self.meta = read_meta(path)
        self.split = split
        self.family = family_of(self.meta)
        digests = self.meta.get("sha256", {})
        arrays = {name: load_array(self.path / split / f"{name}.npy",
                                   digests.get(f"{split}/{name}.npy"))
                  for name in ARRAYS}
        self._check(arrays)
        self.inputs: np.ndarray = arrays["inputs"]  # [N, L] uint8
        self.labels: np.ndarray = arrays["labels"]  # [N, L] uint8
        self.difficulty: np.ndarray = arrays["difficulty"]  # [N] float32
        self.group: np.ndarray = arrays["group"]  # [N] int32

    def _check(self, arrays: dict[str, np.ndarray]) -> None:
        folder = self.path / self.split
        rows = len(arrays["inputs"]) if arrays["inputs"].ndim else 0
        shapes = {"inputs": (rows, self.family.seq_len), "labels": (rows, self.family.seq_len),
                  "difficulty": (rows,), "group": (rows,)}
        for name, array in arrays.items():
            if array.dtype != ARRAY_DTYPES[name]:
                raise DatasetError(f"{folder / name}.npy: dtype {array.dtype}, expected "
                                   f"{np.dtype(ARRAY_DTYPES[name])}")
            if array.shape != shapes[name]:
                raise DatasetError(f"{folder / name}.npy: shape {array.shape}, expected "
                                   f"{shapes[name]}")
        counted = self.meta["counts"].get(self.split)
        if counted is not None and counted != rows:
            raise DatasetError(f"{folder}: {rows} puzzles, but meta.json counts {counted}")
        for name in ("inputs", "labels"):
            tokens = arrays[name]
            if tokens.size and (tokens.min() < 1 or tokens.max() >= self.family.vocab_size):
                bad = np.argwhere((tokens < 1) | (tokens >= self.family.vocab_size))[0]
                raise DatasetError(
                    f"{folder / name}.npy: row {bad[0]}, cell {bad[1]} holds token "
                    f"{tokens[tuple(bad)]}, not one of {self.family.name}'s "
                    f"(1-{self.family.vocab_size - 1})")
        if not np.isfinite(arrays["difficulty"]).all():
            raise DatasetError(f"{folder / 'difficulty'}.npy: holds a value that is not finite")

    def __len__(self) -> int:
        return len(self.inputs)

    def head(self, count: int) -> PuzzleDataset:
        """The first ``count`` puzzles, as a dataset sharing this one's arrays."""
        part = copy.copy(self)
        for name in ARRAYS:
            setattr(part, name, getattr(self, name)[:count])
        return part


def augment_tokens(
    family: PuzzleFamily, rng: np.random.Generator, inputs: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A fresh random symmetry per row of ``[B, L]`` token arrays, the same for both arrays."""
    symmetries = [family.random_symmetry(rng) for _ in range(len(inputs))]
    perm = np.stack([s.cell_perm for s in symmetries])  # [B, L]
    value_map = np.stack([s.value_map for s in symmetries])  # [B, V]
    rows = np.arange(len(inputs))[:, None]
    inputs = value_map[rows, np.take_along_axis(inputs, perm, axis=1)]
    labels = value_map[rows, np.take_along_axis(labels, perm, axis=1)]
    return inputs, labels


class BatchLoader:
    """Shuffled, augmented token batches, seeded by (seed, epoch) so a resumed run sees the
    same batches. With ``world_size > 1`` each rank takes its own slice of every epoch."""

    def __init__(
        self,
        dataset: PuzzleDataset,
        batch_size: int,
        *,
        seed: int = 0,
        augment: bool = True,
        shuffle: bool = True,
        drop_last: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.dataset, self.batch_size = dataset, batch_size
        self.seed, self.augment, self.shuffle, self.drop_last = seed, augment, shuffle, drop_last
        self.rank, self.world_size = rank, world_size

    def batches_per_epoch(self) -> int:
        per_rank = len(self.dataset) // self.world_size
        full, rest = divmod(per_rank, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Batches ``(inputs [B, L], labels [B, L])`` as int64 tensors."""
        import torch  # here, not at the top: `hrm check` and `hrm data` start faster
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch, self.rank]))
        order_rng = np.random.default_rng(np.random.SeedSequence([self.seed, epoch]))
        count = len(self.dataset)
        order = order_rng.permutation(count) if self.shuffle else np.arange(count)
        order = order[: count - count % self.world_size][self.rank :: self.world_size]
        for b in range(self.batches_per_epoch()):
            rows = order[b * self.batch_size : (b + 1) * self.batch_size]
            inputs, labels = self.dataset.inputs[rows], self.dataset.labels[rows]
            if self.augment:
                inputs, labels = augment_tokens(self.dataset.family, rng, inputs, labels)
            yield torch.from_numpy(inputs.astype(np.int64)), torch.from_numpy(
                labels.astype(np.int64)
            )
