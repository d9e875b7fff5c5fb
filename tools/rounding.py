"""Rounding profiles: environment settings that make NumPy and PyTorch compute like another machine's CPU.

The last digits of a result depend on which kernel computes it (the order of the sums, fused
multiply-adds, the vector width), and each library picks its kernels from the CPU it runs on:

- NumPy's bundled OpenBLAS (matrix products): ``OPENBLAS_CORETYPE`` selects another CPU's kernels;
- PyTorch's MKL (matrix products): ``MKL_CBWR`` selects another code path (on this project's AMD
  reference machine only ``COMPATIBLE`` gives other digits; on Intel CPUs each level does);
- PyTorch's oneDNN (convolutions): ``ONEDNN_MAX_CPU_ISA`` caps its instruction set;
- PyTorch's own ATen CPU kernels (elementwise operations, reductions, softmax, losses, optimizer
  steps): ``ATEN_CPU_CAPABILITY`` (``default``, ``avx2``, ``avx512``) selects the generic or a vectorized
  build; ``torch.backends.cpu.get_cpu_capability()`` says which one runs;
- NumPy's own vectorised loops (``exp``, ``tanh``, ``log1p``, ``power``, ...): ``NPY_DISABLE_CPU_FEATURES``
  switches off the instruction-set groups of the pinned NumPy (``X86_V3``: AVX2 and FMA3; ``X86_V4``:
  AVX-512; ``AVX512_ICL``, ``AVX512_SPR``), as on a CPU without them. On an AVX-512 CPU NumPy's
  ``power`` of an array rounds the last bit differently from Python's ``float ** int``: that broke a test
  of the book's optimizers there (``course_utils.optim.power``).

Training amplifies the different last digits into different losses and accuracies, which is what a
reader on another CPU sees. A profile simulates one kind of machine by setting all five, on any x86-64
CPU (a kernel needs the instructions it uses: a profile whose CPU features this one lacks is refused,
because the process would die with "illegal instruction"):

    python3 dev.py test --other-rounding        # the "sandybridge" profile (OTHER)
    python3 dev.py test --rounding nehalem      # any profile by name
    python3 dev.py test --rounding torch-generic   # only PyTorch's own kernels changed
    python3 dev.py measure notebooks/NN_x.py    # the measurement runs (measurement_profiles())

Measured on the reference machine (AMD EPYC, AVX2 without AVX-512, 2026-12-06): natively OpenBLAS
uses its Haswell kernels, ATen its AVX2 build. "sandybridge" changes the digits of all four
libraries there (a NumPy float32 product, a torch matrix product, a convolution and the sum of a
convolution's output each came out different); "torch-generic" changes only PyTorch's own kernels,
the difference that broke chapter 7 on another machine (issue 23). On an AVX-512 machine (AMD EPYC,
2026-12-07) ATen runs its AVX-512 build and NumPy its X86_V4 loops; there "haswell" simulates an AVX2
machine and "skylakex" is the machine itself.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path

# name -> (environment, what it simulates)
PROFILES: dict[str, dict[str, str]] = {
    # the machine as it is
    "native": {},
    # an AVX machine without AVX2 (Intel Sandy Bridge / Ivy Bridge): every library's kernels differ
    # from an AVX2 or AVX-512 machine's
    "sandybridge": {"OPENBLAS_CORETYPE": "Sandybridge", "MKL_CBWR": "COMPATIBLE",
                    "ONEDNN_MAX_CPU_ISA": "AVX", "ATEN_CPU_CAPABILITY": "default",
                    "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"},
    # an SSE4.2 machine (Intel Nehalem): the oldest x86-64 kernels the libraries ship
    "nehalem": {"OPENBLAS_CORETYPE": "Nehalem", "MKL_CBWR": "SSE4_2",
                "ONEDNN_MAX_CPU_ISA": "SSE41", "ATEN_CPU_CAPABILITY": "default",
                "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR"},
    # an AVX2 laptop or server (Intel Haswell and later, AMD Zen 1-3)
    "haswell": {"OPENBLAS_CORETYPE": "Haswell", "MKL_CBWR": "AVX2",
                "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
                "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"},
    # an AVX-512 server (Intel Skylake-X and later, AMD Zen 4)
    "skylakex": {"OPENBLAS_CORETYPE": "SkylakeX", "MKL_CBWR": "AVX512",
                 "ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "ATEN_CPU_CAPABILITY": "avx512",
                 "NPY_DISABLE_CPU_FEATURES": "AVX512_ICL AVX512_SPR"},
    # this machine's BLAS, but PyTorch's generic (non-vectorized) ATen kernels: a PyTorch built or
    # running without AVX2 (the difference of issue 23's chapter 7)
    "torch-generic": {"ATEN_CPU_CAPABILITY": "default"},
}
OTHER = "sandybridge"  # what `dev.py test --other-rounding` and .ci/run use: every kind of kernel differs
DIAGNOSTIC = {"torch-generic"}  # changes one library only, to find which one a difference comes from

# the CPU features a profile's kernels need (ATen's AVX-512 build needs all four)
NEEDS: dict[str, set[str]] = {
    "sandybridge": {"avx"},
    "nehalem": {"sse4_2"},
    "haswell": {"avx2", "fma"},
    "skylakex": {"avx512f", "avx512bw", "avx512vl", "avx512dq"},
}
# a profile that is this machine's own choice where the CPU has exactly these features: it would
# repeat the native run (haswell on an AVX2 machine without AVX-512, skylakex on an AVX-512 one)
NATIVE_WHERE: dict[str, tuple[set[str], set[str]]] = {  # name -> (features present, features absent)
    "haswell": ({"avx2"}, {"avx512f"}),
    "skylakex": ({"avx512f", "avx512bw", "avx512vl", "avx512dq"}, set()),
}


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def check(name: str) -> dict[str, str]:
    """The environment of profile ``name``; a clear ValueError when it is unknown or cannot run here."""
    if name not in PROFILES:
        raise ValueError(f"unknown rounding profile {name!r}; choose one of: {', '.join(PROFILES)}")
    if name != "native" and platform.machine().lower() not in ("x86_64", "amd64"):
        raise ValueError(
            f"rounding profiles select x86-64 kernels; this is a {platform.machine()} machine, "
            "where only 'native' applies"
        )
    missing = NEEDS.get(name, set()) - cpu_flags() if cpu_flags() else set()
    if missing:
        raise ValueError(
            f"rounding profile {name!r} needs a CPU with {', '.join(sorted(f.upper() for f in missing))}, which "
            f"this one lacks (its kernels would stop the process); use --other-rounding ({OTHER}) instead"
        )
    return dict(PROFILES[name])


def available() -> list[str]:
    """The profiles this machine can run."""
    names = []
    for name in PROFILES:
        try:
            check(name)
        except ValueError:
            continue
        names.append(name)
    return names


def is_native_here(name: str) -> bool:
    """True for ``native`` and for a profile that is what this CPU picks by itself anyway."""
    if name == "native":
        return True
    flags = cpu_flags()
    present, absent = NATIVE_WHERE.get(name, (None, None))
    return present is not None and bool(flags) and present <= flags and not (absent & flags)


def measurement_profiles() -> list[str]:
    """The profiles ``dev.py measure`` runs by default: every machine this CPU can simulate that is not
    itself (the diagnostic profiles left out: "sandybridge" and "nehalem" switch PyTorch's kernels too)."""
    return [name for name in available() if not is_native_here(name) and name not in DIAGNOSTIC]


def apply(name: str, environ: dict | None = None) -> dict:
    """Set profile ``name`` in ``environ`` (default ``os.environ``), clearing the other profiles' keys."""
    env = os.environ if environ is None else environ
    settings = check(name)
    for key in {k for p in PROFILES.values() for k in p}:
        env.pop(key, None)
    env.update(settings)
    return env


def describe(name: str) -> str:
    """``name: KEY=value ...`` for messages."""
    return f"{name}: " + (" ".join(f"{k}={v}" for k, v in PROFILES[name].items()) or "(the machine as it is)")
