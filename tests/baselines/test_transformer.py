import pytest
import torch

from baselines.transformer import Transformer, TransformerConfig, matched_layers
from hrm.act import ACTConfig, act_step, new_carry
from hrm.config import RunConfig, build_config, build_model
from hrm.model import HRM, HRMConfig, count_parameters
from hrm.train import phase


def small(**overrides) -> Transformer:
    torch.manual_seed(0)
    config = dict(vocab_size=6, seq_len=16, hidden=32, heads=4, layers=2)
    return Transformer(TransformerConfig(**{**config, **overrides}))


def test_matched_depth_gives_the_hrm_parameter_count():
    hrm = dict(hidden=32, heads=4, h_layers=2, l_layers=3, h_cycles=2, l_cycles=2)
    transformer = build_config(hrm | {"kind": "transformer"}, vocab_size=6, seq_len=16)
    assert transformer.layers == matched_layers(hrm) == 5
    hrm_params = count_parameters(HRM(HRMConfig(vocab_size=6, seq_len=16, **hrm)))
    assert count_parameters(build_model(transformer)) == hrm_params


def test_a_grid_conv_keeps_the_parameter_counts_matched():
    hrm = dict(hidden=32, heads=4, grid_conv=True)
    transformer = build_model(build_config(hrm | {"kind": "transformer"}, vocab_size=6, seq_len=16))
    assert all(block.grid_conv is not None for block in transformer.blocks)
    hrm_model = HRM(HRMConfig(vocab_size=6, seq_len=16, **hrm))
    assert count_parameters(transformer) == count_parameters(hrm_model)
    _, logits, _ = transformer(transformer.initial_state(2), torch.randint(1, 6, (2, 16)))
    assert logits.shape == (2, 16, 6)
    with pytest.raises(ValueError, match="square grid"):
        TransformerConfig(vocab_size=6, seq_len=15, grid_conv=True)


def test_a_token_mixer_keeps_the_parameter_counts_matched():
    hrm = dict(hidden=32, heads=4, mixer="mlp")
    transformer = build_model(build_config(hrm | {"kind": "transformer"}, vocab_size=6, seq_len=16))
    assert all(block.attn is None for block in transformer.blocks)
    assert transformer.embed.uncompiled
    hrm_model = HRM(HRMConfig(vocab_size=6, seq_len=16, **hrm))
    assert count_parameters(transformer) == count_parameters(hrm_model)
    _, logits, _ = transformer(transformer.initial_state(2), torch.randint(1, 6, (2, 16)))
    assert logits.shape == (2, 16, 6)
    with pytest.raises(ValueError, match="mixer"):
        TransformerConfig(vocab_size=6, seq_len=16, mixer="mlp", qk_norm=True)


def test_one_pass_ignores_the_state_and_refinement_reads_it():
    inputs = torch.randint(1, 6, (2, 16))
    for refine in (False, True):
        model = small(refine=refine)
        start = model.initial_state(2)
        state, first, _ = model(start, inputs)
        _, second, _ = model(state, inputs)
        assert torch.allclose(first, second) != refine
        assert first.shape == (2, 16, 6)


def test_feedback_needs_the_segment_loop():
    with pytest.raises(ValueError, match="feedback needs refine"):
        small(feedback=True)
    with pytest.raises(ValueError, match="feedback_threshold"):
        TransformerConfig(vocab_size=6, seq_len=16, refine=True, feedback=True,
                          feedback_threshold=0.0)
    model = small(refine=True, feedback=True)
    state, first, _ = model(model.initial_state(2), torch.randint(1, 6, (2, 16)))
    assert state.board.shape == (2, 16)


def test_a_refining_transformer_can_start_from_a_zero_state():
    model = small(refine=True, init_state_std=0.0)
    (z,) = model.initial_state(2).z  # one latent: its output
    assert not z.any()
    with pytest.raises(ValueError, match="init_state_std"):
        small(refine=True, init_state_std=-1.0)


def test_without_the_carried_state_only_the_board_passes_on():
    with pytest.raises(ValueError, match="carry_state=false needs feedback"):
        small(refine=True, carry_state=False)
    model = small(refine=True, feedback=True, feedback_threshold=0.2, carry_state=False)
    inputs = torch.randint(1, 6, (2, 16))
    state, _, _ = model(model.initial_state(2), inputs)
    _, second, _ = model(state, inputs)
    fresh = model.initial_state(2)
    fresh.board = state.board
    _, expected, _ = model(fresh, inputs)
    torch.testing.assert_close(second, expected)


def test_refining_transformer_runs_the_segment_loop():
    model = small(refine=True)
    inputs = torch.randint(1, 6, (4, 16))
    carry = new_carry(model, inputs, inputs)
    config = ACTConfig(max_segments=3, explore_prob=0.0)
    for _ in range(3):
        carry, loss, _ = act_step(model, carry, inputs, inputs, config)
        loss.backward()
    assert carry.halted.all() and (carry.segments == 3).all()


def test_one_pass_transformer_trains_with_one_segment():
    config = RunConfig.from_dict({"model": {"kind": "transformer"}, "act": {"max_segments": 8}})
    act, _, eval_segments = phase(config, step=10_000)
    assert act.max_segments == 1 and eval_segments == 1
    refining = RunConfig.from_dict({"model": {"kind": "transformer", "refine": True}})
    assert phase(refining, step=10_000)[0].max_segments == refining.act.max_segments


def test_bad_model_settings_are_rejected():
    with pytest.raises(ValueError, match="kind"):
        RunConfig.from_dict({"model": {"kind": "lstm"}})
    with pytest.raises(ValueError, match="not an HRM setting"):
        RunConfig.from_dict({"model": {"layers": 4}})
    with pytest.raises(ValueError, match="layers"):
        RunConfig.from_dict({"model": {"kind": "transformer", "layers": 0}})


def test_one_pass_transformer_learns_4x4_sudoku(tmp_path):
    """The tiny preset's data and width, as a one-pass transformer: it must fill blanks well
    above the copy baseline (givens copied, blanks guessed: about 0.45 cell accuracy)."""
    from hrm.presets import preset
    from hrm.train import train

    raw = preset("tiny")
    raw["model"]["kind"] = "transformer"
    raw["data"].update(train=500, test=100)
    raw["train"].update(max_steps=400, eval_every=400, checkpoint_every=400, threads=1,
                        schedule="constant")
    result = train(RunConfig.from_dict(raw), tmp_path / "run", progress=False)
    assert result["test_cell_accuracy"] >= 0.7
