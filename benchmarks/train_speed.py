"""Training throughput (example-segments per second) and peak memory of HRM steps: prints a
table and writes JSON.

    python benchmarks/train_speed.py [--hidden 128] [--seq 81] [--batch 64] [--steps 20]

Each row times full training steps (forward, loss, backward, AdamW) of the ACT loop on random
9×9-shaped data, after two warm-up steps, at the reference configuration: hidden 128, 2+2
layers, H/L cycles 2/2. Rows vary the precision (fp32, bf16 autocast), the halting target
(bootstrapped continue target: two forwards per step; halt-only: one) and the attention kernel.
Rows run one after another in one process, so their ratios are comparable.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch

from hrm.act import ACTConfig, act_step, new_carry
from hrm.allocator import keep_freed_memory
from hrm.model import HRM, HRMConfig


def time_act_steps(
    model: torch.nn.Module,
    act: ACTConfig,
    inputs: torch.Tensor,
    dtype: str,
    compiled: bool,
    warmup_steps: int,
    steps: int,
) -> tuple[float, float]:
    """Seconds for ``warmup_steps`` and then for ``steps`` full training steps of the ACT loop
    (forward, loss, backward, AdamW) on ``inputs`` [B, L] as both puzzle and answer."""
    stepped = torch.compile(model) if compiled else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    carry = new_carry(model, inputs, inputs)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16")

    def step() -> None:
        nonlocal carry
        with autocast:
            carry, loss, _ = act_step(stepped, carry, inputs, inputs, act)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    start = time.perf_counter()
    for _ in range(warmup_steps):
        step()
    warmup = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return warmup, time.perf_counter() - start


def time_steps(
    args: argparse.Namespace, dtype: str, halt_only: bool, attention: str, compiled: bool = False
) -> dict:
    torch.manual_seed(0)
    model = HRM(HRMConfig(vocab_size=11, seq_len=args.seq, hidden=args.hidden, heads=4))
    for module in model.modules():
        if hasattr(module, "path"):
            module.path = attention
    act = ACTConfig(max_segments=8, halt_only=halt_only)
    inputs = torch.randint(1, 11, (args.batch, args.seq))
    warmup, seconds = time_act_steps(model, act, inputs, dtype, compiled, 2, args.steps)
    return {
        "dtype": dtype,
        "target": "halt-only" if halt_only else "bootstrapped",
        "attention": attention,
        "compiled": compiled,
        "warmup_s": round(warmup, 1),
        "example_segments_per_s": round(args.steps * args.batch / seconds, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--seq", type=int, default=81)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default="benchmarks/train_speed.json")
    parser.add_argument("--compile", action="store_true",
                        help="only compare eager and torch.compile (bf16, explicit attention)")
    args = parser.parse_args()
    keep_freed_memory()  # as the hrm command does
    torch.set_num_threads(args.threads)
    if args.compile:
        variants = [("explicit", "bf16", h, c) for h in (False, True) for c in (False, True)]
    else:
        variants = [(a, d, h, False) for a in ("explicit", "sdpa") for d in ("fp32", "bf16")
                    for h in (False, True)]
    rows = []
    for attention, dtype, halt_only, compiled in variants:
        rows.append(time_steps(args, dtype, halt_only, attention, compiled))
        print(rows[-1], flush=True)
    header = f"{'attention':<10} {'dtype':<6} {'target':<13} {'compiled':<9} {'warm-up s':>9}"
    print(f"\n{header} {'example-segments/s':>19}")
    for r in rows:
        print(f"{r['attention']:<10} {r['dtype']:<6} {r['target']:<13} {str(r['compiled']):<9} "
              f"{r['warmup_s']:>9} {r['example_segments_per_s']:>19}")
    print(f"peak RSS {rows[-1]['peak_rss_mib']} MiB (process maximum over all rows)")
    with open(args.json, "w") as fh:
        json.dump({"args": vars(args), "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
