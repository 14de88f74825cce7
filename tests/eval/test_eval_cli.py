"""``hrm eval`` and ``hrm solve`` end to end, on briefly trained 4×4 runs."""

import csv
import io
import json

import numpy as np
import pytest
from click.testing import CliRunner

from eval.attempts import RULES
from hrm.cli import cli, main
from puzzles import make_family
from puzzles.dataset import PuzzleDataset


def hrm(*args, stdin: str | None = None) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``hrm ARGS`` run in this process."""
    runner = CliRunner()
    result = runner.invoke(cli, list(map(str, args)), input=stdin, standalone_mode=False,
                           catch_exceptions=True)
    if result.exception and not isinstance(result.exception, SystemExit):
        # main() turns user errors into one line and exit 2: check through it
        raise result.exception
    code = result.exception.code if isinstance(result.exception, SystemExit) else 0
    return code, result.stdout, result.stderr


def test_eval_prints_tables_and_writes_json_and_plots(run_dir, tmp_path):
    code, out, _ = hrm("eval", run_dir, "--json", tmp_path / "r.json", "--plots", tmp_path / "p")
    assert code == 0
    assert "solved" in out and "copy accuracy" in out and "by segments allowed" in out
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["puzzles"] == 64 and result["segments"] == 4
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [
        "by_difficulty.png", "scaling.png", "segments.png"]


def test_eval_on_a_fresh_test_set(run_dir, tmp_path):
    code, out, _ = hrm("eval", run_dir, "--count", 20, "--seed", 5, "--segments", "1,2",
                       "--json", tmp_path / "r.json")
    result = json.loads((tmp_path / "r.json").read_text())
    assert code == 0 and result["puzzles"] == 20
    assert [p["segments"] for p in result["scaling"]] == [1, 2]
    assert result["data"] == "fresh: 20 puzzles, seed 5"


def test_eval_with_learned_halting_only(run_dir):
    code, out, _ = hrm("eval", run_dir, "--halting")
    assert code == 0 and "learned halting at threshold 0.5, at most 4" in out
    assert "by segments allowed" not in out


def test_learned_halting_may_run_past_the_training_segments(run_dir, tmp_path):
    code, out, _ = hrm("eval", run_dir, "--halting", "--max-segments", 8, "--halt-threshold",
                       "0.99", "--json", tmp_path / "r.json")
    result = json.loads((tmp_path / "r.json").read_text())
    assert code == 0 and "at most 8" in out and result["segments"] == 8
    assert sorted(map(int, result["halting"]["histogram"])) == list(range(1, 9))
    assert result["halting"]["histogram"]["8"] > 0  # so sure a threshold that some use all 8
    data = PuzzleDataset(run_dir / "data", "test")
    lines = [data.family.format(data.family.decode(row), style="line").strip()
             for row in data.inputs[:20]]
    code, out, _ = hrm("solve", run_dir, "-", "--max-segments", 8, "--halt-threshold", "0.99",
                       "--format", "json", stdin="\n".join(lines))
    assert max(r["segments"] for r in json.loads(out)) > 4  # the run trained with 4


def test_a_higher_halt_threshold_uses_at_least_as_many_segments(run_dir, tmp_path):
    used = []
    for threshold in ("0.5", "0.99"):
        code, _, _ = hrm("eval", run_dir, "--halting", "--halt-threshold", threshold,
                         "--json", tmp_path / f"{threshold}.json")
        assert code == 0
        result = json.loads((tmp_path / f"{threshold}.json").read_text())
        assert result["halt_threshold"] == float(threshold)
        used.append(result["halting"]["mean_segments"])
    assert used[1] >= used[0]


@pytest.mark.parametrize(("args", "message"), [
    (["--halting", "--segments", "1,2"], "--halting measures learned halting alone"),
    (["--max-segments", "8"], "--max-segments caps learned halting: add --halting"),
    (["--halting", "--max-segments", "0"], "--max-segments"),
    (["--count", "10", "--seed", "0"], "would rebuild the run's own training puzzles"),
    (["--count", "10", "--data", "x"], "give --data or --count, not both"),
    (["--difficulty", "easy"], "--difficulty needs --count"),
    (["--segments", "1,x"], "expected numbers separated by commas"),
    (["--segments", "0"], "segments must be from 1 to 1024"),
    (["--segments", "1,10000"], "segments must be from 1 to 1024"),
    (["--halting", "--max-segments", "100000"], "--max-segments"),
    (["--halt-threshold", "nan"], "nan is not between 0 and 1"),
    (["--json", "."], "is a folder; give a file name"),
    (["--json", "README.md/r.json"], "README.md is not a folder"),
    (["--size", "0"], "--size"),
    (["--size", "9"], "solves 4×4 sudoku, not 9×9: its learned positions fit its training size"),
    (["--family", "maze"], "solves 4×4 sudoku, not maze"),
    (["--data", "/no/such/data"], "/no/such/data"),
    (["--halt-threshold", "1"], "--halt-threshold"),
    (["--attempts", "0"], "--attempts"),
    (["--attempts", "2000"], "attempts must be between 1 and 1024"),
    (["--attempts", "4", "--attempt-noise", "-0.5"], "attempt noise must be a finite"),
])
def test_eval_bad_input_is_one_line_and_exit_2(run_dir, hrm_cli, args, message):
    code, _, err = hrm_cli("eval", run_dir, *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_eval_of_a_directory_that_is_not_a_run(tmp_path, hrm_cli):
    code, _, err = hrm_cli("eval", tmp_path)
    assert code == 2 and err.strip() == f"hrm: error: {tmp_path} is not a training run " \
                                        "(no config.json)"


def test_solve_prints_the_answer_verdict_and_segments(run_dir, solved_puzzle):
    code, out, _ = hrm("solve", run_dir, solved_puzzle, "--attempts", 1)
    assert code == 0, out
    assert out.startswith("#1 (line 1): correct; ") and "halting confidence" in out


def test_solve_says_how_many_attempts_it_used_and_whether_the_rules_pass(run_dir):
    data = PuzzleDataset(run_dir / "data", "test")
    family = data.family
    lines = [family.format(family.decode(row), style="line").strip() for row in data.inputs]
    _, once, _ = hrm("solve", run_dir, "-", "--format", "json", "--attempts", 1,
                     stdin="\n".join(lines))
    code, out, _ = hrm("solve", run_dir, "-", "--format", "json", stdin="\n".join(lines))
    once, records = json.loads(once), json.loads(out)
    assert sum(r["solved"] for r in records) > sum(r["solved"] for r in once)
    assert code == (0 if all(r["solved"] for r in records) else 1)
    for record in records:  # the default: up to 64 attempts, stopping at a passing answer
        assert 1 <= record["attempts"] <= 64 and record["passes_rules"] == record["solved"]
        assert record["chosen_by"] in RULES and 0 <= record["attempt"] < record["attempts"]
    _, text, _ = hrm("solve", run_dir, lines[0])
    assert "attempt" in text.splitlines()[0] and "the rules" in text.splitlines()[0]


def test_eval_prints_and_plots_the_curve_against_attempts(run_dir, tmp_path):
    code, out, _ = hrm("eval", run_dir, "--attempts", 8, "--halting", "--attempt-noise", 0.1,
                       "--json", tmp_path / "r.json", "--plots", tmp_path / "plots")
    assert code == 0 and "rate by attempts allowed" in out and "chosen by" in out
    attempts = json.loads((tmp_path / "r.json").read_text())["attempts"]
    assert [p["attempts"] for p in attempts["points"]] == [1, 2, 4, 8]
    assert attempts["settings"]["noise"] == 0.1 and (tmp_path / "plots/attempts.png").is_file()


def test_solve_many_from_stdin_with_exit_code_1_when_some_are_wrong(run_dir):
    data = PuzzleDataset(run_dir / "data", "test")
    family = data.family
    lines = [family.format(family.decode(data.inputs[i]), style="line").strip()
             for i in range(40)]
    code, out, _ = hrm("solve", run_dir, "-", "--format", "json", stdin="\n".join(lines))
    records = json.loads(out)
    assert len(records) == 40 and [r["line"] for r in records] == list(range(1, 41))
    solved = [r["solved"] for r in records]
    assert code == (0 if all(solved) else 1)
    for record in records:  # each verdict is the grader's on the printed answer
        answer = np.array([int(ch) for ch in record["answer"].replace(".", "0")],
                          dtype=np.uint8).reshape(4, 4)  # as written, rules broken or not
        assert family.grade(family.parse(record["input"]), answer).solved == record["solved"]


def test_solve_csv_and_fixed_segments(run_dir, solved_puzzle):
    code, out, _ = hrm("solve", run_dir, solved_puzzle, "--format", "csv", "--segments", 3)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code in (0, 1) and len(rows) == 1 and rows[0]["segments"] == "3"
    assert rows[0]["input"] == solved_puzzle and len(rows[0]["answer"]) == 16
    assert (rows[0]["solved"] == "True") == (code == 0)


def test_show_steps_prints_every_segment_and_marks_changes(run_dir, solved_puzzle):
    code, out, _ = hrm("solve", run_dir, solved_puzzle, "--show-steps", "--segments", 2)
    assert code in (0, 1)
    assert "segment 1: " in out and "segment 2: " in out
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("segment 1: "))
    end = next(i for i, line in enumerate(lines) if line.startswith("segment 2: "))
    changed = int(lines[start].split()[2])
    marks = sum(ch not in "·|-+ " for line in lines[start + 1:end]
                for ch in line.split("   ", 1)[1])
    assert marks == changed  # the right-hand grid shows exactly the changed cells


@pytest.mark.parametrize(("args", "message"), [
    (["1.3..4.2..1.2.4"], "<argument>:1: row has 3 cells, expected 4"),
    (["11.............."], "repeats"),
    ([".7........2375..6.....6...4..12..4.......7....37..1..8...8246.........7.9.6.....2"],
     "holds a 9×9 sudoku, and"),
    (["1.3..4.2..1.2.4.", "--segments", "2", "--max-segments", "8"],
     "--segments runs exactly N"),
    (["1.3..4.2..1.2.4.", "--attempts", "0"], "--attempts"),
    (["1.3..4.2..1.2.4.", "--attempts", "-3"], "--attempts"),
    (["1.3..4.2..1.2.4.", "--attempts", "many"], "--attempts"),
    (["1.3..4.2..1.2.4.", "--attempts", "10000000"], "attempts must be between 1 and 1024"),
    (["1.3..4.2..1.2.4.", "--attempt-noise", "nan"], "attempt noise must be a finite"),
    (["1.3..4.2..1.2.4.", "--no-symmetry"], "something to vary them"),
    (["1.3..4.2..1.2.4.", "--attempts", "4", "--show-steps"], "--show-steps shows the"),
    (["1.3..4.2..1.2.4.", "--segments", "10000"], "--segments"),
    (["1.3..4.2..1.2.4.", "--halt-threshold", "nan"], "nan is not between 0 and 1"),
])
def test_solve_bad_input_is_one_line_and_exit_2(run_dir, hrm_cli, args, message):
    code, _, err = hrm_cli("solve", run_dir, *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_solve_reports_a_puzzle_with_several_solutions_without_solving_it(run_dir, capsys):
    with pytest.raises(SystemExit) as done:
        main(["solve", str(run_dir), "1..............."])
    out = capsys.readouterr().out
    assert done.value.code == 2 and out.startswith("#1 (line 1): several solutions")


def test_solve_reads_a_file_and_rejects_a_maze(run_dir, solved_puzzle, tmp_path, hrm_cli):
    puzzles = tmp_path / "p.txt"
    puzzles.write_text(f"# two puzzles\n{solved_puzzle}\n{solved_puzzle}\n")
    code, out, _ = hrm("solve", run_dir, puzzles, "--format", "json")
    assert code == 0 and len(json.loads(out)) == 2
    maze = make_family("maze", 5).format(np.array([[3, 2, 2, 2, 2]] + [[2] * 5] * 3
                                                  + [[2, 2, 2, 2, 4]], dtype=np.uint8))
    code, _, err = hrm_cli("solve", run_dir, maze)
    assert code == 2 and "holds a 5×5 maze but" in err
