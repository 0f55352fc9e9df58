"""`doppelnb_hear` end to end: a generated 10-clip task scored by heareval's own predictions runner, in the evaluation
environment the command makes (once, in the user's cache), for the shipped encoder, its random-init twin and a second
checkpoint — which gets its own embeddings, never the first model's."""
import json

import numpy as np
import pandas as pd

from conftest import run_cli
from doppelnb.checkpoint import save_checkpoint
from doppelnb.fixtures import make_fixture_task
from doppelnb.model import build_encoder


def test_hear_scores_two_checkpoints_end_to_end(tmp_path):
    make_fixture_task(tmp_path / "data", name="toy", n_classes=2, n_groups=5, per_class_group=1)   # 10 clips
    out = tmp_path / "hear"
    # heareval's 'faster' grid (at most 10 epochs): a third of the default 'fast' grid's time on 10 clips
    r = run_cli("doppelnb_hear", "toy", "--data", tmp_path / "data", "--out", out, "--grid", "faster",
                timeout=1200)
    assert r.returncode == 0, r.stderr[-3000:]
    scores = pd.read_csv(out / "scores.csv")
    assert sorted(set(scores.method)) == ["small_cnn (random init)", "small_cnn (small_cnn_doppelgangers.pt)"]
    assert sorted(scores.fold.unique()) == [0, 1, 2, 3, 4] and len(scores) == 10
    assert scores.accuracy.between(0, 1).all()
    assert "paired per-fold differences" in r.stdout and "− small_cnn (random init)" in r.stdout
    run = json.loads((out / "run.json").read_text())
    assert run["heareval"] == "2021.1.3" and run["grid"] == "faster" and run["environment"]["torch"]
    # the task went over with group_kfold's folds: 5 folds of 2 clips
    meta = json.loads((out / "tasks" / "toy" / "task_metadata.json").read_text())
    assert meta["split_mode"] == "new_split_kfold" and meta["nfolds"] == 5

    # a second checkpoint: its own embeddings folder (named by its weights' digest), its own scores
    enc = build_encoder("small_cnn", seed=7)
    save_checkpoint(tmp_path / "other.pt", enc)
    r2 = run_cli("doppelnb_hear", "toy", "--data", tmp_path / "data", "--out", out, "--checkpoint",
                 tmp_path / "other.pt", "--grid", "faster", timeout=1200)
    assert r2.returncode == 0, r2.stderr[-3000:]
    folders = sorted(p.name for p in (out / "embeddings").iterdir())
    assert len(folders) == 3, folders                       # shipped, other, and the shared random-init twin
    mine = next(out / "embeddings" / f / "toy" for f in folders if f.startswith("small_cnn-other.pt-"))
    assert json.loads((mine / "model.json").read_text())["checkpoint"] == str((tmp_path / "other.pt").resolve())
    shipped = next(out / "embeddings" / f / "toy" for f in folders if "doppelgangers" in f)
    x, y = (np.fromfile(f / "fold00.embeddings.npy", dtype="<f4") for f in (mine, shipped))
    assert x.shape == y.shape and not np.allclose(x, y)     # not the first model's files
    second = pd.read_csv(out / "scores.csv")
    assert set(second.method) == {"small_cnn (other.pt)", "small_cnn (random init)"}


def test_hear_checks_arguments_before_any_work(tmp_path):
    make_fixture_task(tmp_path / "data", name="toy", n_classes=2, n_groups=5, per_class_group=1)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    env = tmp_path / "env"
    for args, culprit in [(["--folds", "2"], "--folds: at least 3"),
                          (["--grid-points", "0"], "--grid-points: at least 1"),
                          (["--checkpoint", tmp_path / "bad.pt"], "bad.pt"),
                          (["nosuchtask"], "neither a HEAR task folder nor a task built under")]:
        tasks = [] if args[0] == "nosuchtask" else ["toy"]
        r = run_cli("doppelnb_hear", *tasks, *args, "--data", tmp_path / "data", "--out", tmp_path / "o",
                    "--env", env)
        err = r.stderr.strip()
        assert r.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert culprit in err, err
    assert not env.exists()                                  # nothing was made before the checks
