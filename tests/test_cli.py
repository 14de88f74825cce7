"""Tests for the ``hrm`` command: output through click's runner, exit codes and error lines
through ``main`` (in this process and as a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from hrm.cli import cli
from puzzles.dataset import PuzzleDataset

UNIQUE = "53..7....6..195....98....6.8...6...34..8.3..17...2...6.6....28....419..5....8..79"
UNIQUE_SOLUTION_ROW = " 5 3 4 | 6 7 8 | 9 1 2 "
SEVERAL = "." * 81
# No digit repeats, but r1c9 has no candidate: its row holds 1-8 and its column a 9.
NO_SOLUTION = "12345678." + "........9" + "." * 63
GARBAGE = UNIQUE[:40] + "x" + UNIQUE[41:]
MAZE = "#######\n#S....#\n#.###.#\n#.#...#\n#.#.###\n#...G.#\n#######\n"
MAZE_PATH = "#######\n#S....#\n#o###.#\n#o#...#\n#o#.###\n#oooG.#\n#######\n"
OPEN_ROOM = "S....\n.....\n.....\n.....\n....G\n"
WALLED_OFF = "S.#..\n..#..\n###..\n.....\n....G\n"


def invoke(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def assert_one_error_line(err: str, *fragments: str) -> None:
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("hrm: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "sudoku4"
    result = invoke("data", "build", "sudoku", "--size", "4", "--train", "6", "--test", "3",
                    "--seed", "2", "--out", str(out))  # fmt: skip
    assert result.exit_code == 0
    assert result.stdout == f"wrote {out}: 6 train, 3 test\n"
    return out


# --- hrm check --------------------------------------------------------------------------------


def test_check_unique_puzzle_prints_its_solution():
    result = invoke("check", UNIQUE)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("#1 (line 1): valid, one solution, easy")
    assert lines[1] == UNIQUE_SOLUTION_ROW
    assert len(lines) == 1 + 11 + 1  # verdict, 9 rows and 2 bars, a blank line


def test_check_quiet_prints_verdicts_only():
    result = invoke("check", "-q", UNIQUE)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["#1 (line 1): valid, one solution, easy (rating 0.00)"]


@pytest.mark.parametrize(
    ("puzzle", "verdict"), [(SEVERAL, "several solutions"), (NO_SOLUTION, "no solution")]
)
def test_check_puzzle_without_one_solution(puzzle, verdict):
    result = invoke("check", puzzle)
    assert result.exit_code == 1
    assert result.stdout == f"#1 (line 1): {verdict}\n"


def test_check_file_mixing_verdicts(tmp_path):
    path = tmp_path / "mixed.sdk"
    path.write_text(f"# three puzzles\n{UNIQUE}\n\n{NO_SOLUTION}\n{SEVERAL}\n")
    result = invoke("check", "--quiet", str(path))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "#1 (line 2): valid, one solution, easy (rating 0.00)",
        "#2 (line 4): no solution",
        "#3 (line 5): several solutions",
    ]


def test_check_all_unique_file_exits_zero(tmp_path):
    path = tmp_path / "good.txt"
    path.write_text(f"{UNIQUE}\n{UNIQUE}\n")
    assert invoke("check", "-q", str(path)).exit_code == 0


def test_check_maze_prints_path_and_length(tmp_path):
    path = tmp_path / "maze.txt"
    path.write_text(MAZE)
    result = invoke("check", str(path))
    assert result.exit_code == 0
    assert result.stdout == (
        f"#1 (line 1): valid, one shortest path of 7 steps, easy\n{MAZE_PATH}\n"
    )


def test_check_maze_with_several_shortest_paths_is_valid():
    result = invoke("check", "-q", OPEN_ROOM.replace("\n", "\\n"))
    assert result.exit_code == 0
    assert result.stdout == "#1 (line 1): valid, several shortest paths of 8 steps, easy\n"


def test_check_maze_without_a_path():
    result = invoke("check", "-", input=WALLED_OFF)
    assert result.exit_code == 1
    assert result.stdout == "#1 (line 1): no solution\n"


def test_check_reads_stdin():
    result = invoke("check", "-q", "-", input=f"{SEVERAL}\n{UNIQUE}\n")
    assert result.exit_code == 1
    assert result.stdout.splitlines()[1].startswith("#2 (line 2): valid, one solution")


def test_check_with_family_and_size():
    result = invoke("check", "-q", "--family", "sudoku", "--size", "4", "1.3.......2.4...")
    assert result.exit_code == 0
    assert result.stdout.startswith("#1 (line 1): valid, one solution")
    result = invoke("check", "-q", "--size", "4", "1" + "." * 15)
    assert result.exit_code == 1
    assert result.stdout == "#1 (line 1): several solutions\n"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["check", GARBAGE], ["<argument>:1:41:", "unexpected character 'x'"]),
        (["check", "12x45"], ["<argument>:1:", "cannot tell the puzzle family"]),
        (["check", UNIQUE.replace("53", "55", 1)], ["<argument>:1:2:", "repeats in a row"]),
        (["check", "missing/puzzles.txt"], ["no such file: missing/puzzles.txt"]),
        (["check", "--size", "5", UNIQUE], ["Sudoku size must be one of"]),
        (["check"], ["Missing argument 'PUZZLE'"]),
        (["check", "--family", "chess", UNIQUE], ["'--family'", "chess"]),
    ],
)
def test_check_bad_input_is_one_error_line(hrm_cli, args, fragments):
    code, out, err = hrm_cli(*args)
    assert code == 2 and out == ""
    assert_one_error_line(err, *fragments)


# --- hrm data build ---------------------------------------------------------------------------


def test_data_build_sudoku(dataset):
    meta = json.loads((dataset / "meta.json").read_text())
    assert [meta[k] for k in ("family", "size", "difficulty", "seed")] == ["sudoku", 4, "easy", 2]
    assert meta["counts"] == {"train": 6, "test": 3}
    assert PuzzleDataset(dataset, "test").inputs.shape == (3, 16)


def test_data_build_maze_with_options(tmp_path):
    out = tmp_path / "maze"
    result = invoke("data", "build", "maze", "--size", "9", "--difficulty", "medium",
                    "--generator", "carved", "--unique-path", "--train", "4", "--test", "2",
                    "--out", str(out))  # fmt: skip
    assert result.exit_code == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["options"] == {"generator": "carved", "unique_path": True}
    ds = PuzzleDataset(out, "train")
    assert ds.family.generator == "carved" and ds.family.unique_path
    for tokens in ds.inputs:
        assert ds.family.solve(ds.family.decode(tokens)).count == 1  # one shortest path


def test_data_build_force_replaces(tmp_path):
    out = tmp_path / "data"
    args = ["data", "build", "sudoku", "--size", "4", "--train", "2", "--test", "1", "--out"]
    assert invoke(*args, str(out)).exit_code == 0
    (out / "notes.txt").write_text("old")
    assert invoke(*args, str(out), "--force").exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "test", "train"]


def test_data_build_onto_existing_dir_without_force(hrm_cli, dataset):
    before = (dataset / "train" / "inputs.npy").read_bytes()
    code, out, err = hrm_cli(
        "data", "build", "sudoku", "--size", "4", "--train", "1", "--test", "1",
        "--out", str(dataset),
    )  # fmt: skip
    assert code == 2 and out == ""
    assert_one_error_line(err, "already exists", "--force")
    assert (dataset / "train" / "inputs.npy").read_bytes() == before


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["sudoku", "--difficulty", "impossible"], ["'--difficulty'", "'impossible'"]),
        (["maze", "--size", "9", "--difficulty", "extreme"], ["'--difficulty'", "'extreme'"]),
        (["sudoku", "--wall-prob", "0.3"], ["maze options"]),
        (["sudoku", "--generator", "carved"], ["maze options"]),
        (["sudoku", "--train", "-1"], ["'--train'", "-1"]),
        (["sudoku", "--test", "ten"], ["'--test'", "ten"]),
        (["maze", "--wall-prob", "1.0"], ["'--wall-prob'"]),
        (["maze", "--size", "3"], ["maze size must be"]),
        (["sudoku", "--size", "7"], ["Sudoku size must be"]),
        (["puzzle"], ["'puzzle'"]),
    ],
)
def test_data_build_bad_options_are_one_error_line(hrm_cli, tmp_path, args, fragments):
    out = tmp_path / "out"
    code, stdout, err = hrm_cli("data", "build", *args, "--out", str(out))
    assert code == 2 and stdout == ""
    assert_one_error_line(err, *fragments)
    assert not out.exists()


def test_data_build_without_out(hrm_cli):
    code, _, err = hrm_cli("data", "build", "sudoku", "--size", "4")
    assert code == 2
    assert_one_error_line(err, "Missing option '--out'")


# --- hrm data show / stats --------------------------------------------------------------------


def test_data_show_prints_puzzle_beside_solution(dataset):
    ds = PuzzleDataset(dataset, "test")
    result = invoke("data", "show", str(dataset), "--split", "test", "--index", "1")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    header = f"test #1: difficulty {ds.difficulty[1]:.2f}, group {ds.group[1]}"
    assert lines[0] == header
    puzzle = ds.family.format(ds.family.decode(ds.inputs[1])).splitlines()
    solution = ds.family.format(ds.family.decode(ds.labels[1])).splitlines()
    assert len(lines) == 1 + len(puzzle) + 1
    for line, left, right in zip(lines[1:], puzzle, solution, strict=False):
        assert line.startswith(left) and line.endswith(right)


def test_data_show_count_stops_at_the_end(dataset):
    result = invoke("data", "show", str(dataset), "--split", "test", "--index", "1", "--count", "9")
    headers = [ln for ln in result.stdout.splitlines() if ln.startswith("test #")]
    assert [h.split(":")[0] for h in headers] == ["test #1", "test #2"]


def test_data_show_defaults_to_the_first_train_puzzle(dataset):
    result = invoke("data", "show", str(dataset))
    assert result.stdout.startswith("train #0: ")
    assert result.stdout.count("#") == 1


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--index", "3", "--split", "test"], ["--index 3 is out of range", "test has 3"]),
        (["--index", "-1"], ["--index -1 is out of range", "train has 6"]),
        (["--split", "valid"], ["'--split'"]),
        (["--count", "0"], ["'--count'"]),
    ],
)
def test_data_show_bad_options(hrm_cli, dataset, args, fragments):
    code, out, err = hrm_cli("data", "show", str(dataset), *args)
    assert code == 2 and out == ""
    assert_one_error_line(err, *fragments)


@pytest.mark.parametrize("command", ["show", "stats"])
def test_data_commands_on_a_directory_that_is_not_a_dataset(hrm_cli, tmp_path, command):
    code, _, err = hrm_cli("data", command, str(tmp_path))
    assert code == 2
    assert_one_error_line(err, "no meta.json")


def test_data_stats_table(dataset):
    result = invoke("data", "stats", str(dataset))
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "sudoku 4×4, difficulty easy"
    assert any(ln.startswith("train: 6 puzzles, 6 groups, givens ") for ln in lines)
    assert any(ln.startswith("test: 3 puzzles, 3 groups, givens ") for ln in lines)
    assert "  easy          6  100.0%" in lines


def test_data_stats_json(dataset):
    result = invoke("data", "stats", "--json", str(dataset))
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert (report["family"], report["size"], report["difficulty"]) == ("sudoku", 4, "easy")
    ds = PuzzleDataset(dataset, "train")
    train = report["train"]
    assert train["count"] == 6 and train["groups"] == len(np.unique(ds.group))
    assert train["tiers"] == {"easy": 6}
    assert train["givens"] == pytest.approx(float((ds.inputs > 1).mean()))
    assert train["difficulty_mean"] == pytest.approx(float(ds.difficulty.mean()))
    assert report["test"]["count"] == 3


def test_data_stats_of_a_maze_dataset_with_an_empty_split(tmp_path):
    out = tmp_path / "maze"
    invoke("data", "build", "maze", "--size", "7", "--difficulty", "easy",
           "--train", "5", "--test", "0", "--out", str(out))  # fmt: skip
    report = json.loads(invoke("data", "stats", "--json", str(out)).stdout)
    assert report["test"] == {"count": 0, "groups": 0}
    assert sum(report["train"]["tiers"].values()) == 5
    assert "givens" not in report["train"]
    assert invoke("data", "stats", str(out)).exit_code == 0


# --- the bare command -------------------------------------------------------------------------


@pytest.mark.parametrize("args", [[], ["data"], ["--help"]])
def test_help_goes_to_stdout_with_exit_zero(hrm_cli, args):
    code, out, err = hrm_cli(*args)
    assert code == 0 and err == ""
    assert out.startswith("Usage: hrm")


def test_unknown_command(hrm_cli):
    code, out, err = hrm_cli("solve-everything")
    assert code == 2 and out == ""
    assert_one_error_line(err, "No such command 'solve-everything'")


# --- as a real process ------------------------------------------------------------------------


def hrm(*args: str, input: str | None = None, cwd: Path | None = None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "hrm.cli", *args],
        input=input,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
    )


def test_process_check_unique_and_mixed_from_stdin():
    done = hrm("check", "-", input=f"{UNIQUE}\n{NO_SOLUTION}\n{SEVERAL}\n")
    assert done.returncode == 1 and done.stderr == ""
    verdicts = [ln for ln in done.stdout.splitlines() if ln.startswith("#")]
    assert verdicts == [
        "#1 (line 1): valid, one solution, easy (rating 0.00)",
        "#2 (line 2): no solution",
        "#3 (line 3): several solutions",
    ]
    assert UNIQUE_SOLUTION_ROW in done.stdout.splitlines()


def test_process_garbage_is_exit_two_and_one_line():
    done = hrm("check", GARBAGE)
    assert done.returncode == 2 and done.stdout == ""
    assert_one_error_line(done.stderr, "<argument>:1:41: unexpected character 'x'")


def test_process_build_errors_are_one_line(tmp_path):
    (tmp_path / "data").mkdir()
    done = hrm("data", "build", "sudoku", "--size", "4", "--out", "data", cwd=tmp_path)
    assert done.returncode == 2
    assert_one_error_line(done.stderr, "data already exists")
    done = hrm("data", "build", "sudoku", "--difficulty", "bogus", "--out", "new", cwd=tmp_path)
    assert done.returncode == 2
    assert_one_error_line(done.stderr, "'bogus'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_process_build_then_show(tmp_path):
    done = hrm("data", "build", "maze", "--size", "7", "--difficulty", "easy",
               "--train", "2", "--test", "1", "--out", "m", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "wrote m: 2 train, 1 test\n"
    done = hrm("data", "show", "m", "--index", "2", cwd=tmp_path)
    assert done.returncode == 2
    assert_one_error_line(done.stderr, "--index 2 is out of range: train has 2 puzzles")


# --- options that must be refused, and progress in a log -------------------------------------


@pytest.mark.parametrize(("args", "fragments"), [
    (["data", "build", "maze", "--size", "0"], ["'--size'", "0"]),
    (["data", "build", "sudoku", "--size", "-9"], ["'--size'", "-9"]),
    (["train", "--set", "train.max_steps=-5"], ["train.max_steps must be at least 1, not -5"]),
    (["train", "--set", "train.lr=-1e-3"], ["train.lr must be positive, not -0.001"]),
    (["train", "--set", "train.batch_size=0"], ["train.batch_size must be at least 1"]),
    (["train", "--set", "act.max_segments=0"], ["max_segments must be at least 1"]),
    (["train", "--set", "train.ema=1.5"], ["train.ema must be from 0 up to 1"]),
    (["compare", "--size", "0"], ["'--size'", "0"]),
])
def test_options_out_of_range_are_refused_before_any_work(hrm_cli, tmp_path, args, fragments):
    out = tmp_path / "out"
    code, stdout, err = hrm_cli(*args, "--out", str(out))
    assert code == 2 and stdout == ""
    assert_one_error_line(err, *fragments)
    assert not out.exists()  # nothing was built, trained or written


def test_training_on_data_without_a_test_split_says_so(hrm_cli, tmp_path):
    data = tmp_path / "data"
    code, _, _ = hrm_cli("data", "build", "sudoku", "--size", "4", "--train", "64",
                          "--test", "0", "--out", str(data))
    assert code == 0
    code, _, err = hrm_cli("train", "--data", str(data), "--out", str(tmp_path / "r"))
    assert code == 2
    assert_one_error_line(err, "the test split holds no puzzles")


def test_progress_in_a_log_is_a_plain_line_now_and_then(capsys):
    from hrm.progress import LineProgress, progress_bar

    assert isinstance(progress_bar(total=10), LineProgress)  # stderr here is not a terminal
    quiet = LineProgress(total=100, desc="training", unit="step")
    for _ in range(100):
        quiet.update()
    quiet.close()
    assert capsys.readouterr().err == ""  # a task shorter than the interval prints nothing
    bar = LineProgress(total=100, desc="training", unit="step", every=0.0)
    bar.set_postfix(loss=0.5)
    for _ in range(3):
        bar.update(10)
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4 and "\r" not in "".join(lines)
    assert lines[0].startswith("training: 10/100 step (10%)") and lines[0].endswith("loss 0.5")
    assert lines[-1].startswith("training: 30/100 step (30%)")
