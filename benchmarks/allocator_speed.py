"""Training throughput with glibc's default allocator settings against ``keep_freed_memory``
(hrm/allocator.py): prints a table and writes JSON.

    python benchmarks/allocator_speed.py [--rounds 3] [--steps 30]

The allocator is set once per process, so each measurement is a fresh child process running
``--steps`` training steps (after three warm-up steps) of the reference configuration of
``reference_speed.py`` (hidden 128, 2+2 layers, cycles 2/2, sequence 81, batch 64, eager), with
the two settings alternating (default first, then kept, then kept first, ...) so that a
machine slowing down shows as a spread. Page faults are the child's minor faults over its
whole run; they are what the setting removes.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

CASES = [("fp32", False), ("bf16", False), ("bf16", True)]  # (dtype, halt_only)


def child(dtype: str, halt_only: bool, keep: bool, steps: int, threads: int) -> dict:
    import torch
    from reference_speed import BATCH, our_timer  # this folder's timer of our step

    from hrm.allocator import keep_freed_memory

    if keep and not keep_freed_memory():
        sys.exit("keep_freed_memory: not a glibc system")
    torch.set_num_threads(threads)
    timed, _ = our_timer(dtype, "halt-only" if halt_only else "ours")
    seconds = timed(steps)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"example_segments_per_s": round(BATCH * steps / seconds, 1),
            "page_faults": usage.ru_minflt, "peak_rss_mib": round(usage.ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default="benchmarks/allocator_speed.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)  # "dtype,halt_only,keep"
    args = parser.parse_args()
    if args.child:
        dtype, halt_only, keep = args.child.split(",")
        print(json.dumps(child(dtype, halt_only == "1", keep == "1", args.steps, args.threads)))
        return

    rows = []
    for dtype, halt_only in CASES:
        for round_ in range(args.rounds):
            order = [False, True] if round_ % 2 == 0 else [True, False]
            for keep in order:
                spec = f"{dtype},{int(halt_only)},{int(keep)}"
                out = subprocess.run(
                    [sys.executable, __file__, "--child", spec, "--steps", str(args.steps),
                     "--threads", str(args.threads)],
                    capture_output=True, text=True, check=True)
                row = {"dtype": dtype, "target": "halt-only" if halt_only else "bootstrapped",
                       "round": round_ + 1, "allocator": "kept" if keep else "default",
                       **json.loads(out.stdout.strip().splitlines()[-1])}
                rows.append(row)
                print(row, flush=True)

    print(f"\n{'dtype':<5} {'target':<13} {'round':>5} {'allocator':<9} "
          f"{'example-segments/s':>19} {'page faults':>12} {'peak MiB':>9}")
    for r in rows:
        print(f"{r['dtype']:<5} {r['target']:<13} {r['round']:>5} {r['allocator']:<9} "
              f"{r['example_segments_per_s']:>19} {r['page_faults']:>12} {r['peak_rss_mib']:>9}")
    with open(args.json, "w") as fh:
        json.dump({"args": vars(args), "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
