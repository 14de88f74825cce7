import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from baselines.cot import CoTCodec, CoTConfig, CoTModel
from baselines.traces import apply_maze_route
from puzzles.maze import MazeFamily
from puzzles.sudoku import SudokuFamily

CODECS = {"sudoku": CoTCodec(SudokuFamily(4)), "maze": CoTCodec(MazeFamily(9))}
GRID_CODECS = {"sudoku": CoTCodec(SudokuFamily(4), "grid"),
               "maze": CoTCodec(MazeFamily(9), "grid")}


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), family=st.sampled_from(["sudoku", "maze"]),
       form=st.sampled_from(["trace", "grid"]))
def test_a_sequence_reads_back_to_its_answer(seed, family, form):
    codec = (CODECS if form == "trace" else GRID_CODECS)[family]
    tier = "easy" if family == "sudoku" else "medium"
    puzzle, solution, _ = codec.family.generate(np.random.default_rng(seed), tier)
    sequence = codec.encode(puzzle, solution)
    prompt = codec.prompt(puzzle)
    assert sequence[: len(prompt)] == prompt
    assert max(sequence) < codec.vocab_size and min(sequence) > 0
    answer = codec.answer(codec.family.encode(puzzle), sequence[len(prompt) :])
    assert np.array_equal(answer, solution)
    # the grid form writes ANSWER and every cell again after the same trace
    trace_only = CODECS[family].encode(puzzle, solution)
    written = len(trace_only) + 1 + codec.family.seq_len
    assert len(sequence) == (len(trace_only) if form == "trace" else written)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_a_sudoku_trace_with_guesses_reads_back_to_its_answer(seed):
    """Puzzles that singles cannot finish: the trace guesses and backtracks, and replaying
    it must still end on the solution."""
    codec = CODECS["sudoku"]
    rng = np.random.default_rng(seed)
    solution = codec.family.generate(rng, "easy")[1]
    puzzle = solution.copy()
    puzzle.reshape(-1)[rng.permutation(16)[:11]] = 0  # 5 givens: often several solutions
    sequence = codec.encode(puzzle, solution)
    answer = codec.answer(codec.family.encode(puzzle), sequence[len(codec.prompt(puzzle)) :])
    assert codec.family.grade(puzzle, answer).solved


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), family=st.sampled_from(["sudoku", "maze"]))
def test_mapped_traces_are_the_traces_of_the_mapped_puzzle(seed, family):
    """A symmetry maps a trace to a valid trace of the transformed puzzle: replaying it gives
    the transformed answer."""
    codec = CODECS[family]
    rng = np.random.default_rng(seed)
    tier = "easy" if family == "sudoku" else "medium"
    puzzle, solution, _ = codec.family.generate(rng, tier)
    symmetry = codec.family.random_symmetry(rng)
    puzzle_tokens = symmetry.apply(codec.family.encode(puzzle))
    answer_tokens = symmetry.apply(codec.family.encode(solution))
    events = codec.map_events(codec.events(puzzle, solution), symmetry)
    sequence = codec.sequence(puzzle_tokens, answer_tokens, events)
    prompt = codec.prompt_tokens(puzzle_tokens)
    mapped_puzzle = codec.family.decode(puzzle_tokens)
    if family == "sudoku":
        grid = mapped_puzzle.astype(np.int64).copy().reshape(-1)
        for _, cell, token in events:
            assert grid[cell] == 0
            grid[cell] = token - 1
        assert np.array_equal(grid, codec.family.decode(answer_tokens).reshape(-1))
    else:
        moves = [codec.name[t] for t in codec.trace_tokens(events)]
        drawn = apply_maze_route(mapped_puzzle, moves)
        assert np.array_equal(drawn, codec.family.decode(answer_tokens))
    answer = codec.answer(puzzle_tokens, sequence[len(prompt) :])
    assert np.array_equal(answer, codec.family.decode(answer_tokens))


def test_sudoku_trace_tokens_are_a_reason_row_column_and_digit_per_placement():
    codec = CODECS["sudoku"]
    puzzle, solution, _ = codec.family.generate(np.random.default_rng(0), "easy")
    trace = codec.trace_tokens(codec.events(puzzle, solution))
    assert len(trace) == 4 * int((puzzle == 0).sum())
    assert codec.name[trace[0]] in ("NAKED", "HIDDEN") and codec.name[trace[1]].startswith("R")


