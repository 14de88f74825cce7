"""What a training step costs at maze sizes 15 and 30 for each way cells can meet: prints a table
and writes JSON.

    python benchmarks/maze_mixers.py [--sizes 15,30] [--steps 5] [--threads 2] [--dtype fp32]

Every row is the ``maze-small`` model (hidden 64, 2+2 blocks, cycles 1/1, halt-only target)
with one change to how cells mix:

- ``attention + conv``: the preset as it is, full attention beside the 3×3 grid convolution;
- ``attention``: full attention alone;
- ``conv``: the grid convolution alone (``model.mixer=none``), linear in the cells;
- ``token mixer + conv``: a SwiGLU across positions (``model.mixer=mlp``) beside the convolution.

Attention's cost grows with the square of the cells (225 at 15×15, 900 at 30×30); the rest grow
with the cells. A row times full training steps of the ACT loop at batch 64 (forward, backward,
AdamW) on random mazes after one warm-up step, eager, each in a fresh process so that its peak
resident memory is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

VARIANTS = {
    "attention + conv": {},
    "attention": {"grid_conv": False},
    "conv": {"mixer": "none"},
    "token mixer + conv": {"mixer": "mlp", "mixer_expansion": 1.0},
}


def measure(size: int, variant: str, dtype: str, steps: int, threads: int) -> dict:
    """Time one variant at one size in this process."""
    import torch
    from train_speed import time_act_steps  # this folder's training-step timer

    from hrm.act import ACTConfig
    from hrm.flops import training_step_flops
    from hrm.model import HRM, HRMConfig, count_parameters
    from hrm.presets import preset
    from puzzles import make_family

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    raw = preset("maze-small")
    family = make_family("maze", size)
    config = HRMConfig(vocab_size=family.vocab_size, seq_len=family.seq_len,
                       **{**raw["model"], **VARIANTS[variant]})
    model = HRM(config)
    act = ACTConfig(**raw["act"])
    batch = raw["train"]["batch_size"]
    inputs = torch.randint(1, family.vocab_size, (batch, family.seq_len))
    _, seconds = time_act_steps(model, act, inputs, dtype, False, 1, steps)
    return {
        "size": size,
        "variant": variant,
        "parameters": count_parameters(model),
        "dtype": dtype,
        "seconds_per_step": round(seconds / steps, 3),
        "example_segments_per_s": round(steps * batch / seconds, 1),
        "gflop_per_step": round(batch * training_step_flops(config, False) / 1e9, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="15,30")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--json", default="benchmarks/maze_mixers.json")
    parser.add_argument("--row", help=argparse.SUPPRESS)  # internal: run one row, print JSON
    args = parser.parse_args()
    if args.row:
        size, variant = args.row.split(":", 1)
        print(json.dumps(measure(int(size), variant, args.dtype, args.steps, args.threads)))
        return

    rows = []
    for size in args.sizes.split(","):
        for variant in VARIANTS:
            command = [sys.executable, __file__, "--row", f"{size}:{variant}", "--steps",
                       str(args.steps), "--threads", str(args.threads), "--dtype", args.dtype]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{size} {variant} failed:\n{done.stderr}", file=sys.stderr)
                sys.exit(1)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    print(f"\n{'size':>4} {'variant':<19} {'params':>8} {'s/step':>7} {'ex-seg/s':>9} "
          f"{'GFLOP/step':>10} {'peak MiB':>8}")
    for r in rows:
        print(f"{r['size']:>4} {r['variant']:<19} {r['parameters'] / 1e6:>7.3f}M "
              f"{r['seconds_per_step']:>7} {r['example_segments_per_s']:>9} "
              f"{r['gflop_per_step']:>10} {r['peak_rss_mib']:>8}")
    with open(args.json, "w") as fh:
        json.dump({"args": vars(args), "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
