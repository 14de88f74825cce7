"""Training speed against the published HRM code, side by side in one process: prints a table and
writes JSON.

    git clone https://github.com/sapientinc/HRM /path/to/HRM   # not part of this project
    pip install pydantic                                         # the reference's configs need it
    python benchmarks/reference_speed.py --reference /path/to/HRM [--dtypes fp32,bf16]

Both sides run the identical algorithm: hidden 128, 4 heads, 2+2 layers, H/L cycles 2/2,
sequence 81, batch 64, learned positions, softmax cross-entropy, the one-step gradient, the
bootstrapped continue target (a second forward per step), exploration 0.1, up to 16 segments,
AdamW, eager. Ours takes ``expansion=6`` so that its SwiGLU inner width is the reference's 512
(the reference rounds to a multiple of 256); both then have 1,062,018 parameters.

The reference code is imported unchanged from the given checkout, with one shim: its attention
calls ``flash_attn_func(q, k, v, causal)``, which needs CUDA, so a module of that name is put on
the path that computes the same with ``F.scaled_dot_product_attention``. Its ``puzzle_emb_ndim``
is 0 (no per-puzzle embedding), and in bf16 its own ``forward_dtype="bfloat16"`` casts, where
ours runs under autocast.

Each round times ``--steps`` training steps of each side after three warm-up steps (inputs
doubling as labels, as in ``train_speed.py``), the order
alternating between rounds (A B, B A, ...), so that a machine slowing down or speeding up
shows as a spread rather than as a ratio.

``--variants`` adds rows of ours beyond the identical algorithm, timed in the same rounds:
``compiled`` (the same step through ``torch.compile``), ``halt-only`` (no continue target, so
no second forward) and ``halt-only-compiled``. Their ratios are against the reference's
bootstrapped eager step, the only one it has.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

BATCH, SEQ_LEN, VOCAB = 64, 81, 11

FLASH_SHIM = '''
import torch.nn.functional as F

def flash_attn_func(q, k, v, causal=False):  # [B, L, H, D] in and out
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                         is_causal=causal)
    return out.transpose(1, 2).contiguous()
'''


def import_reference(checkout: Path):
    """The reference's ACT model and loss head, imported from ``checkout`` with the shim."""
    if not (checkout / "models" / "hrm" / "hrm_act_v1.py").is_file():
        sys.exit(f"{checkout}: not a checkout of the published HRM code "
                 "(no models/hrm/hrm_act_v1.py)")
    shim = Path(tempfile.mkdtemp()) / "flash_attn_interface.py"
    shim.write_text(FLASH_SHIM)
    sys.path[:0] = [str(shim.parent), str(checkout)]
    from models.hrm.hrm_act_v1 import HierarchicalReasoningModel_ACTV1
    from models.losses import ACTLossHead

    return HierarchicalReasoningModel_ACTV1, ACTLossHead


def reference_timer(reference, dtype: str):
    """A function giving the seconds for N reference training steps (after three warm-up
    steps), and the reference model."""
    model_class, head_class = reference
    torch.manual_seed(0)
    config = dict(batch_size=BATCH, seq_len=SEQ_LEN, puzzle_emb_ndim=0, num_puzzle_identifiers=1,
                  vocab_size=VOCAB, H_cycles=2, L_cycles=2, H_layers=2, L_layers=2,
                  hidden_size=128, expansion=4, num_heads=4, pos_encodings="learned",
                  halt_max_steps=16, halt_exploration_prob=0.1,
                  forward_dtype="float32" if dtype == "fp32" else "bfloat16")
    head = head_class(model_class(config), "softmax_cross_entropy")
    head.train()
    inputs = torch.randint(1, VOCAB, (BATCH, SEQ_LEN), generator=torch.Generator().manual_seed(1))
    batch = {"inputs": inputs, "labels": inputs,
             "puzzle_identifiers": torch.zeros(BATCH, dtype=torch.int32)}
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-4)
    carry = head.initial_carry(batch)

    def step() -> None:
        nonlocal carry
        carry, loss, _, _, _ = head(carry=carry, batch=batch, return_keys=[])
        (loss / BATCH).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def timed(steps: int) -> float:
        for _ in range(3):
            step()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        return time.perf_counter() - start

    return timed, head


