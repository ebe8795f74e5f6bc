"""The instruction-set builds of the CPU kernels stay inside their own files: the compiled
extension runs on any x86-64 processor, and only code the run-time dispatch chose for this
processor uses AVX2 or AVX-512 instructions."""

import platform
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gen_ext import _C

# instructions the baseline x86-64 target never emits: VEX/EVEX-encoded vector instructions
# (v-prefixed), AVX-512 mask moves and the BMI instructions -march flags switch on
BEYOND_BASELINE = re.compile(
    r"^\s+[0-9a-f]+:\s+"
    r"(v[a-z0-9]+|kmov[a-z]*|shlx|shrx|sarx|andn|bzhi|pdep|pext|rorx|mulx)\s"
)
FUNCTION = re.compile(r"^[0-9a-f]+ <(.*)>:$")
# a function of the AVX2 or AVX-512 kernels: gen_ext::cpu::AVX2::... demangled, or the mangled
# name of an OpenMP region outlined from one (objdump -C leaves those mangled)
ISA_FUNCTION = re.compile(r"\bAVX(2|512)::|4AVX2|6AVX512")


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 builds only")
@pytest.mark.skipif(shutil.which("objdump") is None, reason="needs objdump (binutils)")
def test_no_function_outside_the_isa_kernels_uses_avx():
    """An inline function (libstdc++'s, torch's) compiled in the AVX-512 file and kept by the
    linker for the whole library would crash an AVX2-only processor with an illegal instruction;
    setup.py links the ISA objects last so the baseline copies are kept. Checked on the library
    itself: every function with such an instruction is in an AVX2 or AVX512 namespace."""
    library = Path(_C.__file__)
    listing = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", "-C", str(library)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    function, offenders, isa_functions = "", set(), set()
    for line in listing.splitlines():
        if match := FUNCTION.match(line):
            function = match.group(1)
        elif BEYOND_BASELINE.match(line):
            if ISA_FUNCTION.search(function):
                isa_functions.add(function)
            else:
                offenders.add(function)
    assert isa_functions, "no AVX2/AVX-512 code found at all: is the listing read correctly?"
    assert not offenders, sorted(offenders)[:10]
