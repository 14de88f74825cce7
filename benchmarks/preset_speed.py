"""Training throughput and peak memory of every preset, fp32 and bf16, eager and compiled:
prints a table and writes JSON.

    python benchmarks/preset_speed.py [--presets tiny,cpu-small,...] [--steps 20] [--threads 2]

A row builds the preset's model at its data's shape (vocabulary and sequence length from the
puzzle family, no dataset needed) and times full training steps of the ACT loop (forward,
bootstrapped or halt-only Q target as the preset says, backward, AdamW) at the preset's batch
size on random puzzles, after warm-up steps that also absorb torch.compile's compilation. Each
row runs in a fresh process so its peak resident memory is its own. Example-segments per
second = batch × steps / seconds.

The ``paper`` preset (27M parameters, batch 768) is for GPUs: on CPU its row runs at batch 8
(marked), which times the model without taking an hour a step.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

CPU_BATCH_OVERRIDE = {"paper": 8}


def measure(name: str, dtype: str, compiled: bool, steps: int, threads: int) -> dict:
    """Time one configuration in this process."""
    import torch
    from train_speed import time_act_steps  # this folder's training-step timer

    from hrm.act import ACTConfig
    from hrm.config import build_config, build_model
    from hrm.model import count_parameters
    from hrm.presets import preset
    from puzzles import make_family

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    raw = preset(name)
    data = raw["data"]
    family = make_family(data["family"], data["size"])
    model = build_model(build_config(raw["model"], family.vocab_size, family.seq_len))
    act = ACTConfig(**raw.get("act", {}))
    batch = CPU_BATCH_OVERRIDE.get(name, raw["train"].get("batch_size", 64))
    inputs = torch.randint(1, family.vocab_size, (batch, family.seq_len))
    warmup, seconds = time_act_steps(model, act, inputs, dtype, compiled, 3, steps)
    return {
        "preset": name,
        "parameters": count_parameters(model),
        "batch": batch,
        "seq_len": family.seq_len,
        "halting_target": "halt-only" if act.halt_only else "bootstrapped",
        "dtype": dtype,
        "compiled": compiled,
        "warmup_s": round(warmup, 1),
        "example_segments_per_s": round(steps * batch / seconds, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    from hrm.presets import PRESETS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default=",".join(PRESETS))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default="benchmarks/preset_speed.json")
    parser.add_argument("--row", help=argparse.SUPPRESS)  # internal: run one row, print JSON
    args = parser.parse_args()
    if args.row:
        from hrm.allocator import keep_freed_memory

        keep_freed_memory()  # as the hrm command does
        name, dtype, compiled = args.row.split(":")
        print(json.dumps(measure(name, dtype, compiled == "1", args.steps, args.threads)))
        return

    rows = []
    for name in args.presets.split(","):
        steps = 2 if name in CPU_BATCH_OVERRIDE else args.steps
        for dtype in ("fp32", "bf16"):
            for compiled in (False, True):
                row = f"{name}:{dtype}:{int(compiled)}"
                command = [sys.executable, __file__, "--row", row, "--steps", str(steps),
                           "--threads", str(args.threads)]
                done = subprocess.run(command, capture_output=True, text=True)
                if done.returncode != 0:
                    print(f"{row} failed:\n{done.stderr}", file=sys.stderr)
                    sys.exit(1)
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(rows[-1], flush=True)
    print(f"\n{'preset':<10} {'params':>8} {'batch':>5} {'target':<13} {'dtype':<5} "
          f"{'compiled':<8} {'warm-up s':>9} {'ex-seg/s':>9} {'peak MiB':>8}")
    for r in rows:
        print(f"{r['preset']:<10} {r['parameters'] / 1e6:>7.2f}M {r['batch']:>5} "
              f"{r['halting_target']:<13} {r['dtype']:<5} {str(r['compiled']):<8} "
              f"{r['warmup_s']:>9} {r['example_segments_per_s']:>9} {r['peak_rss_mib']:>8}")
    with open(args.json, "w") as fh:
        json.dump({"args": vars(args), "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
