"""Tests of course_utils.models: the small CNN's backbone/head split and the pretrained-weight cache."""
from __future__ import annotations

import contextlib
import json
import random
import re
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from course_utils import models
from course_utils.models import SmallCNN, WeightsError
from helpers import one_torch_thread  # noqa: F401  (autouse: every test here on one torch thread)


def _images(n=6, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


# --------------------------------------------------------------------------- model
def test_shapes_and_split():
    model = SmallCNN(num_classes=7, channels=(4, 8), feature_dim=16, seed=0)
    x = models.images_to_tensor(_images(5))
    assert x.shape == (5, 1, 28, 28) and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    feats = model.features(x)
    assert feats.shape == (5, 16)
    assert (feats >= 0).all()  # the backbone ends with a ReLU
    # forward is exactly head(features)
    torch.testing.assert_close(model(x), model.head(feats), rtol=0, atol=0)
    assert model(x).shape == (5, 7)


def test_parameter_count_matches_formula():
    c1, c2, d, k = 4, 8, 16, 7
    model = SmallCNN(num_classes=k, channels=(c1, c2), feature_dim=d)
    expected = (9 * 1 * c1 + c1) + (9 * c1 * c2 + c2) + (49 * c2 * d + d) + (d * k + k)
    assert models.count_parameters(model) == expected
    assert models.count_parameters(model.head) == d * k + k


def test_seed_gives_same_weights_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = SmallCNN(seed=3)
    assert torch.equal(torch.get_rng_state(), state), "a seeded model must not consume the global torch RNG"
    b = SmallCNN(seed=3)
    c = SmallCNN(seed=4)
    for (na, pa), (_, pb), (_, pc) in zip(a.named_parameters(), b.named_parameters(), c.named_parameters()):
        assert torch.equal(pa, pb), na
    assert not torch.equal(a.head.weight, c.head.weight)


def test_replace_head_keeps_backbone():
    model = SmallCNN(num_classes=10, feature_dim=16, seed=0)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model.replace_head(4, seed=1)
    assert model.head.out_features == 4 and model.num_classes == 4
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, before[k])
    other = SmallCNN(num_classes=10, feature_dim=16, seed=5).replace_head(4, seed=1)
    assert torch.equal(other.head.weight, model.head.weight)  # head depends on its seed only


def test_frozen_backbone_gets_no_gradient_and_does_not_change():
    model = SmallCNN(num_classes=3, channels=(4, 8), feature_dim=16, seed=0)
    models.set_backbone_trainable(model, False)
    assert models.count_parameters(model, trainable_only=True) == models.count_parameters(model.head)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    x = models.images_to_tensor(_images(8))
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    head_before = model.head.weight.clone()
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    assert all(p.grad is None for p in model.backbone.parameters())
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not torch.equal(model.head.weight, head_before)
    models.set_backbone_trainable(model, True)
    assert models.count_parameters(model, trainable_only=True) == models.count_parameters(model)


def test_extract_features_matches_features_and_keeps_mode():
    model = SmallCNN(channels=(4, 8), feature_dim=16, seed=0).train()
    X = _images(7)
    f = models.extract_features(model, X, batch_size=3)  # uneven batches
    assert f.shape == (7, 16) and f.dtype == np.float32
    with torch.no_grad():
        ref = model.features(models.images_to_tensor(X)).numpy()
    np.testing.assert_allclose(f, ref, rtol=1e-6, atol=1e-6)
    assert model.training


def test_bad_inputs_have_clear_errors():
    model = SmallCNN(seed=0)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        model(torch.zeros(2, 28, 28))
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(TypeError, match="torch.Tensor"):
        model(np.zeros((2, 1, 28, 28), dtype=np.float32))
    with pytest.raises(TypeError, match="uint8"):
        models.images_to_tensor(np.zeros((2, 28, 28)))
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        models.images_to_tensor(np.zeros((2, 784), dtype=np.uint8))
    with pytest.raises(ValueError, match="num_classes"):
        SmallCNN(num_classes=1)
    with pytest.raises(ValueError, match="channels"):
        SmallCNN(channels=(4,))
    with pytest.raises(ValueError, match="seed"):
        SmallCNN(seed=-1)


