"""Empty batches (issue 13, kind 5): a clear ValueError naming the node or function and the
shape it received, never a NaN, a ZeroDivisionError or a numpy RuntimeWarning.

The rule across course_utils: whatever computes something from the examples of a batch (a
node of the graph, a loss, a mean, an accuracy, predictions, features, a fitted statistic, a
training run, a numerical check) refuses zero examples. Pure format conversions
(``training.as_float_images``, ``models.images_to_tensor``) return an empty result of the
right shape instead.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from course_utils import checks, graph as G, models, network, training

# a division 0/0 would show as a RuntimeWarning: make it fail the test instead
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

EMPTY_SHAPE = r"\(0, 4\)"


# --------------------------------------------------------------------------- graph
def test_linear_refuses_an_empty_batch():
    x = G.Input("pixels", value=np.zeros((0, 4)))
    with pytest.raises(ValueError, match=rf"Linear node 'fc': input 'pixels' is an empty batch, shape {EMPTY_SHAPE}"):
        G.forward(G.Linear(x, 4, 2, rng=np.random.default_rng(0), name="fc"))


LOSSES = {
    "SoftmaxCrossEntropy": lambda z: G.SoftmaxCrossEntropy(z, np.zeros(0, dtype=int), name="loss"),
    "SoftmaxMSE": lambda z: G.SoftmaxMSE(z, np.zeros(0, dtype=int), name="loss"),
    "MSE": lambda z: G.MSE(z, np.zeros((0, 4)), name="loss"),
    "BinaryCrossEntropy": lambda z: G.BinaryCrossEntropy(G.Sigmoid(z), np.zeros((0, 4)), name="loss"),
    "BinaryCrossEntropy-probabilities": lambda z: G.BinaryCrossEntropy(z, np.zeros((0, 4)), name="loss"),
}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_refuses_an_empty_batch(name):
    z = G.Input("z", value=np.zeros((0, 4)), requires_grad=True)
    loss = LOSSES[name](z)
    cls = name.split("-")[0]
    with pytest.raises(ValueError, match=rf"{cls} node 'loss': .* empty batch, shape {EMPTY_SHAPE}.*at least one row"):
        G.forward(loss)


def test_an_empty_batch_is_refused_with_a_seed_axis_too():
    """S seeds at once (chapter 1.2): a batch of zero rows per seed is as undefined as without seeds."""
    rngs = [np.random.default_rng(k) for k in range(3)]
    x = G.Input("pixels", value=np.zeros((3, 0, 4)))
    with pytest.raises(ValueError, match=r"Linear node 'fc': input 'pixels' is an empty batch, shape \(3, 0, 4\)"):
        G.forward(G.Linear(x, 4, 2, rng=rngs, name="fc"))
    for name, make in LOSSES.items():
        z = G.Input("z", value=np.zeros((3, 0, 4)), requires_grad=True)
        with pytest.raises(ValueError, match=r"empty batch, shape \(3, 0, 4\).*at least one row"):
            G.forward(make(z))


def test_empty_batch_fed_to_a_whole_graph_stops_at_the_first_layer():
    rng = np.random.default_rng(0)
    x, y = G.Input("x"), G.Input("y")
    loss = G.SoftmaxCrossEntropy(G.Linear(G.ReLU(G.Linear(x, 4, 3, rng=rng, name="fc1")), 3, 2, rng=rng), y)
    x.value, y.value = np.zeros((0, 4)), np.zeros(0, dtype=int)
    with pytest.raises(ValueError, match="'fc1'.*empty batch"):
        G.forward(loss)


# --------------------------------------------------------------------------- network
@pytest.fixture(scope="module")
def net():
    return network.FeedForwardNet(4, [3], 2, seed=0, dtype=np.float64)


EMPTY_X, EMPTY_Y = np.zeros((0, 4)), np.zeros(0, dtype=int)

NETWORK_CALLS = {
    "logits_of": lambda n: n.logits_of(EMPTY_X),
    "predict": lambda n: n.predict(EMPTY_X),
    "predict_proba": lambda n: n.predict_proba(EMPTY_X),
    "evaluate": lambda n: n.evaluate(EMPTY_X, EMPTY_Y),
    "accuracy": lambda n: n.accuracy(EMPTY_X, EMPTY_Y),
    "objective": lambda n: n.objective(EMPTY_X, EMPTY_Y),
    "train": lambda n: network.train(n, EMPTY_X, EMPTY_Y, num_epochs=1),
}


@pytest.mark.parametrize("method", sorted(NETWORK_CALLS))
def test_network_methods_refuse_an_empty_batch(net, method):
    before = [p.value.copy() for p in net.params]
    with pytest.raises(ValueError, match=rf"{method}.*X is an empty batch, shape {EMPTY_SHAPE}; pass at least one row"):
        NETWORK_CALLS[method](net)
    for p, b in zip(net.params, before):
        np.testing.assert_array_equal(p.value, b)


def test_network_training_step_refuses_an_empty_batch(net):
    with pytest.raises(ValueError, match=rf"Linear node 'hidden1': input 'x' is an empty batch, shape {EMPTY_SHAPE}"):
        net.loss_and_grads(EMPTY_X, EMPTY_Y)


def test_train_refuses_empty_validation_data_before_training(net):
    X, y = np.ones((5, 4)), np.zeros(5, dtype=int)
    before = [p.value.copy() for p in net.params]
    with pytest.raises(ValueError, match=r"train \(X_val\): X is an empty batch"):
        network.train(net, X, y, X_val=EMPTY_X, y_val=EMPTY_Y, num_epochs=1)
    for p, b in zip(net.params, before):
        np.testing.assert_array_equal(p.value, b)  # no epoch ran before the error


def test_standardizer_and_minibatches_refuse_empty_input():
    with pytest.raises(ValueError, match=r"Standardizer.fit: the images are empty, shape \(0, 28, 28\)"):
        network.Standardizer().fit(np.zeros((0, 28, 28), dtype=np.uint8))
    sc = network.Standardizer().fit(np.arange(32, dtype=np.uint8).reshape(2, 4, 4))
    with pytest.raises(ValueError, match=r"Standardizer.transform: the images are empty, shape \(0, 4, 4\)"):
        sc.transform(np.zeros((0, 4, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"iterate_minibatches: n \(the number of examples\) must be a positive integer, got 0"):
        network.iterate_minibatches(0, 8, np.random.default_rng(0))


# --------------------------------------------------------------------------- training (PyTorch helpers)
def _empty_loader():
    return DataLoader(TensorDataset(torch.zeros(0, 2), torch.zeros(0, dtype=torch.long)), batch_size=4)


def test_fit_refuses_an_empty_training_or_validation_loader():
    model = nn.Linear(2, 2)
    before = model.weight.detach().clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="fit: train_loader has no batches"):
        training.fit(model, _empty_loader(), loss_fn=nn.CrossEntropyLoss(), optimizer=opt, num_epochs=1, progress=False)
    good = training.make_loader(np.ones((4, 2), np.float32), np.array([0, 1, 0, 1]), 2)
    with pytest.raises(ValueError, match="fit: val_loader has no batches"):
        training.fit(model, good, loss_fn=nn.CrossEntropyLoss(), optimizer=opt, num_epochs=1, val_loader=_empty_loader(),
                     progress=False)
    assert torch.equal(model.weight, before), "an empty loader is refused before any step"


def test_fit_refuses_a_loader_that_runs_dry_in_a_later_epoch():
    """A one-shot iterable (a generator) yields batches in epoch 1 only: a clear error, not 0/0."""
    model = nn.Linear(2, 2)
    batches = ((torch.ones(2, 2), torch.tensor([0, 1])) for _ in range(3))
    with pytest.raises(ValueError, match="fit: train_loader yielded no examples in epoch 2.*not a generator"):
        training.fit(model, batches, loss_fn=nn.CrossEntropyLoss(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                     num_epochs=2, progress=False)


def test_evaluate_and_predict_refuse_empty_input_and_restore_the_mode():
    model = nn.Linear(2, 2).train()
    with pytest.raises(ValueError, match="evaluate: the loader has no batches"):
        training.evaluate(model, _empty_loader(), nn.CrossEntropyLoss())
    with pytest.raises(ValueError, match="evaluate: the loader yielded no examples"):
        training.evaluate(model, iter([]), nn.CrossEntropyLoss())
    with pytest.raises(ValueError, match=r"predict: X is empty \(shape \(0, 2\)\)"):
        training.predict(model, np.zeros((0, 2), np.float32))
    with pytest.raises(ValueError, match="predict: the loader has no batches"):
        training.predict(model, _empty_loader())
    assert model.training


def test_make_loader_refuses_an_empty_dataset():
    with pytest.raises(ValueError, match=r"make_loader: X is empty \(shape \(0, 2\)\)"):
        training.make_loader(np.zeros((0, 2)), np.zeros(0, dtype=int), 4)


def test_conversions_keep_the_layout_of_zero_images():
    empty = np.zeros((0, 28, 28), dtype=np.uint8)
    assert training.as_float_images(empty).shape == (0, 784)
    assert training.as_float_images(empty, flatten=False).shape == (0, 1, 28, 28)
    assert models.images_to_tensor(empty).shape == (0, 1, 28, 28)


# --------------------------------------------------------------------------- models
def test_feature_extractors_refuse_zero_images():
    cnn = models.SmallCNN(channels=(2, 2), feature_dim=4, seed=0).train()
    with pytest.raises(ValueError, match=r"extract_features: X is empty \(shape \(0, 28, 28\)\)"):
        models.extract_features(cnn, np.zeros((0, 28, 28), dtype=np.uint8))
    assert cnn.training
    with pytest.raises(ValueError, match=r"resnet18_features: X is empty \(shape \(0, 28, 28\)\)"):
        models.resnet18_features(cnn, np.zeros((0, 28, 28), dtype=np.uint8))


# --------------------------------------------------------------------------- checks
def test_numerical_checks_refuse_to_compare_nothing():
    with pytest.raises(ValueError, match=r"numerical_jacobian: x is empty \(shape \(0,\)\)"):
        checks.numerical_jacobian(np.sin, np.zeros(0))
    with pytest.raises(ValueError, match=r"numerical_gradient.*x is empty|numerical_jacobian: x is empty"):
        checks.numerical_gradient(lambda v: float(np.sum(v)), np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"numerical_jacobian: f\(x\) is empty \(shape \(0,\)\)"):
        checks.numerical_jacobian(lambda v: v[:0], np.ones(3))
    with pytest.raises(ValueError, match=r"relative_error: the arrays are empty \(shape \(0, 3\)\)"):
        checks.relative_error(np.zeros((0, 3)), np.zeros((0, 3)))
