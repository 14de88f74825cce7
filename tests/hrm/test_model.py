import pytest
import torch

from hrm.act import ACTConfig, act_step, new_carry
from hrm.model import HRM, HRMConfig, count_parameters
from hrm.presets import preset


def small(**overrides) -> HRM:
    torch.manual_seed(0)
    config = dict(vocab_size=6, seq_len=16, hidden=32, heads=4, h_layers=1, l_layers=1)
    return HRM(HRMConfig(**{**config, **overrides}))


def test_segment_shapes_and_detached_state():
    model = small()
    inputs = torch.randint(1, 6, (3, 16))
    state, logits, q_values = model(model.initial_state(3), inputs)
    assert logits.shape == (3, 16, 6) and q_values.shape == (3, 2)
    assert len(state.z) == 2 and not any(z.requires_grad for z in state.z)


def test_q_head_starts_far_from_halting():
    model = small()
    _, _, q_values = model(model.initial_state(2), torch.ones(2, 16, dtype=torch.long))
    assert torch.allclose(q_values, torch.full_like(q_values, -5.0))


@pytest.mark.parametrize("gradient", ["one_step", "unrolled", "full"])
def test_every_gradient_mode_reaches_both_modules(gradient):
    model = small(gradient=gradient)
    _, logits, _ = model(model.initial_state(2), torch.randint(1, 6, (2, 16)))
    logits.sum().backward()
    for module in (model.low, model.high, model.embed):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads)


def test_a_token_mixer_model_trains_every_part_and_keeps_its_lookup_uncompiled():
    model = small(mixer="mlp", positions="grid", gradient="full")
    assert all(block.attn is None for block in [*model.low.blocks, *model.high.blocks])
    assert model.embed.uncompiled and not small().embed.uncompiled
    _, logits, _ = model(model.initial_state(2), torch.randint(1, 6, (2, 16)))
    logits.sum().backward()
    for module in (model.low, model.high, model.embed):
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_one_step_gradient_differs_from_full_backprop():
    inputs = torch.randint(1, 6, (2, 16))
    grads = {}
    for gradient in ("one_step", "full"):
        model = small(gradient=gradient)
        _, logits, _ = model(model.initial_state(2), inputs)
        logits.square().mean().backward()
        grads[gradient] = model.embed.tokens.weight.grad.clone()
    assert not torch.allclose(grads["one_step"], grads["full"])


def test_unrolled_gradient_spans_between_one_step_and_full():
    inputs = torch.randint(1, 6, (2, 16))

    def embedding_grad(**overrides) -> torch.Tensor:
        model = small(h_cycles=2, l_cycles=2, **overrides)
        _, logits, _ = model(model.initial_state(2), inputs)
        logits.square().mean().backward()
        return model.embed.tokens.weight.grad.clone()

    one_step, full = embedding_grad(gradient="one_step"), embedding_grad(gradient="full")
    assert torch.allclose(embedding_grad(gradient="unrolled", unrolled_steps=1), one_step)
    assert torch.allclose(embedding_grad(gradient="unrolled", unrolled_steps=4), full)
    two = embedding_grad(gradient="unrolled", unrolled_steps=2)
    assert not torch.allclose(two, one_step) and not torch.allclose(two, full)


def test_cycles_override_runs_a_shallower_segment():
    model = small(h_cycles=2, l_cycles=2)
    inputs = torch.randint(1, 6, (2, 16))
    start = model.initial_state(2)
    _, deep, _ = model(start, inputs)
    _, shallow, _ = model(start, inputs, (1, 1))
    _, reference, _ = small(h_cycles=1, l_cycles=1)(start, inputs)
    assert torch.allclose(shallow, reference) and not torch.allclose(shallow, deep)