@pytest.mark.parametrize("mangle", ["no answer", "short", "no eos", "bad cell"])
def test_malformed_written_answers_have_no_answer(mangle):
    codec = GRID_CODECS["sudoku"]
    puzzle, solution, _ = codec.family.generate(np.random.default_rng(1), "easy")
    generated = codec.encode(puzzle, solution)[len(codec.prompt(puzzle)) :]
    answer_at = generated.index(codec.token["ANSWER"])
    if mangle == "no answer":
        generated[answer_at] = codec.token["SEP"]
    elif mangle == "short":
        del generated[answer_at + 3]
    elif mangle == "no eos":
        generated = generated[:-1]
    else:
        generated[answer_at + 2] = codec.token["NAKED"]
    assert codec.answer(codec.family.encode(puzzle), generated) is None


@pytest.mark.parametrize("mangle", ["cut step", "no eos", "cell token", "backtrack first",
                                    "after eos"])
def test_malformed_sudoku_traces_have_no_answer(mangle):
    codec = CODECS["sudoku"]
    puzzle, solution, _ = codec.family.generate(np.random.default_rng(1), "easy")
    generated = codec.encode(puzzle, solution)[len(codec.prompt(puzzle)) :]
    if mangle == "cut step":  # a placement without its digit
        del generated[3]
    elif mangle == "no eos":
        generated = generated[:-1]
    elif mangle == "cell token":
        generated[1] = 2
    elif mangle == "backtrack first":
        generated.insert(0, codec.token["BACKTRACK"])
    else:
        generated.append(codec.token["NAKED"])
    assert codec.answer(codec.family.encode(puzzle), generated) is None


@pytest.mark.parametrize("mangle", ["no eos", "doubles back", "into a wall", "cell token"])
def test_malformed_routes_have_no_answer(mangle):
    codec = CODECS["maze"]
    puzzle, solution, _ = codec.family.generate(np.random.default_rng(3), "medium")
    generated = codec.encode(puzzle, solution)[len(codec.prompt(puzzle)) :]
    opposite = {"UP": "DOWN", "DOWN": "UP", "LEFT": "RIGHT", "RIGHT": "LEFT"}
    if mangle == "no eos":
        generated = generated[:-1]
    elif mangle == "doubles back":  # there and back again: the drawn path alone would pass
        back = codec.token[opposite[codec.name[generated[1]]]]
        generated[2:2] = [back, generated[1]]
    elif mangle == "into a wall":  # 40 steps one way leave a 9×9 grid
        generated[1:1] = [generated[0]] * 40
    else:
        generated[1] = 1
    assert codec.answer(codec.family.encode(puzzle), generated) is None


def test_a_route_that_stops_short_parses_and_fails_the_grader():
    codec = CODECS["maze"]
    puzzle, solution, _ = codec.family.generate(np.random.default_rng(3), "medium")
    generated = codec.encode(puzzle, solution)[len(codec.prompt(puzzle)) :]
    answer = codec.answer(codec.family.encode(puzzle), generated[:3] + generated[-1:])
    assert answer is not None and not codec.family.grade(puzzle, answer).solved


def test_an_unknown_answer_form_is_refused():
    with pytest.raises(ValueError, match="answer must be"):
        CoTCodec(SudokuFamily(4), "tokens")
    with pytest.raises(ValueError, match="answer must be"):
        CoTConfig(vocab_size=8, max_len=8, answer="tokens")


def test_generation_stops_at_eos_or_the_budget():
    torch.manual_seed(0)
    codec = CODECS["sudoku"]
    model = CoTModel(CoTConfig(vocab_size=codec.vocab_size, max_len=24, hidden=32, layers=1))
    prompts = torch.randint(1, 6, (3, 17))
    out = model.generate(prompts, eos=codec.token["EOS"])
    for decoded in out:
        assert len(decoded.tokens) <= 24 - 17
        assert decoded.finished == (codec.token["EOS"] in decoded.tokens)
        if not decoded.finished:
            assert len(decoded.tokens) == 24 - 17  # ran out of budget


def test_greedy_generation_matches_step_by_step_full_passes():
    torch.manual_seed(0)
    model = CoTModel(CoTConfig(vocab_size=12, max_len=16, hidden=32, layers=2)).eval()
    prompt = torch.randint(1, 12, (1, 6))
    cached = model.generate(prompt, eos=99).pop().tokens  # eos never produced: whole budget
    sequence = prompt[0].tolist()
    for _ in range(16 - 6):
        with torch.no_grad():
            sequence.append(int(model(torch.tensor([sequence]))[0, -1].argmax()))
    assert cached == sequence[6:]


