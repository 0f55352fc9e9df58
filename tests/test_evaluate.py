"Linear evaluation on a tiny fixture task (doppelnb.evaluate)."
import numpy as np
import pandas as pd
import pytest
import torch

from doppelnb import checkpoint as C
from doppelnb import evaluate as E
from doppelnb.features import AudioFileError
from doppelnb.model import build_encoder
from doppelnb.fixtures import make_fixture_task
from doppelnb.tasks import group_split, load_task


@pytest.fixture(scope="module")
def fixture():
    import tempfile
    d = tempfile.mkdtemp()
    task = load_task(make_fixture_task(d))
    return task, E.task_logmels(task, progress=False)


def probe_all(X, y, task, seeds=range(4)):
    return [E.linear_probe(X[tr], y[tr], X[te], y[te], task.groups[tr], seeds=(s,))["accuracy"][0]
            for s in seeds for tr, te in [group_split(y, 0.25, s, groups=task.groups)]]


def test_learnable_labels_give_high_accuracy(fixture):
    task, logmels = fixture
    X = E.logmel_stats_features(logmels)
    assert np.mean(probe_all(X, task.y, task)) > 0.85
    Z = E.embed_logmels(build_encoder("small_cnn", seed=0), logmels)
    assert np.mean(probe_all(Z, task.y, task)) > 0.75


def test_shuffled_labels_give_chance(fixture):
    task, logmels = fixture
    X = E.logmel_stats_features(logmels)
    shuffled = np.random.default_rng(0).permutation(task.y)
    assert np.mean(probe_all(X, shuffled, task, seeds=range(6))) < 0.45  # chance is 0.25


def test_embedding_is_frozen_batched_and_averaged(fixture):
    task, logmels = fixture
    enc = build_encoder("small_cnn", seed=0).train()
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    Z = E.embed_task(enc, task, progress=False)
    assert Z.shape == (len(task), enc.embed_dim) and enc.training
    assert all(torch.equal(before[k], v) for k, v in enc.state_dict().items())  # BatchNorm stats untouched
    lm = [torch.randn(96 * 2 + 10, 64), torch.randn(20, 64)]
    z1, z2 = E.embed_logmels(enc, lm, batch_size=1), E.embed_logmels(enc, lm, batch_size=512)
    np.testing.assert_allclose(z1, z2, atol=1e-4)
    with torch.no_grad():
        ref = enc.eval()(E.clip_patches(lm[0])[:, None]).mean(0)
    np.testing.assert_allclose(z1[0], ref.numpy(), atol=1e-4)


def test_corrupt_file_is_named(fixture, tmp_path):
    task, _ = fixture
    bad = task.subset(np.arange(8))
    bad.files[3] = tmp_path / "corrupt.wav"
    bad.files[3].write_bytes(b"RIFF....WAVEfmt nonsense")
    with pytest.raises(AudioFileError, match="corrupt.wav"):
        E.embed_task(build_encoder("small_cnn", seed=0), bad, progress=False)


def test_evaluate_encoder_table(fixture):
    task, _ = fixture
    res = E.evaluate_encoder(build_encoder("small_cnn", seed=1), [task], name="mine", seeds=(0, 1), probes=("linear", "knn"), progress=False)
    assert {"task", "method", "probe", "metric", "mean", "std", "seeds", "values", "chance"} <= set(res.columns)
    assert set(res.method) == {"mine", "small_cnn (random init)", "logmel stats"} and len(res) == 3 * 2 * 2
    acc = res[res.metric == "accuracy"].set_index(["method", "probe"])["mean"]
    assert acc["logmel stats", "linear"] > 0.85


def test_checkpoint_roundtrip_and_mismatch(tmp_path, fixture):
    _, logmels = fixture
    enc = build_encoder("small_cnn", seed=3)
    path = C.save_checkpoint(tmp_path / "enc.pt", enc)
    loaded, ckpt = C.load_checkpoint(path)
    np.testing.assert_allclose(E.embed_logmels(loaded, logmels[:3]), E.embed_logmels(enc, logmels[:3]), atol=1e-5)
    torch.save({"encoder": "resnet18", "encoder_kwargs": {}, "state_dict": enc.state_dict()}, tmp_path / "wrong.pt")
    with pytest.raises(ValueError, match="does not match encoder 'resnet18'"):
        C.load_checkpoint(tmp_path / "wrong.pt")
    with pytest.raises(ValueError, match="holds a 'small_cnn' encoder"):
        C.load_checkpoint(path, "crnn")


def test_eval_cli_writes_csv(tmp_path):
    make_fixture_task(tmp_path / "data", name="toy")
    out = tmp_path / "eval"
    assert E.eval_cli(["--random", "--tasks", "all", "--data", str(tmp_path / "data"), "--out", str(out), "--seeds", "0", "--probes", "linear"]) == 0
    df = pd.read_csv(out / "scores.csv")
    assert set(df.method) == {"logmel stats", "small_cnn (random init)"} and set(df.task) == {"toy"}
    assert E.eval_cli(["--random", "--tasks", "all", "--data", str(tmp_path / "empty"), "--out", str(out)]) == 2