@pytest.mark.parametrize("mixer", ["attention", "mlp"])
def test_a_grid_conv_starts_at_zero_and_then_changes_the_answer(mixer):
    positions = "grid"
    inputs = torch.randint(1, 6, (2, 16))
    plain = small(mixer=mixer, positions=positions)
    conv = small(mixer=mixer, positions=positions, grid_conv=True)
    blocks = [*conv.low.blocks, *conv.high.blocks]
    assert all(block.grid_conv is not None for block in blocks)
    _, expected, _ = plain(plain.initial_state(2), inputs)
    _, logits, _ = conv(conv.initial_state(2), inputs)
    torch.testing.assert_close(logits, expected)  # same initialisation, zero kernels
    logits.sum().backward()
    assert all(block.grid_conv.weight.grad.abs().sum() > 0 for block in blocks)
    with torch.no_grad():
        for block in blocks:
            block.grid_conv.weight.normal_()
    _, changed, _ = conv(conv.initial_state(2), inputs)
    assert not torch.allclose(changed, expected)
    with pytest.raises(ValueError, match="grid_conv needs a square grid"):
        HRMConfig(vocab_size=6, seq_len=15, grid_conv=True)


def test_feedback_first_segment_reads_the_plain_puzzle():
    inputs = torch.randint(1, 6, (2, 16))
    plain, fed = small(), small(feedback=True)
    fed.load_state_dict(plain.state_dict(), strict=False)  # the same weights; zero marker
    start = fed.initial_state(2)
    assert start.board.shape == (2, 16) and not start.board.any()
    _, expected, _ = plain(plain.initial_state(2), inputs)
    state, logits, _ = fed(start, inputs)
    torch.testing.assert_close(logits, expected)
    assert state.board.dtype == torch.long


def test_feedback_fills_confident_cells_and_the_next_segment_reads_them():
    model = small(feedback=True, feedback_threshold=0.5)
    logits = torch.full((1, 16, 6), -10.0)
    logits[0, :, 2] = 10.0  # sure of token 2 everywhere ...
    logits[0, 5] = 0.0  # ... but cell 5
    board = model.feedback.board(logits)
    assert board[0, 5] == 0 and (board[0, torch.arange(16) != 5] == 2).all()

    inputs = torch.randint(1, 6, (1, 16))
    start = model.initial_state(1)
    _, empty, _ = model(start, inputs)
    filled = model.initial_state(1)
    filled.board = board
    _, read, _ = model(filled, inputs)
    assert not torch.allclose(read, empty)
    _, same, _ = model(filled, torch.where(board > 0, board, inputs))
    torch.testing.assert_close(read, same)  # a filled cell reads as a given one (zero marker)
    read.sum().backward()
    assert model.feedback.filled.grad.abs().sum() > 0  # the marker learns to tell them apart


def test_without_the_carried_state_only_the_board_passes_on():
    with pytest.raises(ValueError, match="carry_state=false needs feedback"):
        small(carry_state=False)
    model = small(feedback=True, feedback_threshold=0.2, carry_state=False)
    inputs = torch.randint(1, 6, (2, 16))
    state, _, _ = model(model.initial_state(2), inputs)
    assert state.board.any()
    _, second, _ = model(state, inputs)
    fresh = model.initial_state(2)
    fresh.board = state.board
    _, expected, _ = model(fresh, inputs)  # the first segment's computation on a fuller board
    torch.testing.assert_close(second, expected)
    carried = small(feedback=True, feedback_threshold=0.2)
    _, carried_second, _ = carried(state, inputs)
    assert not torch.allclose(carried_second, expected)


def test_feedback_board_follows_resets_rows_and_extensions():
    model = small(feedback=True)
    state = model.initial_state(3)
    state.board = torch.ones(3, 16, dtype=torch.long)
    reset = model.reset(state, torch.tensor([True, False, True]))
    assert reset.board[:, 0].tolist() == [0, 1, 0]
    assert reset.rows(torch.tensor([1])).board.shape == (1, 16)
    assert reset.extend(model.initial_state(2)).board.shape == (5, 16)