# --------------------------------------------------------------------------- cache
def test_cache_dir_follows_course_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path / "c"))
    assert models.cache_dir() == tmp_path / "c"
    p = models.cached_weights_path("small-cnn", {"a": 1})
    assert p.parent == tmp_path / "c" / "models" and p.suffix == ".pt"


def test_config_digest_is_order_free_and_key_sensitive():
    assert models.config_digest({"a": 1, "b": [1, 2]}) == models.config_digest({"b": [1, 2], "a": 1})
    assert models.config_digest({"a": 1}) != models.config_digest({"a": 2})
    p1 = models.cached_weights_path("m", {"lr": 1e-3}, root="/r")
    p2 = models.cached_weights_path("m", {"lr": 1e-2}, root="/r")
    assert p1 != p2 and p1.name.startswith("m-")
    with pytest.raises(TypeError, match="JSON"):
        models.config_digest({"a": object()})
    with pytest.raises(ValueError, match="file-name"):
        models.cached_weights_path("../x", {}, root="/r")


def test_save_load_roundtrip_and_checksum(tmp_path):
    config = {"epochs": 1}
    a = SmallCNN(channels=(4, 8), feature_dim=16, seed=0)
    path = tmp_path / "models" / "w.pt"
    digest = models.save_weights(a, path, config=config)
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["sha256"] == digest == models.file_sha256(path)
    assert not list(tmp_path.rglob("*.tmp*")), "temporary files must be renamed away"
    b = SmallCNN(channels=(4, 8), feature_dim=16, seed=1)
    assert models.load_weights(b, path, config=config) == digest
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(va, vb), k


def test_load_rejects_corruption_config_and_shape(tmp_path):
    a = SmallCNN(channels=(4, 8), feature_dim=16, seed=0)
    path = tmp_path / "w.pt"
    models.save_weights(a, path, config={"epochs": 1})
    b = SmallCNN(channels=(4, 8), feature_dim=16, seed=1)
    b_before = {k: v.clone() for k, v in b.state_dict().items()}
    with pytest.raises(WeightsError, match="another configuration"):
        models.load_weights(b, path, config={"epochs": 2})
    with pytest.raises(WeightsError, match="does not fit"):
        models.load_weights(SmallCNN(channels=(4, 8), feature_dim=32), path)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="SHA-256 mismatch"):
        models.load_weights(b, path)
    for k, v in b.state_dict().items():
        assert torch.equal(v, b_before[k]), "a rejected file must leave the model unchanged"
    path.with_suffix(".json").unlink()
    with pytest.raises(WeightsError, match="no checksum record"):
        models.load_weights(b, path)
    with pytest.raises(WeightsError, match="no weights file"):
        models.load_weights(b, tmp_path / "missing.pt")


def _pretrain_fn(calls):
    def pretrain(model):
        calls.append(1)
        g = torch.Generator().manual_seed(0)
        x = torch.rand(16, 1, 28, 28, generator=g)
        y = torch.randint(0, model.num_classes, (16,), generator=g)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(2):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        torch.rand(3)  # consumes the global RNG: load_or_pretrain must hide this
        np.random.rand(3)
        random.random()

    return pretrain


