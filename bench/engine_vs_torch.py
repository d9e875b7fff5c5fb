#!/usr/bin/env python3
"""Time one training epoch of the from-scratch engine against an identical PyTorch CPU MLP.

Chapter 5's benchmark. Both sides train a 784-128-128-10 ReLU MLP with softmax cross-entropy
and Adam (lr 1e-3) in float32, on one BLAS/PyTorch thread, in this one process:

- engine: ``course_utils.network.FeedForwardNet`` (``course_utils.graph`` nodes, ``course_utils.optim.Adam``);
- torch:  ``nn.Sequential(Linear, ReLU, Linear, ReLU, Linear)`` with ``torch.optim.Adam``, the same
  initial weights and the same minibatch order (index gathers from one tensor; no DataLoader).

It prints, per batch size, the best of ``--repeats`` epoch times of each, in CPU seconds of this
process (the two alternate, so a busy machine slows both alike), the time ratio engine / torch, and the achieved GFLOP/s of the
matrix products (2 FLOPs per multiply-add, forward plus backward, see
``network.flops_per_example``) against a measured single-thread float32 matmul peak.

    python bench/engine_vs_torch.py                 # Fashion-MNIST (COURSE_DATA mirror), 60,000 examples
    python bench/engine_vs_torch.py --profile       # also: where the engine's time goes (cProfile)

Without the dataset it runs on random data of the same shape (timing does not depend on the values)
and says so.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SIZES = (784, 128, 128, 10)


def load_data(n: int | None):
    from course_utils import data, network

    try:
        ds = data.load("fashion-mnist", download=False, progress=False)
        X, y, label = ds.X_train, ds.y_train, "Fashion-MNIST train split"
    except (data.DatasetNotFoundError, data.ChecksumError):
        rng = np.random.default_rng(0)
        X = rng.integers(0, 256, size=(60000, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, size=60000)
        label = "RANDOM stand-in data (Fashion-MNIST not found; timings are unaffected)"
    if n is not None:
        X, y = X[:n], y[:n]
    Xf = network.Standardizer().fit_transform(X)
    return Xf, np.ascontiguousarray(y, dtype=np.int64), label


def matmul_peak(repeats: int = 7) -> dict:
    """Best single-thread float32 GFLOP/s of numpy and torch for a square 1024 product."""
    import torch

    n = 1024
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    out = {}
    for name, f in (("numpy", lambda: a @ b), ("torch", lambda: ta @ tb)):
        f()
        best = min(_timed(f) for _ in range(repeats))
        out[name] = 2 * n**3 / best / 1e9
    return out


def shape_gflops(batch: int, repeats: int = 20) -> float:
    """GFLOP/s of numpy for the first layer's forward product at this batch size (X @ W.T)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, SIZES[0])).astype(np.float32)
    W = rng.standard_normal((SIZES[1], SIZES[0])).astype(np.float32)
    reps = max(1, 200_000 // batch)

    def f():
        for _ in range(reps):
            x @ W.T

    f()
    best = min(_timed(f) for _ in range(3))
    return 2 * batch * SIZES[0] * SIZES[1] * reps / best / 1e9


def _timed(f) -> float:
    """CPU seconds of this process spent in f() (with one thread: the compute time, little affected
    by other jobs that share the machine, unlike the wall clock)."""
    t0 = time.process_time()
    f()
    return time.process_time() - t0


def engine_epoch(X, y, batch_size: int, seed: int = 0):
    from course_utils import network

    net = network.FeedForwardNet(*SIZES[:1], list(SIZES[1:-1]), SIZES[-1], activation="relu", init="xavier",
                                 loss="cross_entropy", dtype=np.float32, seed=seed)
    weights = net.get_weights()

    def run():
        network.train(net, X, y, optimizer="adam", lr=1e-3, batch_size=batch_size, num_epochs=1, seed=seed)

    return run, weights, net


def torch_epoch(X, y, batch_size: int, weights, seed: int = 0):
    import torch
    from torch import nn

    layers = []
    for i, (W, b) in enumerate(weights):
        lin = nn.Linear(W.shape[1], W.shape[0])
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if i < len(weights) - 1:
            layers.append(nn.ReLU())
    model = nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    rng = np.random.default_rng(seed)

    def run():
        perm = torch.from_numpy(rng.permutation(len(X)))
        for start in range(0, len(X), batch_size):
            idx = perm[start:start + batch_size]
            xb, yb = Xt[idx], yt[idx]
            loss = loss_fn(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return run, model


def profile_engine(X, y, batch_size: int, top: int = 18) -> str:
    run, _, _ = engine_epoch(X, y, batch_size)
    prof = cProfile.Profile()
    prof.enable()
    run()
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    return buf.getvalue()


def positive_int(text: str) -> int:
    """argparse type: a positive integer, or a usage error naming the value (never a traceback)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-sizes", type=positive_int, nargs="+", default=[64, 1024])
    p.add_argument("--repeats", type=positive_int, default=3, help="epochs timed per side and batch size (best is kept)")
    p.add_argument("--examples", type=positive_int, default=None, help="use only the first N training examples")
    p.add_argument("--profile", action="store_true", help="also profile one engine epoch at the first batch size")
    p.add_argument("--threads", type=positive_int, default=1, help="BLAS and torch threads (default 1)")
    args = p.parse_args(argv)

    import torch
    from threadpoolctl import threadpool_limits

    from course_utils import network

    threadpool_limits(limits=args.threads, user_api="blas")
    torch.set_num_threads(args.threads)
    X, y, label = load_data(args.examples)
    flops = network.flops_per_example(SIZES)
    peak = matmul_peak()
    print(f"data: {label}, {len(X):,} examples; MLP {'-'.join(map(str, SIZES))}, ReLU, cross-entropy, Adam, float32, "
          f"{args.threads} thread(s)")
    print(f"matmul peak (1024x1024 float32, best of 7): numpy {peak['numpy']:.1f} GFLOP/s, torch {peak['torch']:.1f} GFLOP/s")
    print(f"matrix-product work per training example: {flops / 1e6:.3f} MFLOP (forward + backward)")
    print()
    header = f"{'batch':>6} {'engine s':>9} {'torch s':>8} {'ratio':>6} {'engine GFLOP/s':>15} {'torch GFLOP/s':>14} " \
             f"{'% of peak (eng/torch)':>22} {'1st-layer matmul GFLOP/s':>25}"
    print(header)
    for bs in args.batch_sizes:
        run_e, weights, _ = engine_epoch(X, y, bs)
        run_t, _ = torch_epoch(X, y, bs, weights)
        te, tt = [], []
        for _ in range(args.repeats):
            te.append(_timed(run_e))
            tt.append(_timed(run_t))
        e, t = min(te), min(tt)
        ge, gt = flops * len(X) / e / 1e9, flops * len(X) / t / 1e9
        print(f"{bs:>6} {e:>9.3f} {t:>8.3f} {e / t:>5.2f}x {ge:>15.1f} {gt:>14.1f} "
              f"{100 * ge / peak['numpy']:>10.0f}% / {100 * gt / peak['torch']:>3.0f}% {shape_gflops(bs):>25.1f}")
    print("\nratio = engine time / torch time (below 1: the engine is faster). Times: best of "
          f"{args.repeats} epochs, CPU seconds of this process, both sides in one process.")
    if args.profile:
        print(f"\nWhere the engine's time goes (cProfile, one epoch, batch {args.batch_sizes[0]}):")
        print(profile_engine(X, y, args.batch_sizes[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
