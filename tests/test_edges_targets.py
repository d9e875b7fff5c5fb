"""Loss nodes whose target is itself computed by the graph (issue 13, kind 5).

The rule (course_utils.graph's module docstring): where a loss is differentiable in its
target (MSE, BinaryCrossEntropy) the gradient reaches the target node, checked here against
torch.autograd and finite differences; integer class labels (SoftmaxCrossEntropy,
SoftmaxMSE) are not differentiable, so a labels node that needs a gradient is refused with
a ValueError that names the node, before any parameter gradient is accumulated.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from course_utils import graph as G
from course_utils.checks import numerical_gradient, relative_error

B = 6
TORCH_TOL = 1e-10
FD_TOL = 1e-6


def two_branch(rng, out_features=2, target_kind="linear"):
    """pred = Linear(x) and target computed from x by a second Linear (its own parameters)."""
    x = G.Input("x", value=rng.standard_normal((B, 3)))
    pred = G.Linear(x, 3, out_features, rng=rng, name="pred")
    tgt = G.Linear(x, 3, out_features, rng=rng, name="tgt")
    for lin in (pred, tgt):
        lin.b.value[...] = rng.standard_normal(out_features)
    if target_kind == "sigmoid":  # soft targets in (0, 1)
        return x, pred, tgt, G.Sigmoid(tgt, name="soft")
    return x, pred, tgt, tgt


def grads(loss, params):
    G.forward(loss)
    G.backward(loss)
    return [p.grad.copy() for p in params]


def fd(loss, params):
    out = []
    for prm in params:
        original = prm.value.copy()

        def f(v, prm=prm):
            prm.value[...] = v
            return float(G.forward(loss))

        out.append(numerical_gradient(f, original))
        prm.value[...] = original
    return out


def torch_grads(loss_fn, x, pred, tgt, sigmoid_target):
    X = torch.tensor(x.value)
    Wp, bp, Wt, bt = (torch.tensor(a, requires_grad=True) for a in
                      (pred.W.value, pred.b.value, tgt.W.value, tgt.b.value))
    target = F.linear(X, Wt, bt)
    if sigmoid_target:
        target = torch.sigmoid(target)
    loss = loss_fn(F.linear(X, Wp, bp), target)
    loss.backward()
    return float(loss.detach()), [t.grad.numpy() for t in (Wp, bp, Wt, bt)]


def _probs(node):
    """Probabilities that are NOT a Sigmoid node (so BinaryCrossEntropy takes its clipped path)."""
    return G.Identity(G.Sigmoid(node, name="sig"), name="probs")


CASES = {
    # name: (graph loss of (pred node, target node), torch loss of (pred, target), target through a sigmoid)
    "mse": (lambda p, t: G.MSE(p, t), lambda p, t: ((p - t) ** 2).sum(1).mean(), False),
    "bce_logits": (lambda p, t: G.BinaryCrossEntropy(G.Sigmoid(p), t),
                   lambda p, t: F.binary_cross_entropy_with_logits(p, t, reduction="sum") / B, True),
    "bce_probabilities": (lambda p, t: G.BinaryCrossEntropy(_probs(p), t),
                          lambda p, t: F.binary_cross_entropy(torch.sigmoid(p), t, reduction="sum") / B, True),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradient_reaches_a_computed_target(name):
    rng = np.random.default_rng(11)
    make, torch_loss, sigmoid_target = CASES[name]
    x, pred, tgt, target_node = two_branch(rng, target_kind="sigmoid" if sigmoid_target else "linear")
    loss = make(pred, target_node)
    params = G.parameters(loss)
    assert [p.name for p in params] == ["pred.W", "pred.b", "tgt.W", "tgt.b"]
    ours = grads(loss, params)
    assert np.abs(ours[2]).max() > 1e-3, "the target's parameters must receive a gradient"
    value, theirs = torch_grads(torch_loss, x, pred, tgt, sigmoid_target)
    np.testing.assert_allclose(float(loss.value), value, rtol=1e-12)
    for p, a, b in zip(params, ours, theirs):
        assert relative_error(a, b) < TORCH_TOL, (name, p.name, relative_error(a, b))
    for p, a, n in zip(params, ours, fd(loss, params)):
        assert relative_error(a, n) < FD_TOL, (name, p.name)


def test_bce_target_gradient_formulas_on_inputs():
    """dL/dt = -z / B on the logits path and (log(1-p) - log p) / B on the probability path."""
    rng = np.random.default_rng(3)
    z = rng.standard_normal((B, 2))
    t0 = rng.uniform(0.1, 0.9, (B, 2))
    t = G.Input("t", value=t0, requires_grad=True)
    loss = G.BinaryCrossEntropy(G.Sigmoid(G.Input("z", value=z)), t)
    G.forward(loss)
    G.backward(loss)
    np.testing.assert_allclose(t.grad, -z / B, rtol=1e-12)
    p0 = rng.uniform(0.05, 0.95, (B, 2))
    t2 = G.Input("t", value=t0, requires_grad=True)
    loss2 = G.BinaryCrossEntropy(G.Input("p", value=p0), t2)
    G.forward(loss2)
    G.backward(loss2)
    np.testing.assert_allclose(t2.grad, (np.log1p(-p0) - np.log(p0)) / B, rtol=1e-12)
    pt, tt = torch.tensor(p0), torch.tensor(t0, requires_grad=True)
    F.binary_cross_entropy(pt, tt, reduction="sum").div(B).backward()
    np.testing.assert_allclose(t2.grad, tt.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize("cls", [G.MSE, G.BinaryCrossEntropy])
def test_one_dimensional_target_node_gets_a_one_dimensional_gradient(cls):
    """Targets of shape (batch,) for predictions (batch, 1): the gradient keeps the target's shape."""
    rng = np.random.default_rng(5)
    p = G.Input("p", value=rng.uniform(0.2, 0.8, (B, 1)), requires_grad=True)
    t = G.Input("t", value=rng.uniform(0.1, 0.9, B), requires_grad=True)
    loss = cls(p, t)
    G.forward(loss)
    G.backward(loss)
    assert t.grad.shape == (B,)
    pt = torch.tensor(p.value, requires_grad=True)
    tt = torch.tensor(t.value, requires_grad=True)
    if cls is G.MSE:
        ((pt[:, 0] - tt) ** 2).mean().backward()
    else:
        F.binary_cross_entropy(pt[:, 0], tt).backward()
    np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(p.grad, pt.grad.numpy(), rtol=1e-12)