def test_load_or_pretrain_caches_identical_weights_and_rng_state(tmp_path, capsys):
    config = {"steps": 2}
    calls = []
    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    trained = SmallCNN(num_classes=3, channels=(4, 8), feature_dim=16, seed=0)
    assert models.load_or_pretrain(trained, config, _pretrain_fn(calls), root=tmp_path) == "trained"
    after_train = (torch.rand(1).item(), np.random.rand(), random.random())
    assert "saved to the cache" in capsys.readouterr().out

    torch.manual_seed(7), np.random.seed(7), random.seed(7)
    loaded = SmallCNN(num_classes=3, channels=(4, 8), feature_dim=16, seed=0)
    assert models.load_or_pretrain(loaded, config, _pretrain_fn(calls), root=tmp_path) == "cache"
    after_load = (torch.rand(1).item(), np.random.rand(), random.random())
    assert calls == [1], "the second call must not train"
    assert after_train == after_load, "random state after the call must not depend on where the weights came from"
    for (k, va), (_, vb) in zip(trained.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(va, vb), k
    assert not trained.training and not loaded.training
    untouched = SmallCNN(num_classes=3, channels=(4, 8), feature_dim=16, seed=0)
    assert not torch.equal(untouched.head.weight, loaded.head.weight)

    # another configuration or another architecture gets another file
    other = SmallCNN(num_classes=3, channels=(4, 8), feature_dim=16, seed=0)
    assert models.load_or_pretrain(other, {"steps": 3}, _pretrain_fn(calls), root=tmp_path, verbose=False) == "trained"
    wider = SmallCNN(num_classes=3, channels=(4, 8), feature_dim=32, seed=0)
    assert models.load_or_pretrain(wider, config, _pretrain_fn(calls), root=tmp_path, verbose=False) == "trained"
    assert len(calls) == 3
    assert len(list((tmp_path / "models").glob("*.pt"))) == 3


def test_load_or_pretrain_retrains_on_corrupted_cache(tmp_path, capsys):
    config = {"steps": 2}
    calls = []
    model = SmallCNN(num_classes=3, channels=(4, 8), feature_dim=16, seed=0)
    models.load_or_pretrain(model, config, _pretrain_fn(calls), root=tmp_path, verbose=False)
    reference = {k: v.clone() for k, v in model.state_dict().items()}
    (path,) = (tmp_path / "models").glob("*.pt")
    path.write_bytes(path.read_bytes()[:-10])  # truncated
    fresh = SmallCNN(num_classes=3, channels=(4, 8), feature_dim=16, seed=0)
    with pytest.warns(models.WeightsWarning, match=rf"SHA-256 mismatch for .*{path.name}.*truncated") as caught:
        assert models.load_or_pretrain(fresh, config, _pretrain_fn(calls), root=tmp_path) == "trained"
    assert len(caught) == 1
    assert "rejected" in capsys.readouterr().out
    assert len(calls) == 2
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, reference[k]), "deterministic pretraining must reproduce the weights"
    assert models.load_or_pretrain(fresh, config, _pretrain_fn(calls), root=tmp_path, verbose=False) == "cache"


def _tiny():
    return SmallCNN(num_classes=3, channels=(4, 8), feature_dim=16, seed=0)


def _reference_weights():
    """What pretraining gives, computed without any cache."""
    model = _tiny()
    _pretrain_fn([])(model)
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_same(model, reference):
    for k, v in model.state_dict().items():
        assert torch.equal(v, reference[k]), k


@contextlib.contextmanager
def _recorded_warnings():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def test_save_weights_records_size_and_sweeps_leftovers(tmp_path):
    model = _tiny()
    path = tmp_path / "models" / "w.pt"
    path.parent.mkdir()
    leftovers = [path.parent / ".w.pt.k1l2.part", path.parent / ".w.json.zz9.part", path.parent / "w.pt.tmp4242"]
    for f in leftovers:  # left by killed processes
        f.write_bytes(b"partial")
    digest = models.save_weights(model, path, config={"a": 1})
    record = json.loads(path.with_suffix(".json").read_text())
    assert record == {"config": {"a": 1}, "file": "w.pt", "sha256": digest, "bytes": path.stat().st_size}
    assert digest == models.file_sha256(path)
    assert not any(f.exists() for f in leftovers)
    assert sorted(p.name for p in path.parent.iterdir() if p.is_file()) == ["w.json", "w.pt"]
    # the same weights give the same bytes, whatever the file is called
    assert models.save_weights(model, tmp_path / "other.pt") == digest


