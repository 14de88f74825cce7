import torch
from hypothesis import given
from hypothesis import strategies as st

from hrm.act import halt_confidence, wants_halt

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
