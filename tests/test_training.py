"""The PyTorch training helpers: seeded loaders, a loop that learns, honest metrics."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from course_utils import training


def blobs(n=200, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = (rng.normal(size=(n, 2)) + 3 * y[:, None]).astype(np.float32)
    return X, y


def test_make_loader_is_seeded_and_validates():
    X, y = blobs()
    order = lambda seed: torch.cat([yb for _, yb in training.make_loader(X, y, 32, seed=seed)])
    assert torch.equal(order(1), order(1))
    assert not torch.equal(order(1), order(2))
    with pytest.raises(ValueError, match="positive integer"):
        training.make_loader(X, y, 0)
    with pytest.raises(ValueError, match="200 samples but y has 199"):
        training.make_loader(X, y[:-1], 8)


def test_fit_learns_a_separable_problem_and_reports_history():
    torch.manual_seed(0)
    X, y = blobs()
    model = nn.Linear(2, 2)
    loader = training.make_loader(X, y, 16)
    val = training.make_loader(X, y, 64, shuffle=False)
    hist = training.fit(model, loader, loss_fn=nn.CrossEntropyLoss(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                        num_epochs=5, val_loader=val, progress=False)
    assert list(hist.columns) == ["epoch", "train_loss", "train_acc", "val_loss", "val_acc"]
    assert hist["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert hist["train_loss"].iloc[-1] < hist["train_loss"].iloc[0]
    assert hist["val_acc"].iloc[-1] > 0.95
    loss, acc = training.evaluate(model, val, nn.CrossEntropyLoss())
    assert acc == pytest.approx(hist["val_acc"].iloc[-1])
    pred = training.predict(model, X)
    assert pred.shape == (200,) and (pred == y).mean() == pytest.approx(acc)


def test_as_float_images_scales_and_shapes():
    X = np.full((3, 28, 28), 255, dtype=np.uint8)
    assert training.as_float_images(X).shape == (3, 784) and float(training.as_float_images(X).max()) == 1.0
    assert training.as_float_images(X, scale="raw", flatten=False).shape == (3, 1, 28, 28)
    with pytest.raises(ValueError, match="scale must be"):
        training.as_float_images(X, scale="std")


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
def test_fit_evaluate_predict_on_cuda_agree_with_cpu():
    """The same seeded run on the GPU and on the CPU: the helpers move model and batches, results agree."""
    X, y = blobs()
    results = {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)  # built on CPU parameters: fit moves them in place
        hist = training.fit(model, training.make_loader(X, y, 16, seed=0), loss_fn=nn.CrossEntropyLoss(),
                            optimizer=opt, num_epochs=3, val_loader=training.make_loader(X, y, 64, shuffle=False),
                            device=device, progress=False)
        assert next(model.parameters()).device.type == device
        pred = training.predict(model, X)  # the model's device, numpy out
        assert isinstance(pred, np.ndarray) and pred.shape == (200,)
        results[device] = (hist, pred)
    np.testing.assert_allclose(results["cuda"][0]["train_loss"], results["cpu"][0]["train_loss"], rtol=1e-4)
    assert (results["cuda"][1] == results["cpu"][1]).mean() > 0.99
