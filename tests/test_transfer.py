"""Tests of chapter 7's pretraining helper: models.pretrained_smallcnn and models.arithmetic_key."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch import nn

from course_utils import models, training
from helpers import one_torch_thread  # noqa: F401  (autouse: every test here on one torch thread)

SMALL = dict(channels=(2, 4), feature_dim=8, epochs=1, lr=1e-2, batch_size=16, progress=False, verbose=False)


def _task(n=48, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), rng.integers(0, classes, size=n)


def _same(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_pretrains_once_then_loads_the_same_weights(tmp_path):
    X, y = _task()
    first, came = models.pretrained_smallcnn(X, y, seed=3, root=tmp_path, **SMALL)
    assert came == "trained"
    again, came = models.pretrained_smallcnn(X, y, seed=3, root=tmp_path, **SMALL)
    assert came == "cache"
    assert _same(first, again)
    assert not again.training
    assert again.backbone[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert again.head.out_features == 4  # one class per label 0..max(y)


def test_weights_are_those_of_the_documented_training_run(tmp_path):
    X, y = _task()
    model, _ = models.pretrained_smallcnn(X, y, seed=5, root=tmp_path, **SMALL)
    plain = models.SmallCNN(4, channels=(2, 4), feature_dim=8, seed=5).to(memory_format=torch.channels_last)
    loader = training.make_loader(models.images_to_tensor(X), y, 16, seed=5)
    opt = torch.optim.Adam(plain.parameters(), lr=1e-2)
    training.fit(plain, loader, loss_fn=nn.functional.cross_entropy, optimizer=opt, num_epochs=1, progress=False)
    assert _same(model, plain)


def test_cache_key_separates_seed_data_settings_and_kernels(tmp_path, monkeypatch):
    X, y = _task()
    models.pretrained_smallcnn(X, y, seed=0, root=tmp_path, **SMALL)
    assert models.pretrained_smallcnn(X, y, seed=1, root=tmp_path, **SMALL)[1] == "trained"
    y2 = y.copy()
    y2[0] = (y2[0] + 1) % 4
    assert models.pretrained_smallcnn(X, y2, seed=0, root=tmp_path, **SMALL)[1] == "trained"
    assert models.pretrained_smallcnn(X, y, seed=0, root=tmp_path, **{**SMALL, "lr": 2e-2})[1] == "trained"
    # another kernel setting than this run's (a rounding profile may have set one): its own file
    before = os.environ.get("MKL_CBWR")
    other = "AVX" if before == "COMPATIBLE" else "COMPATIBLE"
    monkeypatch.setenv("MKL_CBWR", other)
    assert models.arithmetic_key()["MKL_CBWR"] == other
    assert models.pretrained_smallcnn(X, y, seed=0, root=tmp_path, **SMALL)[1] == "trained"
    if before is None:
        monkeypatch.delenv("MKL_CBWR")
    else:
        monkeypatch.setenv("MKL_CBWR", before)
    assert models.pretrained_smallcnn(X, y, seed=0, root=tmp_path, **SMALL)[1] == "cache"


def test_arithmetic_key_names_every_kernel_variable(monkeypatch):
    for v in models.KERNEL_VARIABLES:
        monkeypatch.delenv(v, raising=False)
    key = models.arithmetic_key()
    assert set(key) == set(models.KERNEL_VARIABLES) | {"torch_cpu_capability"}
    assert key["torch_cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert all(key[v] == "" for v in models.KERNEL_VARIABLES)


def test_bad_inputs_have_clear_errors(tmp_path):
    X, y = _task()
    with pytest.raises(TypeError, match="uint8"):
        models.pretrained_smallcnn(X.astype(np.float32), y, seed=0, root=tmp_path, **SMALL)
    with pytest.raises(ValueError, match="one integer class id per image"):
        models.pretrained_smallcnn(X, y[:-1], seed=0, root=tmp_path, **SMALL)
    with pytest.raises(ValueError, match="one integer class id per image"):
        models.pretrained_smallcnn(X, y.astype(float), seed=0, root=tmp_path, **SMALL)
    with pytest.raises(ValueError, match=">= 0"):
        models.pretrained_smallcnn(X, y - 1, seed=0, root=tmp_path, **SMALL)
    with pytest.raises(ValueError, match="empty"):
        models.pretrained_smallcnn(X[:0], y[:0], seed=0, root=tmp_path, **SMALL)
    with pytest.raises(ValueError, match="epochs"):
        models.pretrained_smallcnn(X, y, seed=0, root=tmp_path, **{**SMALL, "epochs": 0})
    with pytest.raises(ValueError, match="lr"):
        models.pretrained_smallcnn(X, y, seed=0, root=tmp_path, **{**SMALL, "lr": 0.0})
    with pytest.raises(ValueError, match="seed"):
        models.pretrained_smallcnn(X, y, seed=-1, root=tmp_path, **SMALL)
    assert not list(tmp_path.rglob("*.pt"))  # nothing was written
