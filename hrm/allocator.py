"""Keeps freed memory in the process for reuse: one process-wide setting of the C allocator.

On CPU, every tensor comes from the C library's ``malloc``. Glibc's defaults give a large block
(an activation of a training step: megabytes) back to the kernel when it is freed, and take
fresh pages from the kernel, zeroed one page fault at a time, when the next step asks for the
same size again. A recurrent model allocates and frees the same few sizes hundreds of times a
step: one 33-step benchmark made 1.4 million page faults in bf16, 0.15 million with freed blocks
kept, and its steps with the bootstrapped continue target ran 8% (fp32) to about 20% (bf16)
faster; halt-only steps, which fault far less, did not change (BENCHMARKS.md, "Keeping freed
memory"). The arithmetic does not change, so results stay bit-identical.

Blocks up to ``MMAP_THRESHOLD`` come from the heap instead of their own mapping, and up to
``TRIM_THRESHOLD`` of free heap stays with the process: its resident memory stays near its peak
(which is what a caching allocator does anyway) instead of shrinking between steps.

It does nothing where the C library is not glibc (macOS, Windows, musl) and deliberately
touches nothing of PyTorch's own (no custom allocator, no environment variables).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest: blocks above it are mapped and unmapped still
TRIM_THRESHOLD = 2**30


def keep_freed_memory() -> bool:
    """Set glibc's thresholds for this process; whether they were set (False elsewhere)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
