"""Rounding profiles: environment settings that make NumPy and PyTorch round like another machine.

The last digits of a matrix product depend on which BLAS kernel computes it (the order of the sums,
fused multiply-adds, vector width). NumPy's bundled OpenBLAS picks its kernel from the CPU, PyTorch's
MKL and oneDNN pick theirs; all three can be told to use another one through the environment, on any
x86-64 CPU, and ignore these variables elsewhere. Training amplifies the different last digits into
different losses and accuracies, which is what a reader on another CPU sees. These profiles let every
contributor reproduce that on one machine:

    python3 dev.py test --other-rounding        # the "sandybridge" profile
    python3 dev.py test --rounding skylakex     # any profile by name
    python3 dev.py measure                      # every profile, and other seeds, to measure tolerances

Measured on the reference machine (AMD EPYC with AVX-512, 2026-12-01): OpenBLAS uses its Haswell
kernels there by default, so "sandybridge", "skylakex" and "nehalem" each give NumPy other float32 or
float64 products; MKL's COMPATIBLE path gives PyTorch other matrix products, and
``ONEDNN_MAX_CPU_ISA`` other convolutions.
"""
from __future__ import annotations

import os
from pathlib import Path

PROFILES: dict[str, dict[str, str]] = {
    # the machine as it is
    "native": {},
    # the profile of the issue that first showed the problem; safe on every x86-64 CPU
    "sandybridge": {"OPENBLAS_CORETYPE": "Sandybridge", "MKL_CBWR": "COMPATIBLE"},
    # an AVX-512 Xeon's OpenBLAS kernels (needs a CPU with AVX-512), oneDNN limited to AVX2
    "skylakex": {"OPENBLAS_CORETYPE": "SkylakeX", "MKL_CBWR": "AVX512", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    # an old SSE-only machine: OpenBLAS's Nehalem kernels, MKL and oneDNN at SSE4
    "nehalem": {"OPENBLAS_CORETYPE": "Nehalem", "MKL_CBWR": "SSE4_2", "ONEDNN_MAX_CPU_ISA": "SSE41"},
}
OTHER = "sandybridge"  # what `dev.py test --other-rounding` uses

# the CPU feature a profile's kernels need (a kernel the CPU lacks would stop the process)
_NEEDS = {"skylakex": "avx512f", "nehalem": "sse4_2", "sandybridge": "avx"}


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
    """The environment of profile ``name``; a clear ValueError when it is unknown or unsafe here."""
    if name not in PROFILES:
        raise ValueError(f"unknown rounding profile {name!r}; choose one of: {', '.join(PROFILES)}")
    need = _NEEDS.get(name)
    flags = cpu_flags()
    if need and flags and need not in flags:
        raise ValueError(
            f"rounding profile {name!r} needs a CPU with {need.upper()}, which this one lacks; "
            f"use --other-rounding ({OTHER}) instead"
        )
    import platform

    if name != "native" and platform.machine().lower() not in ("x86_64", "amd64"):
        raise ValueError(
            f"rounding profiles select x86-64 BLAS kernels; this is a {platform.machine()} machine, "
            "where only 'native' applies"
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


def apply(name: str, environ: dict | None = None) -> dict:
    """Set profile ``name`` in ``environ`` (default ``os.environ``), clearing the other profiles' keys."""
    env = os.environ if environ is None else environ
    settings = check(name)
    for key in {k for p in PROFILES.values() for k in p}:
        env.pop(key, None)
    env.update(settings)
    return env
