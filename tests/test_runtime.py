"""Seeding, device choice, threading, the finite-difference checks and the plot helpers."""
from __future__ import annotations

import os
import random

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

from course_utils import checks, plots, runtime


def test_seed_everything_makes_python_numpy_and_torch_repeat():
    runtime.seed_everything(7)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    rng_a = runtime.seed_everything(7).normal(size=3)
    runtime.seed_everything(7)
    b = (random.random(), np.random.rand(), torch.rand(1).item())
    rng_b = runtime.seed_everything(7).normal(size=3)
    assert a == b
    np.testing.assert_array_equal(rng_a, rng_b)
    with pytest.raises(ValueError, match="non-negative integer"):
        runtime.seed_everything(-1)


def test_get_device_is_cuda_only_when_available():
    dev = runtime.get_device()
    assert dev.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert runtime.get_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="prefer must be"):
        runtime.get_device("tpu")


def test_threads_are_limited_and_restored():
    runtime.set_threads(1)
    assert torch.get_num_threads() == 1
    assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")
    with runtime.blas_threads(2):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == 1
    with pytest.raises(ValueError, match="positive integer"):
        runtime.set_threads(0)


def test_all_cores_means_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)  # taskset -c 0-2, a cpuset
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert runtime.available_cores() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert runtime.available_cores() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "64")  # a cap above the cores caps nothing
    assert runtime.available_cores() == 3
    for unusable in ("", "0", "-1", "two", "4,2"):  # not a positive integer: no cap
        monkeypatch.setenv("OMP_NUM_THREADS", unusable)
        assert runtime.available_cores() == 3
    monkeypatch.delattr(os, "sched_getaffinity")  # macOS, Windows: every core
    assert runtime.available_cores() == 8
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what dev.py test gives each of its two workers
    with runtime.blas_threads(None):
        assert torch.get_num_threads() == 1
        assert all(p["num_threads"] == 1 for p in threadpool_info() if p["user_api"] == "blas")


def test_init_returns_a_deterministic_summary():
    info = runtime.init(3)
    assert str(info) == f"seed=3, device={runtime.get_device()}, threads=1"
    assert matplotlib.rcParams["axes.spines.top"] is False


def test_numerical_jacobian_matches_known_derivatives():
    A = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    x = np.array([0.3, -0.2, 0.5])
    np.testing.assert_allclose(checks.numerical_jacobian(lambda v: A @ v, x), A, rtol=1e-8)
    J = checks.numerical_jacobian(np.tanh, x)
    np.testing.assert_allclose(J, np.diag(1 - np.tanh(x) ** 2), atol=1e-9)
    g = checks.numerical_gradient(lambda v: np.sum(v ** 3), x)
    np.testing.assert_allclose(g, 3 * x ** 2, rtol=1e-7)
    X = np.arange(6.0).reshape(2, 3)
    assert checks.numerical_jacobian(lambda m: m.T, X).shape == (3, 2, 2, 3)
    with pytest.raises(ValueError, match="scalar function"):
        checks.numerical_gradient(lambda v: v, x)


def test_relative_error():
    assert checks.relative_error([1.0, 2.0], [1.0, 2.0]) == 0.0
    assert checks.relative_error([1.0, 2.0], [1.0, 2.2]) == pytest.approx(0.2 / 2.2)
    with pytest.raises(ValueError, match="shapes differ"):
        checks.relative_error([1.0], [1.0, 2.0])


def test_plot_helpers_draw_what_they_are_given():
    rng = np.random.default_rng(0)
    fig = plots.image_grid(rng.integers(0, 255, (5, 28, 28)), titles=list("abcde"), ncols=3)
    assert len([a for a in fig.axes if a.images]) == 5
    plt.close(fig)
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        plots.image_grid(np.zeros((4, 4)))
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0])
    ax, cm = plots.confusion_matrix(y_true, y_pred, ["a", "b", "c"])
    np.testing.assert_allclose(cm, [[0.5, 0.5, 0], [0, 1, 0], [0.5, 0, 0.5]])
    plt.close(ax.figure)
    pairs = plots.most_confused_pairs(y_true, y_pred, ["a", "b", "c"], top=2)
    assert pairs[["true", "predicted", "count"]].values.tolist() == [["a", "b", 1], ["c", "a", 1]]
    X = rng.normal(size=(20, 2))
    ax = plots.decision_boundary(lambda g: (g[:, 0] > 0).astype(int), X, (X[:, 0] > 0).astype(int), resolution=20)
    assert ax.get_xlabel() == "$x_1$"
    plt.close(ax.figure)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_get_device_prefers_cuda_on_a_gpu():
    assert runtime.get_device("cuda").type == "cuda"
    assert str(runtime.init(0)).startswith("seed=0, device=cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="only meaningful without a GPU")
def test_get_device_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="torch.cuda.is_available"):
        runtime.get_device("cuda")
