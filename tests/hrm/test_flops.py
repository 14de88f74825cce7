import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from baselines.transformer import Transformer, TransformerConfig
from hrm.flops import inference_flops, segment_flops, training_step_flops
from hrm.model import HRM, HRMConfig


def counted_forward_flops(model, seq_len: int) -> int:
    inputs = torch.randint(1, 6, (1, seq_len))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(model.initial_state(1), inputs)
    return counter.get_total_flops()


@pytest.mark.parametrize("seq_len", [16, 81])
def test_hrm_segment_estimate_matches_torch_flop_counter(seq_len):
    config = HRMConfig(vocab_size=11, seq_len=seq_len, hidden=64, heads=4, h_cycles=2,
                       l_cycles=3)
    counted = counted_forward_flops(HRM(config), seq_len)
    assert segment_flops(config) == pytest.approx(counted, rel=0.02)


@pytest.mark.parametrize("seq_len, mixer_expansion", [(16, 4.0), (81, 4.0), (81, 2.0)])
def test_token_mixer_estimate_matches_torch_flop_counter(seq_len, mixer_expansion):
    config = HRMConfig(vocab_size=11, seq_len=seq_len, hidden=64, heads=4, mixer="mlp",
                       mixer_expansion=mixer_expansion)
    counted = counted_forward_flops(HRM(config), seq_len)
    assert segment_flops(config) == pytest.approx(counted, rel=0.02)
    attention = HRMConfig(vocab_size=11, seq_len=seq_len, hidden=64, heads=4)
    assert segment_flops(config) != segment_flops(attention)


def test_a_grid_conv_adds_nine_multiply_adds_per_channel_and_cell_to_every_block():
    plain = HRMConfig(vocab_size=11, seq_len=81, hidden=64, heads=4)
    conv = HRMConfig(vocab_size=11, seq_len=81, hidden=64, heads=4, grid_conv=True)
    blocks = plain.blocks()[0]
    assert segment_flops(conv) - segment_flops(plain) == blocks * 2 * 9 * 81 * 64


def test_without_a_mixer_a_block_costs_its_mlp_and_convolution_only():
    conv_only = HRMConfig(vocab_size=11, seq_len=81, hidden=64, heads=4, mixer="none",
                          grid_conv=True, positions="grid")
    conv = HRMConfig(vocab_size=11, seq_len=81, hidden=64, heads=4, grid_conv=True)
    blocks = conv.blocks()[0]
    attention = 2 * 81 * 4 * 64 * 64 + 4 * 81**2 * 64
    assert segment_flops(conv) - segment_flops(conv_only) == blocks * attention
    # the counter sees the matrix products (the convolution's multiply-adds it does not)
    counted = counted_forward_flops(HRM(conv_only), 81)
    assert segment_flops(conv_only) - blocks * 2 * 9 * 81 * 64 == pytest.approx(counted, rel=0.02)


def test_transformer_estimate_matches_torch_flop_counter():
    config = TransformerConfig(vocab_size=11, seq_len=81, hidden=64, heads=4, layers=3)
    counted = counted_forward_flops(Transformer(config), 81)
    assert segment_flops(config) == pytest.approx(counted, rel=0.02)


def test_gradient_windows_and_training_cost():
    config = dict(vocab_size=11, seq_len=81, h_cycles=2, l_cycles=2, h_layers=2, l_layers=2)
    assert HRMConfig(**config).blocks() == (12, 4)  # 4·2 low + 2·2 high; last L and H
    assert HRMConfig(**config, gradient="unrolled", unrolled_steps=3).blocks() == (12, 10)
    assert HRMConfig(**config, gradient="full").blocks() == (12, 12)
    one_step = HRMConfig(**config)
    halt_only = training_step_flops(one_step, bootstrapped_target=False)
    assert training_step_flops(one_step) == halt_only + segment_flops(one_step)
    assert training_step_flops(HRMConfig(**config, gradient="full"), False) > halt_only
    assert inference_flops(one_step, 8) == 8 * segment_flops(one_step)


def test_paper_configuration_costs_about_23_gflop_per_example_segment():
    paper = HRMConfig(vocab_size=11, seq_len=81, hidden=512, heads=8, h_layers=4, l_layers=4)
    assert 20e9 < training_step_flops(paper, bootstrapped_target=False) < 26e9
