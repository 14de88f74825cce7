import pytest
import torch

from hrm.layers import (
    Attention,
    Block,
    GridConv,
    KVCache,
    RotaryEmbedding,
    TokenEmbedding,
    check_mixer,
    rms_norm,
    softmax_cross_entropy,
    stablemax,
    stablemax_cross_entropy,
)
from hrm.segment_model import SegmentModelConfig


@pytest.mark.parametrize("causal", [False, True])
def test_explicit_and_sdpa_attention_agree(causal):
    torch.manual_seed(0)
    attention = Attention(hidden=32, heads=4, causal=causal)
    x = torch.randn(3, 17, 32)
    attention.path = "explicit"
    explicit = attention(x)
    attention.path = "sdpa"
    fused = attention(x)
    torch.testing.assert_close(explicit, fused, rtol=1e-4, atol=1e-5)


def test_grid_conv_is_a_zero_padded_depthwise_3x3_convolution():
    torch.manual_seed(0)
    conv = GridConv(hidden=8, seq_len=25)  # a 5×5 grid, cells row by row
    torch.nn.init.normal_(conv.weight)
    x = torch.randn(2, 25, 8)
    image = x.view(2, 5, 5, 8).permute(0, 3, 1, 2)  # [B, D, 5, 5]
    kernel = conv.weight.permute(2, 0, 1).unsqueeze(1)  # [D, 1, 3, 3]
    expected = torch.nn.functional.conv2d(image, kernel, padding=1, groups=8)
    torch.testing.assert_close(conv(x), expected.permute(0, 2, 3, 1).reshape(2, 25, 8))


def test_grid_conv_reads_a_cell_and_its_eight_neighbours_only():
    conv = GridConv(hidden=4, seq_len=25)
    torch.nn.init.normal_(conv.weight)
    x = torch.randn(1, 25, 4)
    changed = x.clone()
    changed[:, 12] += 1.0  # the centre cell (2, 2)
    moved = (conv(changed) - conv(x)).abs().amax(-1)[0].view(5, 5) > 1e-6
    expected = torch.zeros(5, 5, dtype=torch.bool)
    expected[1:4, 1:4] = True
    assert torch.equal(moved, expected)


def test_grid_conv_starts_at_zero_and_needs_a_square_grid():
    x = torch.randn(2, 16, 8)
    assert torch.equal(GridConv(hidden=8, seq_len=16)(x), torch.zeros_like(x))
    with pytest.raises(ValueError, match="square grid"):
        GridConv(hidden=8, seq_len=15)
    with pytest.raises(ValueError, match="no causal mask"):
        Block(hidden=32, heads=4, expansion=2.0, causal=True, seq_len=9, grid_conv=True)


def test_causal_attention_ignores_the_future():
    torch.manual_seed(0)
    attention = Attention(hidden=16, heads=2, causal=True)
    x = torch.randn(1, 6, 16)
    changed = x.clone()
    changed[0, 4:] += 1.0
    torch.testing.assert_close(attention(x)[0, :4], attention(changed)[0, :4])


@pytest.mark.parametrize("path", ["explicit", "sdpa"])
@pytest.mark.parametrize("positions", ["learned", "rope"])
def test_cached_decoding_matches_the_full_causal_pass(path, positions):
    """A prefix, then a chunk of two, then one token at a time, through a KV cache per layer,
    gives what one causal pass over the whole sequence gives."""
    torch.manual_seed(0)
    embed = TokenEmbedding(vocab=7, hidden=32, max_len=12, positions=positions)
    rotary = RotaryEmbedding(8, 12) if positions == "rope" else None
    blocks = [Block(32, 4, 2.0, causal=True) for _ in range(2)]
    for block in blocks:
        block.attn.path = path
    tokens = torch.randint(1, 7, (2, 12))

    def run(chunk: torch.Tensor, offset: int, caches: list | None) -> torch.Tensor:
        x = embed(chunk, offset)
        for i, block in enumerate(blocks):
            x = block(x, rotary, caches[i] if caches is not None else None)
        return x

    full = run(tokens, 0, None)
    caches = [KVCache() for _ in blocks]
    pieces = [run(tokens[:, :7], 0, caches), run(tokens[:, 7:9], 7, caches)]
    pieces += [run(tokens[:, t : t + 1], t, caches) for t in range(9, 12)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=1e-4, atol=1e-5)
    assert caches[0].length == 12


def test_rms_norm_gives_unit_root_mean_square():
    x = torch.randn(4, 5, 64) * 7
    assert torch.allclose(rms_norm(x).pow(2).mean(-1), torch.ones(4, 5), atol=1e-3)


def test_post_norm_block_output_has_unit_scale():
    block = Block(hidden=32, heads=4, expansion=4.0)
    y = block(torch.randn(2, 9, 32) * 10)
    assert torch.allclose(y.pow(2).mean(-1), torch.ones(2, 9), atol=1e-3)


def test_token_mixer_block_mixes_positions_without_attention():
    torch.manual_seed(0)
    block = Block(hidden=32, heads=4, expansion=2.0, mixer="mlp", seq_len=9)
    assert block.attn is None
    x = torch.randn(2, 9, 32)
    y = block(x)
    assert torch.allclose(y.pow(2).mean(-1), torch.ones(2, 9), atol=1e-3)
    changed = x.clone()
    changed[:, 0] += 1.0  # one cell changes: every other cell's output must see it
    moved = (block(changed) - y).abs().amax(-1)[:, 1:]
    assert (moved > 1e-4).all()
    with pytest.raises(ValueError, match="fixed sequence length"):
        Block(hidden=32, heads=4, expansion=2.0, mixer="mlp")
    with pytest.raises(ValueError, match="fixed sequence length"):
        Block(hidden=32, heads=4, expansion=2.0, causal=True, mixer="mlp", seq_len=9)


