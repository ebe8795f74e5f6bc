"""keep_freed_cpu_memory: memory a process frees stays in it (glibc), so the next training step
does not fault it in again. Checked on the process's resident size, in fresh processes."""

import os
import subprocess
import sys

import pytest

PROGRAM = """
import os, sys, torch
from gen_ext.cpu_memory import keep_freed_cpu_memory
applied = keep_freed_cpu_memory() if sys.argv[1] == "keep" else None
def resident_mib():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
x = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
before = resident_mib()
del x
print(applied, round(before - resident_mib()))
"""


def released_mib(mode: str) -> tuple[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads /proc (Linux)")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_freed_memory_stays_in_the_process():
    applied, kept_released = released_mib("keep")
    if applied != "True":
        pytest.skip("the C library is not glibc: nothing to change")
    _, default_released = released_mib("default")
    assert default_released >= 60  # without it, glibc unmaps the 64 MiB block at once
    assert kept_released <= 4  # with it, the block stays for the next allocation
