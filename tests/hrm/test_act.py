import torch
from hypothesis import given
from hypothesis import strategies as st

from hrm.act import ACTConfig, act_step, halt_confidence, new_carry, wants_halt
from hrm.model import HRM, HRMConfig

halt_values = st.lists(st.tuples(st.floats(-20, 20), st.floats(-20, 20)), min_size=1, max_size=16)


@given(halt_values, st.booleans())
def test_a_threshold_of_one_half_is_the_papers_rule(values, halt_only):
    q = torch.tensor(values)
    paper = q[:, 0] > 0 if halt_only else q[:, 0] > q[:, 1]
    assert torch.equal(wants_halt(q, halt_only), paper)


@given(halt_values, st.booleans(), st.floats(0.01, 0.99), st.floats(0.01, 0.99))
def test_a_higher_threshold_halts_only_where_a_lower_one_does(values, halt_only, a, b):
    q = torch.tensor(values)
    low, high = sorted((a, b))
    assert not (wants_halt(q, halt_only, high) & ~wants_halt(q, halt_only, low)).any()
    confident = torch.sigmoid(q[:, 0] if halt_only else q[:, 0] - q[:, 1]) > high + 1e-3
    assert wants_halt(q, halt_only, high)[confident].all()


@given(halt_values, st.booleans(), st.floats(0.01, 0.99))
def test_the_confidence_shown_is_what_the_threshold_compares(values, halt_only, threshold):
    q = torch.tensor(values)
    confidence = halt_confidence(q, halt_only)
    clear = (confidence - threshold).abs() > 1e-4  # sigmoid rounds; compare away from the edge
    assert torch.equal(wants_halt(q, halt_only, threshold)[clear], (confidence > threshold)[clear])
    expected = torch.sigmoid(q[:, 0] if halt_only else q[:, 0] - q[:, 1])
    assert torch.equal(confidence, expected)


def test_a_target_function_replaces_the_stored_labels_in_the_loss():
    torch.manual_seed(0)
    model = HRM(HRMConfig(vocab_size=6, seq_len=16, hidden=16, heads=2, h_layers=1, l_layers=1,
                          h_cycles=1, l_cycles=1))
    inputs = torch.randint(1, 6, (4, 16))
    stored, wanted = torch.full((4, 16), 2), torch.randint(1, 6, (4, 16))
    config = ACTConfig(max_segments=2, halt_only=True)
    losses = {}
    for name, target in (("stored", None), ("function", lambda x, logits: wanted)):
        torch.manual_seed(1)
        _, _, metrics = act_step(model, new_carry(model, inputs, stored), inputs, stored,
                                 config, target=target)
        losses[name] = metrics["answer_loss"]
    torch.manual_seed(1)
    _, _, metrics = act_step(model, new_carry(model, inputs, wanted), inputs, wanted, config)
    assert losses["function"] == metrics["answer_loss"] != losses["stored"]