def _damage(path, kind, other_path):
    record_file = path.with_suffix(".json")
    if kind == "corrupted":
        blob = bytearray(path.read_bytes())
        blob[len(blob) // 2] ^= 0xFF
        path.write_bytes(bytes(blob))
    elif kind == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "record of other weights":
        record = json.loads(record_file.read_text())
        record["sha256"] = json.loads(other_path.with_suffix(".json").read_text())["sha256"]
        record_file.write_text(json.dumps(record))
    elif kind == "record of another configuration":
        record_file.write_text(other_path.with_suffix(".json").read_text())
    elif kind == "record not JSON":
        record_file.write_text(record_file.read_text()[:20])
    elif kind == "missing weights":
        path.unlink()
    elif kind == "missing record":
        record_file.unlink()
    else:
        raise AssertionError(kind)


DAMAGE = {
    "corrupted": r"SHA-256 mismatch for .*{name}.*corrupted or replaced",
    "truncated": r"SHA-256 mismatch for .*{name}.*truncated",
    "record of other weights": r"SHA-256 mismatch for .*{name}.*does not belong to it",
    "record of another configuration": r"{name} was saved for another configuration",
    "record not JSON": r"checksum record .*{stem}\.json is unreadable",
    "missing weights": r"no weights file at .*{name}",
    "missing record": r"no checksum record {stem}\.json beside {name}",
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_load_or_pretrain_names_and_repairs_each_kind_of_damage_once(tmp_path, kind, capsys):
    reference = _reference_weights()
    calls = []
    models.load_or_pretrain(_tiny(), {"steps": 2}, _pretrain_fn(calls), root=tmp_path, verbose=False)
    other_start = SmallCNN(num_classes=3, channels=(4, 8), feature_dim=16, seed=1)  # other weights
    models.load_or_pretrain(other_start, {"steps": 9}, _pretrain_fn(calls), root=tmp_path, verbose=False)
    path = next(p for p in (tmp_path / "models").glob("*.pt")
                if json.loads(p.with_suffix(".json").read_text())["config"]["config"] == {"steps": 2})
    other = next(p for p in (tmp_path / "models").glob("*.pt") if p != path)
    _damage(path, kind, other)
    model = _tiny()
    pattern = DAMAGE[kind].format(name=re.escape(path.name), stem=re.escape(path.stem))
    with pytest.warns(models.WeightsWarning, match=pattern) as caught:
        assert models.load_or_pretrain(model, {"steps": 2}, _pretrain_fn(calls), root=tmp_path) == "trained"
    assert len(caught) == 1, [str(w.message) for w in caught]
    assert "replacing the cached copy" in str(caught[0].message)
    assert caught[0].filename == __file__, "the warning points at the caller's line"
    assert "rejected" in capsys.readouterr().out
    assert len(calls) == 3
    _assert_same(model, reference)
    # repaired: the next call loads it, silently, and gets the same weights
    with _recorded_warnings() as caught:
        again = _tiny()
        assert models.load_or_pretrain(again, {"steps": 2}, _pretrain_fn(calls), root=tmp_path) == "cache"
    assert caught == [] and len(calls) == 3
    _assert_same(again, reference)
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["sha256"] == models.file_sha256(path) and record["bytes"] == path.stat().st_size


def test_first_use_pretrains_without_a_warning(tmp_path):
    with _recorded_warnings() as caught:
        assert models.load_or_pretrain(_tiny(), {"steps": 2}, _pretrain_fn([]), root=tmp_path, verbose=False) == "trained"
    assert caught == []
    (path,) = (tmp_path / "models").glob("*.pt")
    assert (tmp_path / "models" / ".locks" / f"{path.stem}.lock").parent.is_dir()


def test_cache_that_cannot_be_written_warns_and_returns_the_weights(tmp_path, capsys):
    reference = _reference_weights()
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    calls = []
    for _ in range(2):  # nothing is cached, so the second call trains again
        model = _tiny()
        with pytest.warns(models.WeightsWarning, match=r"are not cached and will not be: the cache cannot be locked.*"
                                                      r"not-a-folder.*writable") as caught:
            assert models.load_or_pretrain(model, {"steps": 2}, _pretrain_fn(calls), root=blocked) == "trained"
        assert len(caught) == 1
        _assert_same(model, reference)
        assert not model.training
    assert len(calls) == 2
    assert "not saved to the cache" in capsys.readouterr().out
    assert blocked.read_text() == "a file where the cache folder should be"


def test_weights_path_taken_by_a_folder_warns_and_returns_the_weights(tmp_path):
    reference = _reference_weights()
    models.load_or_pretrain(_tiny(), {"steps": 2}, _pretrain_fn([]), root=tmp_path / "a", verbose=False)
    (name,) = [p.name for p in (tmp_path / "a" / "models").glob("*.pt")]
    (tmp_path / "b" / "models" / name).mkdir(parents=True)  # something in the way of the weights file
    model = _tiny()
    with pytest.warns(models.WeightsWarning) as caught:
        assert models.load_or_pretrain(model, {"steps": 2}, _pretrain_fn([]), root=tmp_path / "b", verbose=False) == "trained"
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2, messages
    assert re.search(rf"rejected: weights file .*{re.escape(name)} cannot be read", messages[0])
    assert re.search(rf"could not be saved into the cache as .*{re.escape(name)}.*used from memory", messages[1])
    _assert_same(model, reference)
    assert not list((tmp_path / "b" / "models").glob(".*.part"))


def test_lock_held_too_long_pretrains_in_memory_and_leaves_the_cache(tmp_path, monkeypatch, capsys):
    fcntl = pytest.importorskip("fcntl")
    reference = _reference_weights()
    calls = []
    models.load_or_pretrain(_tiny(), {"steps": 2}, _pretrain_fn(calls), root=tmp_path, verbose=False)
    (path,) = (tmp_path / "models").glob("*.pt")
    _damage(path, "truncated", None)
    damaged = path.read_bytes()
    monkeypatch.setattr(models, "LOCK_TIMEOUT_S", 0.3)
    lock_file = tmp_path / "models" / ".locks" / f"{path.stem}.lock"
    with open(lock_file, "a") as holder:  # another "process" is pretraining this configuration
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        model = _tiny()
        with pytest.warns(models.WeightsWarning, match=r"truncated.*Pretraining again; another process held the "
                                                      r"cache's lock .* for 0.3 s") as caught:
            assert models.load_or_pretrain(model, {"steps": 2}, _pretrain_fn(calls), root=tmp_path) == "trained"
        fcntl.flock(holder.fileno(), fcntl.LOCK_UN)
    assert len(caught) == 1
    assert "waiting for another process" in capsys.readouterr().out
    _assert_same(model, reference)
    assert path.read_bytes() == damaged, "without the lock the cache must not be touched"
    with pytest.warns(models.WeightsWarning, match="truncated"):
        assert models.load_or_pretrain(_tiny(), {"steps": 2}, _pretrain_fn(calls), root=tmp_path, verbose=False) == "trained"
    assert models.load_or_pretrain(_tiny(), {"steps": 2}, _pretrain_fn(calls), root=tmp_path, verbose=False) == "cache"
    assert len(calls) == 3


def test_pretrain_that_raises_writes_nothing_and_releases_the_lock(tmp_path):
    def broken(model):
        torch.rand(5)  # consumes the global RNG before failing
        raise RuntimeError("out of memory in pretraining")

    torch.manual_seed(3)
    expected = torch.rand(1)
    torch.manual_seed(3)
    with pytest.raises(RuntimeError, match="out of memory in pretraining"):
        models.load_or_pretrain(_tiny(), {"steps": 2}, broken, root=tmp_path, verbose=False)
    assert torch.equal(torch.rand(1), expected), "the random state is restored when pretraining fails"
    assert [p.name for p in (tmp_path / "models").iterdir()] == [".locks"], "nothing is cached"
    model = _tiny()  # the lock was released: the next call pretrains and saves at once
    with _recorded_warnings() as caught:
        assert models.load_or_pretrain(model, {"steps": 2}, _pretrain_fn([]), root=tmp_path, verbose=False) == "trained"
    assert caught == []
    _assert_same(model, _reference_weights())


def test_load_weights_reads_each_file_once(tmp_path, monkeypatch):
    """The weights are hashed and deserialised from one read (see test_models_concurrency.py for the race)."""
    path = tmp_path / "w.pt"
    models.save_weights(_tiny(), path, config={"a": 1})
    opened = []
    real_open = open

    def counting_open(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    models.load_weights(SmallCNN(num_classes=3, channels=(4, 8), feature_dim=16, seed=1), path, config={"a": 1})
    assert sorted(opened) == sorted([str(path), str(path.with_suffix(".json"))])


# --------------------------------------------------------------------------- optional ResNet-18
def test_resnet18_skips_cleanly_without_torchvision(monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    path, note = models.find_resnet18_weights()
    assert path is None and "torchvision is not installed" in note


def test_resnet18_skips_cleanly_without_weights(monkeypatch, tmp_path):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: object())
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    path, note = models.find_resnet18_weights()
    assert path is None and "no ImageNet ResNet-18 weights" in note and "nothing is downloaded" in note
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "resnet18-f37072fd.pth").write_bytes(b"")
    path, note = models.find_resnet18_weights()
    assert path.name == "resnet18-f37072fd.pth"


def test_resnet18_features_plumbing():
    """resnet18_features drops the last layer and feeds 3-channel, resized, normalised images."""
    seen = {}

    class Fake(nn.Module):  # children() order like torchvision's ResNet: ..., avgpool, fc
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 5, 1)
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(5, 1000)

        def forward(self, x):  # not used by resnet18_features
            raise AssertionError

    fake = Fake()

    def hook(module, inputs, output):
        seen.setdefault("shape", tuple(inputs[0].shape))
        seen.setdefault("mean", inputs[0].mean(dim=(0, 2, 3)))

    fake.conv.register_forward_hook(hook)
    f = models.resnet18_features(fake, _images(3), size=32, batch_size=2)
    assert f.shape == (3, 5)
    assert seen["shape"] == (2, 3, 32, 32)
    # the three channels hold the same grey image, normalised per channel with the ImageNet statistics
    grey = models.images_to_tensor(_images(3))[:2]
    grey = nn.functional.interpolate(grey, size=(32, 32), mode="bilinear", align_corners=False).mean()
    expected = (grey - torch.tensor(models.IMAGENET_MEAN)) / torch.tensor(models.IMAGENET_STD)
    torch.testing.assert_close(seen["mean"], expected, rtol=1e-5, atol=1e-5)


def test_resnet18_with_real_torchvision_loads_a_checkpoint_and_extracts_features(monkeypatch, tmp_path):
    """The optional section's whole path with the real torchvision model (random weights stand in for
    ImageNet's, which are never downloaded): find the checkpoint, load it, extract 512 features, on the
    CPU and, where there is one, on the GPU."""
    torchvision = pytest.importorskip("torchvision")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    (tmp_path / "checkpoints").mkdir()
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "checkpoints" / "resnet18-f37072fd.pth")
    path, note = models.find_resnet18_weights()
    assert path is not None and "resnet18-f37072fd.pth" in note
    model = models.imagenet_resnet18(path)
    assert not model.training
    features = models.resnet18_features(model, _images(5), size=64, batch_size=2)
    assert features.shape == (5, 512) and features.dtype == np.float32 and np.isfinite(features).all()
    assert np.allclose(features, models.resnet18_features(model, _images(5), size=64, batch_size=5), atol=1e-5)
    if torch.cuda.is_available():
        # cuDNN's default TF32 convolutions round to 10-bit mantissas (differences of ~3e-3 were seen
        # on an H200 over ResNet-18's 20 layers): compare the plumbing in full float32.
        monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
        monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
        on_gpu = models.resnet18_features(model.to("cuda"), _images(5), size=64, batch_size=2)
        np.testing.assert_allclose(on_gpu, features, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_small_cnn_features_on_cuda_match_cpu(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # full float32, as on the CPU
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    net = SmallCNN(seed=0)
    X = _images(7)
    cpu = models.extract_features(net, X, batch_size=3)
    gpu = models.extract_features(net.to("cuda"), X, batch_size=3)
    assert gpu.shape == cpu.shape == (7, net.feature_dim)
    np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-5)