OUR_VARIANTS = {  # name: (halt_only, compiled)
    "ours": (False, False),
    "compiled": (False, True),
    "halt-only": (True, False),
    "halt-only-compiled": (True, True),
}
EXTRA_VARIANTS = ", ".join(v for v in OUR_VARIANTS if v != "ours")  # what --variants may name


def our_timer(dtype: str, variant: str = "ours"):
    """The same for ours at the same configuration, through ``train_speed.time_act_steps``;
    ``variant`` one of ``OUR_VARIANTS``."""
    from train_speed import time_act_steps  # this folder's training-step timer

    from hrm.act import ACTConfig
    from hrm.model import HRM, HRMConfig

    halt_only, compiled = OUR_VARIANTS[variant]
    torch.manual_seed(0)
    model = HRM(HRMConfig(vocab_size=VOCAB, seq_len=SEQ_LEN, hidden=128, heads=4, h_layers=2,
                          l_layers=2, h_cycles=2, l_cycles=2, positions="learned",
                          expansion=6.0))
    act = ACTConfig(max_segments=16, explore_prob=0.1, halt_only=halt_only)
    inputs = torch.randint(1, VOCAB, (BATCH, SEQ_LEN), generator=torch.Generator().manual_seed(1))

    def timed(steps: int) -> float:
        return time_act_steps(model, act, inputs, dtype, compiled, 3, steps)[1]

    return timed, model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True,
                        help="A checkout of the published HRM code.")
    parser.add_argument("--dtypes", default="fp32,bf16")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", default="",
                        help=f"comma-separated extra rows of ours: {EXTRA_VARIANTS}")
    parser.add_argument("--json", default="benchmarks/reference_speed.json")
    args = parser.parse_args()
    extras = [v for v in args.variants.split(",") if v]
    for variant in extras:  # before the reference is imported: a typo fails at once
        if variant not in OUR_VARIANTS or variant == "ours":
            sys.exit(f"unknown variant {variant!r}: choose from {EXTRA_VARIANTS}")
    torch.set_num_threads(args.threads)
    reference = import_reference(args.reference)

    sides = ["reference", "ours", *extras]
    rows = []
    for dtype in args.dtypes.split(","):
        timers = {"reference": reference_timer(reference, dtype)}
        timers.update((name, our_timer(dtype, name)) for name in sides[1:])
        sizes = [sum(p.numel() for p in timers[name][1].parameters()) for name in sides[:2]]
        for round_ in range(args.rounds):
            order = sides if round_ % 2 == 0 else sides[::-1]
            row = {"dtype": dtype, "round": round_ + 1, "order": order, "parameters": sizes}
            for name in order:
                row[name] = round(BATCH * args.steps / timers[name][0](args.steps), 1)
            for name in sides[1:]:
                row[f"{name}_ratio"] = round(row[name] / row["reference"], 2)
            rows.append(row)
            print(row, flush=True)

    print("\nexample-segments/s (ratio to the reference)")
    print(f"{'dtype':<5} {'round':>5} " + " ".join(f"{name:>20}" for name in sides))
    for r in rows:
        cells = [f"{r['reference']:>20}"] + [
            f"{r[name]:>12} ({r[name + '_ratio']:>4})".rjust(20) for name in sides[1:]]
        print(f"{r['dtype']:<5} {r['round']:>5} " + " ".join(cells))
    with open(args.json, "w") as fh:
        json.dump({"args": {**vars(args), "reference": str(args.reference)},
                   "machine": {"threads": args.threads}, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