def sequence_log_prob(model, prompt: torch.Tensor, tokens: list[int]) -> float:
    """log p(tokens | prompt) under ``model``, from one full causal pass."""
    sequence = torch.tensor([prompt.tolist() + tokens])
    with torch.no_grad():
        log_probs = torch.log_softmax(model(sequence)[0].float(), -1)
    start = len(prompt) - 1
    return sum(float(log_probs[start + i, t]) for i, t in enumerate(tokens))


def test_beam_search_of_width_one_is_greedy():
    torch.manual_seed(1)
    model = CoTModel(CoTConfig(vocab_size=12, max_len=20, hidden=32, layers=2)).eval()
    prompts = torch.randint(1, 12, (3, 6))
    for eos in (3, 99):  # often written; never written
        greedy = model.generate(prompts, eos=eos)
        beam = model.beam_search(prompts, eos=eos, beams=1)
        assert [d.tokens for d in beam] == [d.tokens for d in greedy]
        assert [d.finished for d in beam] == [d.finished for d in greedy]


def test_a_beam_as_wide_as_every_prefix_finds_the_most_likely_sequence():
    # vocabulary 4, 3 tokens to write: 16 beams keep every 2-token prefix, so the search is
    # exhaustive and must return the argmax over all 64 sequences
    torch.manual_seed(2)
    model = CoTModel(CoTConfig(vocab_size=4, max_len=8, hidden=32, layers=2)).eval()
    for prompt in torch.randint(0, 4, (3, 5)):
        found = model.beam_search(prompt[None], eos=99, beams=16)[0].tokens
        every = [[a, b, c] for a in range(4) for b in range(4) for c in range(4)]
        best = max(every, key=lambda tokens: sequence_log_prob(model, prompt, tokens))
        assert found == best


def test_cot_learns_to_write_4x4_traces_and_answers(tmp_path):
    """The tiny preset's width as a chain-of-thought model, trained by the shared trainer:
    next-token accuracy must rise well above its start (0.22 at step 10, 0.67 at step 250 in
    a reference run) and greedy decoding must finish unseen puzzles with a parseable answer."""
    import json

    from hrm.config import RunConfig
    from hrm.presets import preset
    from hrm.train import train

    raw = preset("tiny")
    raw["model"]["kind"] = "cot"
    raw["data"].update(train=500, test=50)
    raw["train"].update(max_steps=250, eval_every=250, checkpoint_every=250, threads=1,
                        schedule="constant", log_every=10)
    result = train(RunConfig.from_dict(raw), tmp_path / "run", progress=False)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    accuracy = [r["cell_accuracy"] for r in lines if "cell_accuracy" in r]
    assert accuracy[-1] > accuracy[0] + 0.3
    assert result["test_finished"] > 0.5
    assert result["test_cell_accuracy"] > 0.2  # unparseable answers count 0


def test_training_batches_hold_every_puzzle_once_in_batches_of_similar_length(tmp_path,
                                                                            monkeypatch):
    import baselines.cot as cot
    from puzzles.dataset import BuildSpec, PuzzleDataset, build_dataset

    path = build_dataset(BuildSpec("maze", 9, "medium", train=160, test=0), tmp_path / "data")
    dataset = PuzzleDataset(path, "train")
    codec = CoTCodec(dataset.family)

    def epoch(window: int) -> list:
        monkeypatch.setattr(cot, "BUCKET_WINDOW", window)
        batches = cot.CoTBatches(dataset, codec, 16, seed=3, augment=False)
        return list(batches.epoch(0))

    bucketed = epoch(8)
    assert len(bucketed) == 10
    prompts = sorted(bytes(row[:81].numpy().astype(np.uint8)) for inputs, _ in bucketed
                     for row in inputs)
    assert prompts == sorted(bytes(row) for row in dataset.inputs)
    assert all(torch.equal(a, b) for (a, _), (b, _) in zip(bucketed, epoch(8), strict=True))

    def real_share(batches: list) -> float:  # of the tokens computed, those not padding
        return sum(int((x != 0).sum()) for x, _ in batches) / sum(x.numel() for x, _ in batches)

    assert real_share(bucketed) > real_share(epoch(1))


def test_cot_config_takes_the_presets_width_and_says_what_it_drops():
    from baselines.cot import cot_config
    from hrm.presets import preset

    settings = {k: v for k, v in preset("cpu-small")["model"].items() if k != "kind"}
    config = cot_config(settings, vocab_size=30, seq_len=500)
    # HRM's 2 + 2 blocks as layers; a trace is a sequence, so grid positions become learned
    assert (config.layers, config.hidden, config.positions) == (4, 128, "learned")
    assert config.max_len == 500 and config.vocab_size == 30
    assert cot_config({**settings, "max_len": 64}, 30, 500).max_len == 64
