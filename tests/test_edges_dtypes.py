"""Inputs of another dtype (issue 13, kind 5): what each docstring promises to accept or convert.

Every case is compared with the same computation on float64 inputs (or with torch.autograd),
so the test fails when a conversion is skipped, truncates, or changes the result.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from course_utils import calculus as C
from course_utils import checks, graph as G, network, optim, training

B = 4


# --------------------------------------------------------------------------- graph
@pytest.mark.parametrize("in_dtype", [np.int64, np.int32, np.uint8, np.bool_, np.float16, np.float32, np.float64])
@pytest.mark.parametrize("layer_dtype", [np.float32, np.float64])
def test_linear_converts_inputs_also_when_they_require_a_gradient(in_dtype, layer_dtype):
    rng = np.random.default_rng(0)
    x0 = rng.integers(0, 2, (B, 3)).astype(in_dtype)  # values exactly representable in every dtype
    x = G.Input("x", value=x0, requires_grad=True)
    lin = G.Linear(x, 3, 2, rng=np.random.default_rng(1), dtype=layer_dtype, name="fc")
    target = rng.standard_normal((B, 2))
    loss = G.MSE(lin, target)
    G.forward(loss)
    G.backward(loss)
    assert lin.value.dtype == layer_dtype
    expected_grad_dtype = np.dtype(in_dtype) if np.dtype(in_dtype).kind == "f" else np.dtype(np.float64)
    assert x.grad.dtype == expected_grad_dtype and x.grad.shape == x0.shape
    # the same gradient as torch computes on the float64 values
    xt = torch.tensor(x0.astype(np.float64), requires_grad=True)
    W = torch.tensor(lin.W.value.astype(np.float64))
    ((xt @ W.T - torch.tensor(target)) ** 2).sum(1).mean().backward()
    rtol = 1e-12 if layer_dtype == np.float64 and expected_grad_dtype == np.float64 else 2e-3
    np.testing.assert_allclose(x.grad.astype(np.float64), xt.grad.numpy(), rtol=rtol, atol=1e-6)


@pytest.mark.parametrize("cls", [G.Identity, G.ReLU, G.Sigmoid, G.Tanh])
def test_activations_of_integer_inputs_give_float_gradients(cls):
    x0 = np.array([[-2, 0, 3], [1, -1, 2]])
    x = G.Input("x", value=x0, requires_grad=True)
    node = cls(x)
    upstream = np.array([[0.5, -1.5, 2.0], [1.0, 0.25, -0.75]])
    G.forward(node)
    G.backward(node, grad=upstream)  # a fractional upstream gradient must not be truncated
    torch_fn = {G.Identity: lambda t: t, G.ReLU: torch.relu, G.Sigmoid: torch.sigmoid, G.Tanh: torch.tanh}[cls]
    xt = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    torch_fn(xt).backward(torch.tensor(upstream))
    assert x.grad.dtype == np.float64
    np.testing.assert_allclose(x.grad, xt.grad.numpy(), rtol=1e-12)


def test_backward_grad_keeps_its_fractions_for_an_integer_root():
    x = G.Input("x", value=np.array([[1, 2]]), requires_grad=True)
    root = G.Identity(x)
    G.forward(root)
    G.backward(root, grad=np.array([[0.5, 0.25]]))
    np.testing.assert_array_equal(x.grad, [[0.5, 0.25]])


def test_integer_predictions_meet_fractional_targets_without_truncation():
    pred = G.Input("pred", value=np.array([[1], [2]]))
    loss = G.MSE(pred, np.array([0.5, 2.5]))
    assert float(G.forward(loss)) == pytest.approx(0.25)
    bce = G.BinaryCrossEntropy(G.Input("p", value=np.array([[0.25], [0.75]], dtype=np.float32)), np.array([0, 1]))
    assert float(G.forward(bce)) == pytest.approx(-np.log(0.75), rel=1e-6)


def test_numpy_scalars_and_lists_are_constants():
    for const in (np.float32(0.5), np.int64(2), 0.5, [0.5, 1.0], (1, 2)):
        node = G.Identity(const)
        np.testing.assert_array_equal(G.forward(node), np.asarray(const))
    with pytest.raises(TypeError, match="must be a Node, a numpy array or a number, got dict"):
        G.Identity({"a": 1})
    with pytest.raises(TypeError, match="must hold numbers, got dtype <U1"):
        G.Identity(["a"])


def test_input_values_that_are_not_arrays():
    x = G.Input("x", value=[[1.0, 2.0]])
    assert isinstance(G.forward(G.Identity(x)), np.ndarray)
    x.value = torch.ones(1, 2, requires_grad=True)  # numpy cannot read it without detach()
    with pytest.raises(TypeError, match="Input node 'x': value of type Tensor cannot be turned into a numpy array"):
        G.forward(G.Identity(x))
    x.value = np.array([["a", "b"]])
    with pytest.raises(TypeError, match="Input node 'x': value must hold numbers"):
        G.forward(G.Identity(x))


def test_parameters_must_be_float_arrays():
    with pytest.raises(TypeError, match=r"Parameter 'w': value must be a numpy float array.*got array of dtype int64"):
        G.Parameter(np.zeros(3, dtype=np.int64), "w")
    with pytest.raises(TypeError, match="got list"):
        G.Parameter([0.0, 1.0], "w")


def test_linear_dtype_and_rng_arguments():
    with pytest.raises(TypeError, match="dtype must be a float type"):
        G.Linear(G.Input("x"), 2, 2, dtype="no-such-type")
    with pytest.raises(ValueError, match="dtype must be a float type.*int64"):
        G.Linear(G.Input("x"), 2, 2, dtype=np.int64)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator.*got RandomState"):
        G.Linear(G.Input("x"), 2, 2, rng=np.random.RandomState(0))
    lin = G.Linear(G.Input("x"), np.int64(3), np.int32(2), dtype="float32", rng=np.random.default_rng(0))
    assert lin.W.value.shape == (2, 3) and lin.W.value.dtype == np.float32
    for bad in (True, 2.0, 0, -1):
        with pytest.raises(ValueError, match="in_features must be a positive integer"):
            G.Linear(G.Input("x"), bad, 2)


# --------------------------------------------------------------------------- network
@pytest.mark.parametrize("x_dtype", [np.float64, np.float32, np.int64, np.uint8])
def test_network_converts_inputs_to_its_dtype(x_dtype):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 5, (6, 4)).astype(x_dtype)
    y = rng.integers(0, 3, 6).astype(np.int32)
    net = network.FeedForwardNet(4, [5], 3, seed=0, dtype=np.float32)
    ref = network.FeedForwardNet(4, [5], 3, seed=0, dtype=np.float32)
    Xf = X.astype(np.float32)
    np.testing.assert_array_equal(net.logits_of(X), ref.logits_of(Xf))
    assert net.logits_of(X).dtype == np.float32
    assert net.evaluate(X, y) == ref.evaluate(Xf, y)
    assert net.objective(X, y) == ref.objective(Xf, y)
    assert net.loss_and_grads(X, y) == ref.loss_and_grads(Xf, y)
    with pytest.raises(TypeError, match=r"predict: X must hold real numbers, got dtype complex128"):
        net.predict(X.astype(np.complex128))
    with pytest.raises(ValueError, match=r"evaluate: y must hold integer class ids, got dtype float64"):
        net.evaluate(X, y.astype(float))
    with pytest.raises(ValueError, match=r"accuracy: y must hold class ids in \[0, 3\), got min 0 and max 3"):
        net.accuracy(X, np.array([0, 1, 2, 3, 0, 1]))


def test_network_dtype_argument():
    for dtype in (np.float32, "float64", np.dtype(np.float32)):
        net = network.FeedForwardNet(2, [3], 2, dtype=dtype)
        assert all(p.value.dtype == np.dtype(dtype) for p in net.params)
    with pytest.raises(ValueError, match="dtype must be float32 or float64, got float16"):
        network.FeedForwardNet(2, [3], 2, dtype=np.float16)
    with pytest.raises(TypeError, match="dtype must be np.float32 or np.float64, got 'bogus'"):
        network.FeedForwardNet(2, [3], 2, dtype="bogus")


def test_standardizer_accepts_a_numpy_dtype_object():
    imgs = np.arange(64, dtype=np.uint8).reshape(4, 4, 4)
    for dtype in (np.float32, np.dtype(np.float64), "float32"):
        out = network.Standardizer(dtype=dtype).fit_transform(imgs)
        assert out.dtype == np.dtype(dtype)
        np.testing.assert_allclose(out, network.Standardizer(dtype=np.float64).fit_transform(imgs), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="dtype must be a float type"):
        network.Standardizer(dtype=np.int32).fit_transform(imgs)


# --------------------------------------------------------------------------- optimizers
@pytest.mark.parametrize("cls", [optim.SGD, optim.Momentum, optim.Nesterov, optim.RMSProp, optim.Adam, optim.NAdam])
@pytest.mark.parametrize("p_dtype, g_dtype", [(np.float32, np.float64), (np.float64, np.float32), (np.float64, np.float16)])
def test_gradients_of_another_float_dtype_update_in_the_parameter_dtype(cls, p_dtype, g_dtype):
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(5)
    g = rng.standard_normal(5).astype(g_dtype)
    w = w0.astype(p_dtype)
    ref = w0.astype(p_dtype)
    cls([w], lr=0.01, weight_decay=0.1).step([g])
    cls([ref], lr=0.01, weight_decay=0.1).step([g.astype(p_dtype)])  # the gradient converted first
    assert w.dtype == p_dtype
    np.testing.assert_allclose(w, ref, rtol=1e-6 if p_dtype == np.float32 else 1e-12)
    assert not np.array_equal(w, w0.astype(p_dtype))


def test_hyperparameters_accept_any_real_number_type():
    from fractions import Fraction

    opt = optim.Adam([np.zeros(2)], lr=np.float32(0.5), beta1=Fraction(1, 2), eps=np.float64(1e-6))
    assert (opt.lr, opt.beta1, opt.eps) == (0.5, 0.5, 1e-6)
    assert optim.check_positive("x", np.int64(3)) == 3.0
    for bad in (True, np.bool_(False), "0.1", None, [0.1]):
        with pytest.raises(TypeError, match="lr .* must be a real number"):
            optim.SGD([np.zeros(2)], lr=bad)


# --------------------------------------------------------------------------- calculus and checks
def test_calculus_forward_functions_accept_integer_numpy_and_integer_tensors():
    x_int, W_int, b_int = np.array([1, 2]), np.array([[1, 0], [2, 1], [0, 3]]), np.array([0, 1, -1])
    x_f, W_f, b_f = (a.astype(np.float64) for a in (x_int, W_int, b_int))
    np.testing.assert_allclose(C.tanh_layer(x_int, W_int, b_int), C.tanh_layer(x_f, W_f, b_f), rtol=1e-15)
    np.testing.assert_allclose(C.tanh_layer_jacobian(x_int, W_int, b_int), C.tanh_layer_jacobian(x_f, W_f, b_f), rtol=1e-15)
    # integer tensors compute in float64 (not in integer arithmetic, which would truncate)
    out = C.dot(torch.tensor([1, 2]), np.array([0.5, 0.25]))
    assert out.dtype == torch.float64 and float(out) == 1.0
    out = C.linear(torch.tensor([[1, 2]]), np.array([[0.5, 0.5]]), np.array([0.25]))
    assert out.dtype == torch.float64 and float(out) == 1.75
    # a float32 tensor with numpy float64 data: computed in float32, differentiable
    xt = torch.tensor([0.5, -1.0], dtype=torch.float32, requires_grad=True)
    y = C.tanh_layer(xt, W_f[:, :2], b_f)
    assert y.dtype == torch.float32
    y.sum().backward()
    np.testing.assert_allclose(xt.grad.numpy(), np.ones(3) @ C.tanh_layer_jacobian(xt.detach().numpy(), W_f[:, :2], b_f),
                               rtol=1e-5)


def test_jacobian_functions_accept_tensors_including_ones_that_require_grad():
    x = torch.tensor([0.3, -0.7], dtype=torch.float64, requires_grad=True)
    np.testing.assert_array_equal(C.outer_jacobian(x), C.outer_jacobian(x.detach().numpy()))
    np.testing.assert_array_equal(C.sin_cos_jacobian(x), C.sin_cos_jacobian([0.3, -0.7]))
    with pytest.raises(TypeError, match="x must be a numeric array of real numbers.*complex128"):
        C.outer_jacobian(np.array([1 + 1j, 2]))


def test_numerical_checks_accept_integer_and_scalar_inputs():
    np.testing.assert_allclose(checks.numerical_jacobian(lambda v: v**2, np.array([1, 2])), np.diag([2.0, 4.0]), rtol=1e-8)
    assert checks.numerical_jacobian(np.sin, 1.0).shape == ()
    np.testing.assert_allclose(checks.numerical_gradient(lambda v: float(v**3), 2), 12.0, rtol=1e-8)
    # f may return a torch tensor (for example calculus.sin_cos on a tensor input)
    np.testing.assert_allclose(checks.numerical_jacobian(lambda v: torch.tensor(v) * 2, np.ones(2)), 2 * np.eye(2), rtol=1e-8)
    assert checks.relative_error(np.array([1, 2]), [1.0, 2.0]) == 0.0
    with pytest.raises(TypeError, match="relative_error: a must hold real numbers"):
        checks.relative_error(["x"], [1.0])


# --------------------------------------------------------------------------- training helpers
def test_predict_converts_float_arrays_to_the_model_dtype():
    torch.manual_seed(0)
    model = nn.Linear(3, 4)
    X = np.random.default_rng(0).standard_normal((10, 3))  # float64
    expected = model(torch.tensor(X, dtype=torch.float32)).argmax(1).numpy()
    np.testing.assert_array_equal(training.predict(model, X, batch_size=3), expected)
    np.testing.assert_array_equal(training.predict(model, torch.tensor(X)), expected)
    assert training.predict(model, X).dtype == np.int64


def test_make_loader_label_dtypes():
    X = np.zeros((3, 2), np.float32)
    for y in (np.array([0, 1, 2]), np.array([0, 1, 2], dtype=np.uint8), np.array([0.0, 1.0, 2.0]), torch.tensor([0, 1, 2])):
        labels = torch.cat([yb for _, yb in training.make_loader(X, y, 2, shuffle=False)])
        assert labels.dtype == torch.long and labels.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match=r"y must hold integer class ids, got non-integer values \(for example 0.5\)"):
        training.make_loader(X, np.array([0.5, 1.0, 2.0]), 2)
    with pytest.raises(TypeError, match="y must hold integer class ids, got dtype bool"):
        training.make_loader(X, np.array([True, False, True]), 2)
    with pytest.raises(ValueError, match=r"y must be a 1-D array of class ids, got shape \(3, 1\)"):
        training.make_loader(X, np.zeros((3, 1), int), 2)


def test_as_float_images_wants_uint8_images():
    imgs = np.full((2, 5, 6), 255, dtype=np.uint8)
    assert training.as_float_images(imgs).shape == (2, 30)
    assert training.as_float_images(torch.from_numpy(imgs), flatten=False).shape == (2, 1, 5, 6)
    with pytest.raises(TypeError, match="uint8 pixels.*float64"):
        training.as_float_images(imgs / 255.0)
    with pytest.raises(ValueError, match=r"images of shape \(N, H, W\), got \(2, 30\)"):
        training.as_float_images(imgs.reshape(2, 30))


# --------------------------------------------------------------------------- devices
def test_calculus_keeps_tensors_on_their_device():
    """The torch path builds every helper tensor on the input's device. PyTorch's "meta" device
    (shapes only, no data) stands in for a GPU: mixing it with a CPU tensor raises, as CUDA does."""
    x = torch.ones(3, dtype=torch.float64, device="meta")
    assert C.trace_outer(x, 0.5).device.type == "meta"
    assert C.trace_outer(np.ones(3), torch.tensor(0.5, device="meta")).device.type == "meta"
    assert C.tanh_layer(x, np.ones((2, 3)), np.zeros(2)).device.type == "meta"
    assert C.linear(torch.ones(4, 3, device="meta"), np.ones((2, 3))).device.type == "meta"
    assert C.gaussian_exp(x, np.zeros(3), np.eye(3)).device.type == "meta"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_float64_arrays_and_numpy_constants_on_a_cuda_model_and_tensor():
    torch.manual_seed(0)
    model = nn.Linear(3, 4).to("cuda")
    X = np.random.default_rng(0).standard_normal((10, 3))  # float64, on the CPU
    with torch.no_grad():
        expected = model(torch.tensor(X, dtype=torch.float32, device="cuda")).argmax(1).cpu().numpy()
    np.testing.assert_array_equal(training.predict(model, X, batch_size=4), expected)
    xt = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, device="cuda", requires_grad=True)
    value = C.trace_outer(xt, 0.5)
    value.backward()
    assert value.device.type == "cuda"
    np.testing.assert_allclose(xt.grad.cpu().numpy(), C.trace_outer_jacobian(xt.detach().cpu())[0], rtol=1e-12)