@pytest.mark.parametrize("settings", [dict(mixer="conv"), dict(mixer="mlp", positions="rope"),
                                      dict(mixer="mlp", qk_norm=True),
                                      dict(mixer="mlp", mixer_expansion=0.0),
                                      dict(mixer="none", grid_conv=True, positions="rope"),
                                      dict(mixer="none", grid_conv=False)])
def test_mixer_settings_that_need_attention_are_refused(settings):
    with pytest.raises(ValueError, match="mixer"):
        check_mixer(settings.get("mixer"), settings.get("positions", "grid"),
                    settings.get("qk_norm", False),
                    settings.get("mixer_expansion", 4.0), settings.get("grid_conv", False))


def test_a_block_without_a_mixer_reads_only_the_neighbours_of_a_cell():
    torch.manual_seed(0)
    block = Block(hidden=16, heads=2, expansion=2.0, mixer="none", seq_len=25, grid_conv=True)
    assert block.attn is None and block.token_mixer is None
    with torch.no_grad():
        block.grid_conv.weight.normal_()
    x = torch.randn(1, 25, 16)
    changed = x.clone()
    changed[:, 12] += 1.0  # the centre of a 5×5 grid
    moved = ((block(changed) - block(x)).abs().amax(-1) > 1e-6).view(5, 5)
    expected = torch.zeros(5, 5, dtype=torch.bool)
    expected[1:4, 1:4] = True
    assert torch.equal(moved, expected)
    with pytest.raises(ValueError, match="grid_conv"):
        Block(hidden=16, heads=2, expansion=2.0, mixer="none", seq_len=25)


def test_stablemax_is_positive_and_monotone():
    x = torch.linspace(-50, 50, 101)
    s = stablemax(x)
    assert (s > 0).all() and (s[1:] > s[:-1]).all()
    assert stablemax(torch.tensor(0.0)) == 1.0


def test_stablemax_cross_entropy_matches_its_definition():
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    labels = torch.tensor([0])
    s = torch.tensor([3.0, 0.5, 1.5])
    expected = -torch.log(s[0] / s.sum())
    torch.testing.assert_close(stablemax_cross_entropy(logits, labels)[0], expected.float())


def test_stablemax_gradient_is_finite_at_one():
    # at x = 1 the unused branch 1 / (1 - x) is infinite; its gradient must not leak as NaN
    logits = torch.tensor([[1.0, -2.0, 0.0, 1.0, 300.0]], requires_grad=True)
    stablemax_cross_entropy(logits, torch.tensor([0])).sum().backward()
    assert torch.isfinite(logits.grad).all()


def test_cross_entropies_ignore_the_ignore_index():
    logits = torch.randn(2, 3, 5)
    labels = torch.tensor([[1, -100, 2], [0, 4, -100]])
    for loss in (softmax_cross_entropy, stablemax_cross_entropy):
        values = loss(logits, labels)
        assert values.shape == (2, 3)
        assert values[0, 1] == 0 and values[1, 2] == 0 and (values[labels != -100] > 0).all()


def test_grid_positions_share_a_row_vector_and_a_column_vector():
    embed = TokenEmbedding(vocab=4, hidden=16, max_len=9, positions="grid")
    table = embed.position_table()  # [9, 16], cells row by row on a 3×3 grid
    assert table.shape == (9, 16)
    assert torch.allclose(table[0] - table[1], table[6] - table[7])  # columns 0 and 1
    assert torch.allclose(table[0] - table[3], table[2] - table[5])  # rows 0 and 1
    assert not torch.allclose(table[0], table[4])
    with pytest.raises(ValueError, match="square"):
        TokenEmbedding(vocab=4, hidden=16, max_len=8, positions="grid")


def test_learned_positions_make_positions_distinguishable():
    embed = TokenEmbedding(vocab=4, hidden=16, max_len=8, positions="learned")
    x = embed(torch.zeros(1, 8, dtype=torch.long))
    assert not torch.allclose(x[0, 0], x[0, 1])
    with pytest.raises(ValueError, match="positions"):  # checked once, by the model's config
        SegmentModelConfig(vocab_size=4, seq_len=8, positions="sinusoidal")


@pytest.mark.parametrize("path", ["explicit", "sdpa"])
def test_normalised_queries_and_keys_make_scores_independent_of_the_input_scale(path):
    torch.manual_seed(0)
    attention = Attention(hidden=32, heads=4, qk_norm=True)
    attention.path = path
    x = torch.randn(2, 9, 32)
    # queries and keys are normalised, values are linear: only the values grow with x
    assert torch.allclose(attention(100 * x), 100 * attention(x), rtol=1e-4, atol=1e-2)
    plain = Attention(hidden=32, heads=4)
    plain.load_state_dict({k: v for k, v in attention.state_dict().items() if k != "qk_gain"})
    plain.path = path
    assert not torch.allclose(plain(100 * x), 100 * plain(x), rtol=1e-2, atol=1e-1)
