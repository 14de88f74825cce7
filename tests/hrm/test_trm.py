import json

import pytest
import torch

from hrm.act import ACTConfig, act_step, new_carry
from hrm.config import RunConfig, build_config, build_model
from hrm.flops import segment_flops
from hrm.model import HRM, HRMConfig, count_parameters
from hrm.presets import preset
from hrm.segment_model import State
from hrm.trm import TRM, TRMConfig, trm_config


def small(**overrides) -> TRM:
    torch.manual_seed(0)
    config = dict(vocab_size=6, seq_len=16, hidden=32, heads=4, latent_steps=2, recursions=3)
    return TRM(TRMConfig(**{**config, **overrides}))


def test_a_segment_returns_an_answer_and_two_detached_latents():
    model = small()
    state, logits, q_values = model(model.initial_state(3), torch.randint(1, 6, (3, 16)))
    assert logits.shape == (3, 16, 6) and q_values.shape == (3, 2)
    assert len(state.z) == 2 and not any(z.requires_grad for z in state.z)


def test_only_the_last_recursion_carries_gradients():
    inputs = torch.randint(1, 6, (2, 16))
    for recursions, reaches_the_start in ((1, True), (3, False)):
        model = small(recursions=recursions)
        start = model.initial_state(2)
        y0, z0 = (z.clone().requires_grad_() for z in start.z)
        _, logits, _ = model(State((y0, z0)), inputs)
        logits.sum().backward()
        # the earlier recursions ran without gradients: nothing flows back to the start
        assert (y0.grad is not None) == reaches_the_start
        assert (z0.grad is not None) == reaches_the_start
        grads = [p.grad for p in model.net.parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads)
        assert model.embed.tokens.weight.grad.abs().sum() > 0  # through the last recursion


def test_one_network_makes_both_updates_and_the_answer_update_leaves_the_input_out():
    model = small(latent_steps=2, recursions=1)
    seen = []
    network = model.network
    model.network = lambda h, *rest: seen.append(h.detach().clone()) or network(h, *rest)
    inputs = torch.randint(1, 6, (1, 16))
    start = model.initial_state(1)
    x = model.read_puzzle(inputs, start)
    y, z = start.z
    model(start, inputs)
    assert len(seen) == 3  # two latent updates, then the answer update
    z1 = network(x + y + z, None)
    z2 = network(x + y + z1, None)
    torch.testing.assert_close(seen[0], (x + y + z).detach())
    torch.testing.assert_close(seen[2], (y + z2).detach())  # y + z: no x


def test_the_papers_defaults_and_a_smaller_network_than_hrm():
    config = TRMConfig(vocab_size=11, seq_len=81)
    assert (config.layers, config.latent_steps, config.recursions) == (2, 6, 3)
    hrm = HRM(HRMConfig(vocab_size=11, seq_len=81))  # 2 + 2 layers
    assert count_parameters(TRM(config)) < count_parameters(hrm)
    # 3 recursions of 6 + 1 updates through 2 layers; the last recursion differentiated
    assert config.blocks() == (42, 14)
    assert segment_flops(config) > segment_flops(hrm.config)


def test_an_hrm_preset_describes_a_trm_of_its_width():
    settings = {k: v for k, v in preset("cpu-small")["model"].items()}
    config = build_config({**settings, "kind": "trm"}, vocab_size=11, seq_len=81)
    assert isinstance(config, TRMConfig) and isinstance(build_model(config), TRM)
    assert (config.hidden, config.mixer, config.layers) == (128, "mlp", 2)
    assert trm_config({"layers": 3}, 11, 81).layers == 3
    # HRM's gradient setting (the preset's "full") is dropped; TRM's own ablation is kept
    assert not config.one_step_gradient
    assert build_config({**settings, "kind": "trm", "one_step_gradient": True},
                        vocab_size=11, seq_len=81).one_step_gradient
    with pytest.raises(ValueError, match="model.refine is not a TRM setting"):
        trm_config({"refine": True}, 11, 81)
    with pytest.raises(ValueError, match="recursions must be at least 1"):
        TRMConfig(vocab_size=6, seq_len=16, recursions=0)


def test_trm_runs_the_segment_loop_with_the_halt_only_target():
    model = small()
    inputs = torch.randint(1, 6, (4, 16))
    carry = new_carry(model, inputs, inputs)
    config = ACTConfig(max_segments=2, explore_prob=0.0, halt_only=True)
    for _ in range(2):
        carry, loss, _ = act_step(model, carry, inputs, inputs, config)
        loss.backward()
    assert carry.halted.all() and (carry.segments == 2).all()


