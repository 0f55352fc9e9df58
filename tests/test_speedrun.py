"The recipe search's command line: a learning curve is refused, with a clear one-line error, for what it cannot run."
from conftest import run_cli


def test_curve_refuses_entries_it_cannot_run(tmp_path):
    for entry, says in (("random init", "not a pretraining entry"), ("no such entry", "not a pretraining entry"),
                        ("ntxent-head-adamw-d0.05-wave", "run the search entry")):   # not run under this empty root
        r = run_cli("doppelnb_speedrun", "--curve", entry, "--root", tmp_path / "speedrun", "--data", tmp_path / "data")
        assert r.returncode == 2 and says in r.stderr, (entry, r.stderr)
        assert "Traceback" not in r.stderr
    assert not (tmp_path / "speedrun").exists()        # nothing written