def test_reset_restores_the_initial_state_only_where_asked():
    model = small()
    state, _, _ = model(model.initial_state(2), torch.randint(1, 6, (2, 16)))
    reset = model.reset(state, torch.tensor([True, False]))
    for z, initial in zip(reset.z, (model.z_high_init, model.z_low_init), strict=True):
        assert torch.equal(z[0, 3], initial)
    for z, before in zip(reset.z, state.z, strict=True):
        assert torch.equal(z[1], before[1])


def test_act_step_halts_at_max_segments_and_reloads_halted_slots():
    model = small()
    config = ACTConfig(max_segments=2, explore_prob=0.0)
    first = torch.randint(2, 6, (4, 16))
    second = torch.randint(2, 6, (4, 16))
    carry = new_carry(model, first, first)
    carry, loss, _ = act_step(model, carry, first, first, config)
    assert torch.isfinite(loss) and torch.equal(carry.inputs, first)
    assert (carry.segments == 1).all() and not carry.halted.any()  # Q starts at "continue"
    carry, _, _ = act_step(model, carry, second, second, config)
    assert carry.halted.all() and torch.equal(carry.inputs, first)  # still the first examples
    carry, _, _ = act_step(model, carry, second, second, config)
    assert torch.equal(carry.inputs, second) and (carry.segments == 1).all()


def test_the_carry_runs_segments_in_lockstep():
    model = small()
    inputs = torch.randint(2, 6, (4, 16))
    carry = new_carry(model, inputs, inputs)
    for expected in (1, 2, 3, 1):
        carry, _, _ = act_step(model, carry, inputs, inputs, ACTConfig(max_segments=3))
        assert (carry.segments == expected).all()


def test_one_segment_per_example_halts_every_step():
    model = small()
    inputs = torch.randint(2, 6, (4, 16))
    carry = new_carry(model, inputs, inputs)
    carry, loss, _ = act_step(model, carry, inputs, inputs, ACTConfig(max_segments=1))
    assert torch.isfinite(loss) and carry.halted.all()


def test_initial_states_keep_the_papers_scale_by_default_and_can_start_at_zero():
    paper = small()
    for vector in (paper.z_high_init, paper.z_low_init):
        assert 0.5 < float(vector.std()) < 1.5 and float(vector.abs().max()) <= 2.0
    quiet = small(init_state_std=0.0)
    state = quiet.initial_state(2)
    assert not any(z.any() for z in state.z)
    _, logits, _ = quiet(state, torch.randint(1, 6, (2, 16)))
    assert torch.isfinite(logits).all()


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="init_state_std"):
        HRMConfig(vocab_size=6, seq_len=16, init_state_std=-0.5)
    with pytest.raises(ValueError, match="gradient"):
        HRMConfig(vocab_size=6, seq_len=16, gradient="sometimes")
    with pytest.raises(ValueError, match="h_cycles"):
        HRMConfig(vocab_size=6, seq_len=16, h_cycles=0)
    with pytest.raises(ValueError, match="feedback_threshold"):
        HRMConfig(vocab_size=6, seq_len=16, feedback=True, feedback_threshold=1.0)
    with pytest.raises(ValueError, match="mixer"):
        HRMConfig(vocab_size=6, seq_len=16, mixer="mlp", positions="rope")


def test_paper_preset_builds_and_takes_a_step_on_cpu():
    cfg = preset("paper")
    torch.manual_seed(0)
    model = HRM(HRMConfig(vocab_size=11, seq_len=81, **cfg["model"]))
    assert 25e6 < count_parameters(model) < 29e6  # the paper's 27M
    inputs = torch.randint(1, 11, (1, 81))
    carry = new_carry(model, inputs, inputs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    before = model.output_head.weight.clone()
    act = ACTConfig(**{**cfg["act"], "halt_only": True})
    _, loss, _ = act_step(model, carry, inputs, inputs, act)
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss) and not torch.equal(before, model.output_head.weight)
