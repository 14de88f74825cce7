import platform

import pytest
import torch

from hrm import allocator


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="the setting exists on glibc only")
def test_glibc_keeps_freed_memory_and_the_numbers_do_not_change():
    torch.manual_seed(0)
    x = torch.randn(2048, 1024)
    before = (x @ x.T).sum().item()
    assert allocator.keep_freed_memory()
    assert (x @ x.T).sum().item() == before


def test_elsewhere_it_is_a_no_op(monkeypatch):
    monkeypatch.setattr(allocator.platform, "system", lambda: "Darwin")
    assert not allocator.keep_freed_memory()
