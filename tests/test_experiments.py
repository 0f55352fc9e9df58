"Experiment harness (doppelnb.experiments): k-fold scores, caching, resuming, δ = 1 controls, a tiny end-to-end run on the fixture task."
import json
from dataclasses import replace

import matplotlib
import numpy as np
import pandas as pd
import pytest

matplotlib.use("Agg")

from doppelnb import experiments as X
from doppelnb.checkpoint import read_checkpoint
from doppelnb.evaluate import kfold_scores
from doppelnb.study import fold_chance
from doppelnb.study_tables import fold_table, interval_table, plot_paired
from doppelnb.config import delta_control, PretrainConfig
from doppelnb.fixtures import make_fixture_task
from doppelnb.tasks import load_task

SMOKE = PretrainConfig(batch_size=8, steps=2, workers=0, checkpoint_every=1, log_every=1, progress=False, tensorboard=False)
K = 5


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return load_task(make_fixture_task(tmp_path_factory.mktemp("fixture")))


@pytest.fixture(scope="module")
def noisy(task):
    "The fixture with half its labels shuffled: scores that vary from fold to fold and from method to method."
    rng = np.random.default_rng(0)
    y, idx = task.y.copy(), rng.permutation(len(task))[: len(task) // 2]
    y[idx] = rng.permutation(y[idx])
    return replace(task, name="noisy", y=y)


def test_run_caches_resumes_and_refuses_another_config(task, tmp_path):
    run = X.run_experiment("dg", SMOKE, [task], k=K, cache_dir=tmp_path)
    assert read_checkpoint(run.out / "last.pt")["step"] == 2
    assert set(run.scores.method) == {"dg"} and run.scores.accuracy.between(0, 1).all()
    assert list(run.scores.fold) == list(range(K))                                 # one row per fold
    mtimes = {f: (run.out / f).stat().st_mtime_ns for f in ("last.pt", "scores.csv", "scores.json")}
    again = X.run_experiment("dg", SMOKE, [task], k=K, cache_dir=tmp_path)
    assert {f: (run.out / f).stat().st_mtime_ns for f in mtimes} == mtimes        # nothing retrained or re-probed
    pd.testing.assert_frame_equal(run.scores, again.scores)
    with pytest.raises(ValueError, match="another config"):
        X.run_experiment("dg", replace(SMOKE, delta=0.5), [task], k=K, cache_dir=tmp_path)
    longer = X.run_experiment("dg", replace(SMOKE, steps=3), [task], k=K, cache_dir=tmp_path)   # resumes 2 → 3
    assert read_checkpoint(longer.out / "last.pt")["step"] == 3
    key = json.loads((longer.out / "scores.json").read_text())["key"]
    assert key["step"] == 3 and key["k"] == K and key["seed"] == 0


def test_scores_are_kfold_on_the_same_folds(noisy, tmp_path):
    "Each method's rows are kfold_scores' on group_kfold(task, k, seed); k and seed are part of the cache key."
    run = X.run_experiment("random", SMOKE, [noisy], k=K, seed=0, cache_dir=tmp_path, mode="random")
    features = run.features(noisy)
    fold_acc = lambda seed: [r["accuracy"] for r in kfold_scores(features, noisy, K, seed)]
    np.testing.assert_allclose(run.scores.accuracy, fold_acc(0))
    assert fold_acc(1) != fold_acc(0)                                              # the folds matter on this task
    assert run.scores.chance.tolist() == fold_chance(noisy, K, 0) and len(set(run.scores.chance)) > 1
    three = X.run_experiment("random", SMOKE, [noisy], k=3, seed=1, cache_dir=tmp_path, mode="random")
    assert list(three.scores.fold) == [0, 1, 2]
    np.testing.assert_allclose(three.scores.accuracy, [r["accuracy"] for r in kfold_scores(features, noisy, 3, 1)])
    with pytest.raises(ValueError, match="different folds"):
        X.compare([run, three])


def test_interrupted_run_resumes_from_its_checkpoint(task, tmp_path):
    from doppelnb.pretrain import pretrain
    pretrain(replace(SMOKE, steps=1, out=str(tmp_path / "cut")))                # a run killed after one step
    run = X.run_experiment("cut", SMOKE, [task], k=K, cache_dir=tmp_path)
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
    run = X.run_experiment("dg", SMOKE, [task], k=K, cache_dir=tmp_path)
    assert seen and seen[0]["pid"] == os.getpid() and seen[0]["what"] == "experiment dg"
    assert read_checkpoint(run.out / "last.pt")["step"] == 2
    assert not lock_path(run.out).exists()


def test_control_is_the_sweep_run_trained_once(task, tmp_path, monkeypatch):
    "Experiment 1's control of δ = 0.25 is the sweep's δ = 1 run: the same folder, pretrained once."
    import doppelnb.pretrain as P
    trained, real = [], P.pretrain
    monkeypatch.setattr(P, "pretrain", lambda cfg, **kw: trained.append(cfg.delta) or real(cfg, **kw))
    plan = X.experiment_plan(SMOKE)
    sweep_end = X.run_experiment("doppelganger δ=1", plan["doppelganger δ=1"], [task], k=K, cache_dir=tmp_path)
    name = X.plan_controls(plan)["doppelganger δ=0.25"]
    control = X.run_experiment(name, plan[name], [task], k=K, cache_dir=tmp_path)
    assert trained == [1.0] and control.out == sweep_end.out
    pd.testing.assert_frame_equal(control.scores, sweep_end.scores)


def test_modes_supervised_pairs_and_figures(task, noisy, tmp_path):
    tasks = [task, noisy]
    runs = [X.run_experiment("stats", None, tasks, K, 0, tmp_path, mode="logmel"),
            X.run_experiment("random", SMOKE, tasks, K, 0, tmp_path, mode="random"),
            X.run_supervised("sup", "small_cnn", tasks, K, 0, tmp_path, steps=5, batch_size=8)]
    assert not (tmp_path / "random" / "last.pt").exists()
    sup = runs[2].scores
    assert len(sup) == K * len(tasks) and list(sup.fold) == list(range(K)) * len(tasks)
    for t in tasks:      # fold f is tested after training on the other folds of group_kfold(task, k, seed): that split's chance level
        assert sup[sup.task == t.name].chance.tolist() == fold_chance(t, K, 0)
    table = X.compare(runs)
    assert list(dict.fromkeys(table.method)) == ["stats", "random", "sup"]
    assert fold_table(table).shape == (3, 2)
    assert runs[0].scores[runs[0].scores.task == task.name].accuracy.mean() > 0.8   # the fixture is learnable from log-mel stats
    diffs = X.paired_rows(table, [("stats", "random"), ("sup", "random")])
    assert len(diffs) == 2 * len(tasks) and set(diffs.folds) == {K}
    d = (table[(table.task == "noisy") & (table.method == "stats")].accuracy.to_numpy()
         - table[(table.task == "noisy") & (table.method == "random")].accuracy.to_numpy())
    row = diffs[(diffs.task == "noisy") & (diffs.method == "stats")].iloc[0]
    assert row["mean"] == pytest.approx(d.mean()) and row.low < row["mean"] < row.high
    assert interval_table(diffs).shape == (2, 2)
    plot_paired(diffs); X.plot_comparison(table)
    sweep = X.delta_table({0.0: runs[1], 1.0: runs[0]})
    means = 100 * sweep.groupby(["task", "delta"]).accuracy.mean().loc["noisy"]
    best = X.best_delta(sweep).set_index("task").loc["noisy"]
    assert best.best_delta == means.idxmax() and best.spread == round(means.max() - means.min(), 1)
    proj = X.embedding_projection(runs[:2], task, n=40, method="pca")
    assert len(proj) == 80 and np.isfinite(proj[["x", "y"]].to_numpy()).all()
    X.plot_projection(proj)
    with pytest.raises(ValueError, match="mode"):
        X.run_experiment("bad", SMOKE, [task], K, 0, tmp_path, mode="nope")


def test_plan_changes_one_thing_each_and_has_its_controls():
    base = PretrainConfig()
    plan = X.experiment_plan(base, audio_dir="data")
    for name, cfg in plan.items():
        if name.endswith("~ctrl"): cfg = plan[name.removesuffix(" ~ctrl")]       # a control: its ablation with δ = 1
        changed = {k for k, v in cfg.to_dict().items() if v != base.to_dict()[k]}
        assert len(changed) <= 1 or name.startswith("real audio"), (name, changed)
    assert {plan[f"doppelganger δ={d:g}"].delta for d in (0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0)} == {0, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0}
    controls = X.plan_controls(plan)
    assert set(controls) == {n for n, c in plan.items() if c.source == "synth" and c.delta < 1}
    assert all(plan[c] == delta_control(plan[n]) for n, c in controls.items())
    assert controls["doppelganger δ=0.25"] == controls["doppelganger δ=0"] == "doppelganger δ=1"
    assert controls["doppelganger, NT-Xent"] == "doppelganger, NT-Xent ~ctrl"
    assert "real audio (fonseca views)" not in controls
