"Experiment harness (doppelnb.experiments): caching, resuming, a tiny end-to-end run on the fixture task."
import json
from dataclasses import replace

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from doppelnb import experiments as X
from doppelnb.evaluate import format_results
from doppelnb.checkpoint import read_checkpoint
from doppelnb.pretrain import PretrainConfig
from doppelnb.fixtures import make_fixture_task
from doppelnb.tasks import load_task

SMOKE = PretrainConfig(batch_size=8, steps=2, workers=0, checkpoint_every=1, log_every=1, progress=False, tensorboard=False)


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return load_task(make_fixture_task(tmp_path_factory.mktemp("fixture")))


def test_run_caches_resumes_and_refuses_another_config(task, tmp_path):
    run = X.run_experiment("dg", SMOKE, [task], seeds=(0, 1), cache_dir=tmp_path)
    assert read_checkpoint(run.out / "last.pt")["step"] == 2
    assert set(run.results.method) == {"dg"} and run.rows.accuracy.between(0, 1).all()
    mtimes = {f: (run.out / f).stat().st_mtime_ns for f in ("last.pt", "results.csv", "results.json")}
    again = X.run_experiment("dg", SMOKE, [task], seeds=(0, 1), cache_dir=tmp_path)
    assert {f: (run.out / f).stat().st_mtime_ns for f in mtimes} == mtimes        # nothing retrained or re-probed
    pd.testing.assert_frame_equal(run.rows, again.rows)
    with pytest.raises(ValueError, match="another config"):
        X.run_experiment("dg", replace(SMOKE, delta=0.5), [task], seeds=(0, 1), cache_dir=tmp_path)
    longer = X.run_experiment("dg", replace(SMOKE, steps=3), [task], seeds=(0, 1), cache_dir=tmp_path)   # resumes 2 → 3
    assert read_checkpoint(longer.out / "last.pt")["step"] == 3
    assert json.loads((longer.out / "results.json").read_text())["key"]["step"] == 3


def test_interrupted_run_resumes_from_its_checkpoint(task, tmp_path):
    from doppelnb.pretrain import pretrain
    pretrain(replace(SMOKE, steps=1, out=str(tmp_path / "cut")))                # a run killed after one step
    run = X.run_experiment("cut", SMOKE, [task], seeds=(0,), cache_dir=tmp_path)
    assert read_checkpoint(run.out / "last.pt")["step"] == 2


def test_lock_is_held_and_taken_again_by_pretraining(task, tmp_path, monkeypatch):
    "run_experiment holds cache_dir/name's run lock; the pretraining inside takes the same lock again; all released at the end."
    import os
    from doppelnb.runlock import lock_path, read_lock
    import doppelnb.pretrain as P
    seen, real = [], P.pretrain
    def spy(cfg, **kwargs):
        seen.append(read_lock(cfg.out))
        return real(cfg, **kwargs)
    monkeypatch.setattr(P, "pretrain", spy)             # what X.ensure_pretrained calls
    run = X.run_experiment("dg", SMOKE, [task], seeds=(0,), cache_dir=tmp_path)
    assert seen and seen[0]["pid"] == os.getpid() and seen[0]["what"] == "experiment dg"
    assert read_checkpoint(run.out / "last.pt")["step"] == 2
    assert not lock_path(run.out).exists()


def test_modes_supervised_and_figures(task, tmp_path):
    runs = [X.run_experiment("stats", None, [task], (0, 1), tmp_path, mode="logmel"),
            X.run_experiment("random", SMOKE, [task], (0, 1), tmp_path, mode="random"),
            X.run_supervised("sup", "small_cnn", [task], steps=5, seeds=(0, 1), cache_dir=tmp_path, batch_size=8)]
    assert not (tmp_path / "random" / "last.pt").exists()
    table = X.compare(runs)
    assert list(dict.fromkeys(table.method)) == ["stats", "random", "sup"]
    assert format_results(table).shape == (1, 3)
    assert runs[0].results.query("metric == 'accuracy'")["mean"].iloc[0] > 0.8     # the fixture is learnable from log-mel stats
    X.plot_comparison(table)
    sweep = X.delta_table({0.0: runs[1], 1.0: runs[0]})
    means = sweep.groupby("delta").accuracy.mean()
    best = X.best_delta(sweep).iloc[0]
    assert best.best_delta == means.idxmax() and best.spread == round(means.max() - means.min(), 1)
    proj = X.embedding_projection(runs[:2], task, n=40, method="pca")
    assert len(proj) == 80 and np.isfinite(proj[["x", "y"]].to_numpy()).all()
    X.plot_projection(proj)
    with pytest.raises(ValueError, match="mode"):
        X.run_experiment("bad", SMOKE, [task], (0,), tmp_path, mode="nope")


def test_plan_changes_one_thing_each():
    base = PretrainConfig()
    plan = X.experiment_plan(base, audio_dir="data")
    for name, cfg in plan.items():
        changed = {k for k, v in cfg.to_dict().items() if v != base.to_dict()[k]}
        assert len(changed) <= 1 or name.startswith("real audio"), (name, changed)
    assert {plan[f"doppelganger δ={d:g}"].delta for d in (0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0)} == {0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0}
