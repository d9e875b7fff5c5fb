"""The rounding profiles (tools/rounding.py) switch what they say they switch, in a fresh process.

An instruction-set name that the pinned NumPy does not know is ignored without a word, and a value of
ATEN_CPU_CAPABILITY that PyTorch does not know falls back to its own choice: a profile with a stale name
would simulate nothing. Each profile this CPU can run is applied to a child process, which reports
the NumPy loops and the PyTorch kernels it got.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from numpy._core._multiarray_umath import __cpu_dispatch__

from tools import rounding

REPORT = """
import json
import numpy as np
import torch
from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
print(json.dumps({"numpy": [f for f in __cpu_dispatch__ if __cpu_features__.get(f)],
                  "torch": torch.backends.cpu.get_cpu_capability()}))
"""


def _report(env: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", REPORT], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def native() -> dict:
    return _report(rounding.apply("native", dict(os.environ)))


@pytest.mark.parametrize("name", [n for n in rounding.PROFILES if n != "native"])
def test_a_profile_switches_numpy_and_torch_kernels(name, native):
    if name not in rounding.available():
        pytest.skip(f"this CPU cannot run the {name!r} profile")
    settings = rounding.PROFILES[name]
    got = _report(rounding.apply(name, dict(os.environ)))
    disabled = set(settings.get("NPY_DISABLE_CPU_FEATURES", "").split())
    # every name is one of this NumPy's dispatch groups, and it is off in the child
    assert disabled <= set(__cpu_dispatch__), (
        f"{name}: NumPy {np.__version__} has no group {sorted(disabled - set(__cpu_dispatch__))}; "
        f"its groups are {__cpu_dispatch__}"
    )
    assert not disabled & set(got["numpy"])
    if disabled & set(native["numpy"]):
        assert got["numpy"] != native["numpy"]
    want = {"default": "DEFAULT", "avx2": "AVX2", "avx512": "AVX512"}[settings["ATEN_CPU_CAPABILITY"]]
    assert got["torch"] == want, f"{name}: PyTorch runs its {got['torch']} kernels, not {want}"


def test_applying_a_profile_clears_the_other_profiles_settings():
    env = rounding.apply("nehalem", {"PATH": "/bin"})
    env = rounding.apply("torch-generic", env)
    assert env == {"PATH": "/bin", "ATEN_CPU_CAPABILITY": "default"}
    assert rounding.apply("native", env) == {"PATH": "/bin"}