def test_trm_learns_4x4_sudoku(tmp_path):
    from hrm.train import train

    raw = preset("tiny")
    raw["model"].update(kind="trm", latent_steps=2, recursions=2)
    raw["act"].update(halt_only=True)
    raw["data"].update(train=500, test=50)
    raw["train"].update(max_steps=200, eval_every=200, checkpoint_every=200, threads=1,
                        log_every=10)
    result = train(RunConfig.from_dict(raw), tmp_path / "run", progress=False)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    accuracy = [r["cell_accuracy"] for r in lines if "cell_accuracy" in r]
    assert accuracy[-1] > accuracy[0] + 0.2  # 0.25 (a guess among four digits) at the start
    assert result["test_cell_accuracy"] > 0.5
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["model_kind"] == "trm" and saved["model_config"]["recursions"] == 2

    # evaluation, solving with its steps, and attempts take a TRM run as they take HRM's
    from eval import AttemptSettings, evaluate, load_run, solve_puzzles
    from puzzles.dataset import PuzzleDataset

    run = load_run(tmp_path / "run")
    test = PuzzleDataset(tmp_path / "run" / "data", "test")
    measured = evaluate(run, test, caps=[1, 4])  # at the training segments, as training did
    assert measured["cell_accuracy"] == pytest.approx(result["test_cell_accuracy"])
    assert measured["solved"]["rate"] == pytest.approx(result["test_solved"])
    puzzle = run.family.decode(test.inputs[0])
    plain = solve_puzzles(run, [puzzle], segments=3)[0]
    assert plain.segments == 3 and len(plain.steps) == 3
    tried = solve_puzzles(run, [puzzle], attempts=AttemptSettings(4))[0]
    assert 1 <= tried.attempts <= 4 and tried.passes_rules == tried.grade.solved

    # a run saved while the one-step ablation was `gradient` ("recursion" or "one_step") loads
    for old, one_step in (("recursion", False), ("one_step", True)):
        saved["model_config"].pop("one_step_gradient", None)
        saved["model_config"]["gradient"] = old
        (tmp_path / "run" / "config.json").write_text(json.dumps(saved))
        assert load_run(tmp_path / "run").model.config.one_step_gradient is one_step


def test_ablations_a_second_network_for_the_answer_and_the_one_step_gradient():
    one, two = small(), small(networks=2)
    assert one.answer_net is None and two.answer_net is not None
    assert count_parameters(two) == count_parameters(one) + count_parameters(two.answer_net)
    inputs = torch.randint(1, 6, (2, 16))
    _, logits, _ = two(two.initial_state(2), inputs)
    logits.sum().backward()
    assert all(p.grad is not None for p in two.answer_net.parameters())
    assert TRMConfig(vocab_size=6, seq_len=16, one_step_gradient=True).blocks() == (42, 4)
    for one_step, z_gets_gradient in ((False, True), (True, False)):
        model = small(recursions=1, latent_steps=2, one_step_gradient=one_step)
        y0, z0 = (z.clone().requires_grad_() for z in model.initial_state(2).z)
        _, logits, _ = model(State((y0, z0)), inputs)
        logits.sum().backward()
        # one step: the first latent update (the only one that reads z0) has no gradient
        assert (z0.grad is not None) == z_gets_gradient and y0.grad is not None
    with pytest.raises(ValueError, match="networks must be 1 or 2"):
        TRMConfig(vocab_size=6, seq_len=16, networks=3)


def test_hrm_with_one_network_for_both_modules():
    torch.manual_seed(0)
    config = dict(vocab_size=6, seq_len=16, hidden=32, heads=4, h_layers=2, l_layers=2)
    split, shared = HRM(HRMConfig(**config)), HRM(HRMConfig(**config, shared_network=True))
    assert shared.high is None
    assert count_parameters(split) - count_parameters(shared) == count_parameters(split.high)
    _, logits, _ = shared(shared.initial_state(2), torch.randint(1, 6, (2, 16)))
    logits.sum().backward()
    assert all(p.grad is not None for p in shared.low.parameters())
    assert not any(name.startswith("high.") for name in shared.state_dict())
    with pytest.raises(ValueError, match="shared_network needs h_layers == l_layers"):
        HRMConfig(**{**config, "h_layers": 1}, shared_network=True)


@pytest.mark.parametrize("kind", ["trm", "transformer", "cot"])
def test_what_a_kind_drops_changes_nothing_and_what_it_keeps_is_not_dropped(kind):
    """``drops`` (what a named setting is refused for) says exactly what the kind ignores."""
    from hrm.kinds import kind_of

    settings = {**preset("cpu-small")["model"], "feedback": True, "init_state_std": 0.5}
    drops = kind_of(kind).drops(settings)
    base = build_config({**settings, "kind": kind}, vocab_size=11, seq_len=81)
    assert {"h_cycles", "l_cycles", "gradient"} <= drops
    for name in drops:
        changed = {**settings, name: settings[name] * 2 if name != "gradient" else "one_step"}
        assert build_config({**changed, "kind": kind}, vocab_size=11, seq_len=81) == base
    # HRM's layer counts set a baseline's depth unless its own is given
    assert ("h_layers" in drops) == (kind == "trm")


def test_trm_small_preset_learns_4x4_sudoku(tmp_path):
    """The `trm-small` recipe (its model, halting, schedule shape and weight averaging) at 4×4
    and a few hundred steps: it must learn, and its run must keep the averaged weights."""
    from safetensors.torch import load_file

    from hrm.train import train

    raw = preset("trm-small")
    assert raw["model"]["kind"] == "trm" and raw["train"]["ema"] > 0
    raw["data"].update(size=4, train=500, test=100)
    raw["model"].update(hidden=64)
    raw["train"].update(max_steps=600, shallow_steps=200, warmup_steps=20, eval_every=600,
                        checkpoint_every=600, calibrate_halting=0, compile=False, threads=1,
                        ema=0.9)
    result = train(RunConfig.from_dict(raw), tmp_path / "run", progress=False)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    accuracy = [r["cell_accuracy"] for r in lines if "cell_accuracy" in r]
    assert accuracy[-1] > accuracy[0] + 0.4  # 0.25 (a guess among four digits) at the start
    # measured: 0.91 of the cells and 55% of the puzzles
    assert result["test_cell_accuracy"] > 0.8 and result["test_solved"] >= 0.2
    state = load_file(tmp_path / "run" / "checkpoint" / "trainer_state.safetensors")
    assert any(k.startswith("ema/") for k in state)