def test_integer_target_input_with_requires_grad_gets_a_float_gradient():
    """0/1 integer targets of MSE and BCE are converted; their gradient is float64."""
    z = G.Input("z", value=np.array([[0.3], [-1.2], [2.0]]))
    for cls in (G.MSE, G.BinaryCrossEntropy):
        t = G.Input("t", value=np.array([1, 0, 1]), requires_grad=True)
        head = G.Sigmoid(z) if cls is G.BinaryCrossEntropy else z
        loss = cls(head, t)
        G.forward(loss)
        G.backward(loss)
        assert t.grad.dtype == np.float64 and t.grad.shape == (3,)
        assert np.abs(t.grad).max() > 0


LABEL_LOSSES = [G.SoftmaxCrossEntropy, G.SoftmaxMSE]


@pytest.mark.parametrize("cls", LABEL_LOSSES, ids=lambda c: c.__name__)
def test_labels_that_need_a_gradient_are_refused(cls):
    rng = np.random.default_rng(0)
    x = G.Input("x", value=rng.standard_normal((B, 3)))
    logits = G.Linear(x, 3, 4, rng=rng, name="out")
    labels = G.Input("labels", value=rng.integers(0, 4, B), requires_grad=True)
    loss = cls(logits, labels, name="loss")
    G.forward(loss)  # the forward pass is fine: the labels are valid class ids
    with pytest.raises(ValueError, match=rf"{cls.__name__} node 'loss': labels 'labels' need a gradient.*"
                                         r"not differentiable.*Input without requires_grad"):
        G.backward(loss)
    # nothing was accumulated: the parameter gradients are the zeros backward() started from
    assert not logits.W.grad.any() and not logits.b.grad.any()
    # the same labels without requires_grad work: the logits get their gradient
    labels.requires_grad = False
    G.forward(loss)
    G.backward(loss)
    assert labels.grad is None and logits.W.grad.any()


@pytest.mark.parametrize("cls", LABEL_LOSSES, ids=lambda c: c.__name__)
def test_labels_computed_from_a_gradient_input_are_refused(cls):
    """Labels produced by a node (here Identity of an integer Input that requires a gradient)."""
    z = G.Input("z", value=np.zeros((3, 2)), requires_grad=True)
    raw = G.Input("raw", value=np.array([0, 1, 1]), requires_grad=True)
    loss = cls(z, G.Identity(raw, name="ids"))
    G.forward(loss)
    with pytest.raises(ValueError, match="labels 'ids' need a gradient"):
        G.backward(loss)


@pytest.mark.parametrize("cls", LABEL_LOSSES, ids=lambda c: c.__name__)
def test_float_labels_computed_by_the_graph_are_refused_in_forward(cls):
    """A labels node computed from parameters has float values: refused as non-integer labels."""
    rng = np.random.default_rng(1)
    x = G.Input("x", value=rng.standard_normal((B, 3)))
    labels = G.Linear(x, 3, 1, rng=rng, name="made")
    with pytest.raises(ValueError, match=r"labels 'made' have shape \(6, 1\)"):
        G.forward(cls(G.Linear(x, 3, 4, rng=rng), labels))
    flat = G.Input("flat", value=np.zeros(B))
    with pytest.raises(ValueError, match="labels .flat. must be integers \\(class ids\\), got dtype float64"):
        G.forward(cls(G.Linear(x, 3, 4, rng=rng), flat))
