"The main job's command line end to end, on a tiny fixture task; bad arguments fail before any work."
import json
from pathlib import Path

from conftest import run_cli
from doppelnb.fixtures import make_fixture_task

TINY = ["--steps", "3", "--batch-size", "8", "--workers", "0", "--duration", "0.5", "--head-hidden", "16", "--head-out", "16",
        "--encoder-kwargs", '{"channels": [8, 16]}', "--folds", "3", "--no-build", "--no-progress"]


def test_main_cli_end_to_end(tmp_path):
    make_fixture_task(tmp_path / "data", name="toy")
    out = tmp_path / "results"
    r = run_cli("doppelnb_main", "--out", out, "--data", tmp_path / "data", "--tasks", "toy", *TINY, check=True)
    assert "paired differences" in r.stdout and "δ=1 control" in r.stdout
    record = json.loads((out / "run.json").read_text())
    assert record["config"]["pretrain"]["steps"] == 3 and record["config"]["pretrain"]["loss"] == "nt_xent"   # the speedrun preset
    assert (out / "pretrain_control" / "config.json").exists()
    assert json.loads((out / "pretrain_control" / "config.json").read_text())["delta"] == 1.0
    card = (out / "model_card.md").read_text()
    assert "NT-Xent" in card and "δ = 0.05" in card and "3 group-disjoint folds" in card
    assert record["command"].startswith("doppelnb_main --out") and f"`{record['command']}`" in card   # how to reproduce it


def test_main_cli_rejects_bad_arguments_before_any_work(tmp_path):
    for args, says in ((["--delta", "2"], "delta"), (["--folds", "1"], "folds"), (["--out", "/etc/passwd/results"], "out:"),
                       (["--loss", "triplet"], "loss")):
        r = run_cli("doppelnb_main", "--data", tmp_path / "data", "--out", tmp_path / "results", *args)
        assert r.returncode == 2 and says in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr
    assert not (tmp_path / "data").exists()                # nothing was built
