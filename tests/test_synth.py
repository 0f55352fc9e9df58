"End-to-end and bad-input tests of the doppelgänger pair generator and its command-line entry points."
import hashlib
import socket
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from conftest import run_cli
from doppelnb.synth import DoppelgangerSynth, perturb


def digest(folder: Path) -> dict:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_pairs_cli_writes_wavs_and_params(tmp_path):
    out = tmp_path / "pairs"
    result = run_cli("doppelnb_pairs", "--out", out, "--n", 5, "--delta", 0.1, "--seed", 3, check=True)
    assert "wrote 5 pairs" in result.stdout
    table = pd.read_csv(out / "params.csv")
    assert len(table) == 10 and set(table.view) == {"a", "b"} and (table.delta == 0.1).all()
    assert table.iloc[:, 5:].shape[1] == 78 and table.iloc[:, 5:].min().min() >= 1e-6 and table.iloc[:, 5:].max().max() <= 1
    for name in table.file:
        audio, sr = sf.read(out / name)
        assert sr == 16000 and audio.shape == (16000,) and np.isfinite(audio).all() and np.abs(audio).max() > 0


def test_pairs_cli_is_reproducible_across_processes(tmp_path):
    run_cli("doppelnb_pairs", "--out", tmp_path / "a", "--n", 3, "--seed", 11, check=True)
    run_cli("doppelnb_pairs", "--out", tmp_path / "b", "--n", 3, "--seed", 11, check=True)
    run_cli("doppelnb_pairs", "--out", tmp_path / "c", "--n", 3, "--seed", 12, check=True)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a")["pair_0000_a.wav"] != digest(tmp_path / "c")["pair_0000_a.wav"]


def test_pairs_cli_never_overwrites_without_asking(tmp_path):
    run_cli("doppelnb_pairs", "--out", tmp_path, "--n", 2, "--seed", 0, check=True)
    before = digest(tmp_path)
    result = run_cli("doppelnb_pairs", "--out", tmp_path, "--n", 2, "--seed", 1)
    assert result.returncode == 2 and "--overwrite" in result.stderr
    assert digest(tmp_path) == before  # nothing already written was lost
    run_cli("doppelnb_pairs", "--out", tmp_path, "--n", 2, "--seed", 1, "--overwrite", check=True)
    assert digest(tmp_path) != before


@pytest.mark.parametrize("args, word", [(["--delta", "1.5"], "delta"), (["--delta", "-0.01"], "delta"), (["--n", "0"], "n:"),
                                        (["--duration", "0"], "duration"), (["--sample-rate", "-1"], "sample_rate"),
                                        (["--nebula", "piano"], "nebula"), (["--keep-fixed", "loudness"], "keep_fixed")])
def test_pairs_cli_bad_input(tmp_path, args, word):
    result = run_cli("doppelnb_pairs", "--out", tmp_path / "x", *args)
    assert result.returncode == 2 and word in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_pairs_cli_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_cli("doppelnb_pairs", "--out", blocker / "sub", "--n", 1)
    assert result.returncode == 2 and "out" in result.stderr and "Traceback" not in result.stderr
    assert blocker.read_text() == "not a folder"


def test_bench_cli_prints_throughput_and_ratio(tmp_path):
    result = run_cli("doppelnb_bench", "synth", "--synths", "voice", "modal", "--batch-sizes", 16, "--repeats", 1,
                     "--device", "cpu", "--json", tmp_path / "b.json", check=True)
    assert "raw voice" in result.stdout and "raw modal" in result.stdout and "ratio" in result.stdout
    import json
    rows = json.loads((tmp_path / "b.json").read_text())
    assert [row["synth"] for row in rows] == ["voice", "modal"]
    assert all(row["raw_xrt"] > 0 and row["pairs_rendered_xrt"] > 0 and row["ratio_rendered"] > 0 for row in rows)


def test_perturb_is_seeded_and_validates():
    theta = torch.rand(16, 78)
    a1, b1 = perturb(theta, 0.25, torch.Generator().manual_seed(5))
    a2, b2 = perturb(theta, 0.25, torch.Generator().manual_seed(5))
    assert torch.equal(a1, a2) and torch.equal(b1, b2) and not torch.equal(a1, b1)
    with pytest.raises(ValueError, match="params"):
        perturb(theta[0], 0.25)


def test_degenerate_redraw_gives_up_with_a_clear_error():
    gen = DoppelgangerSynth(batch_size=4, min_rms=10.0, max_rounds=2)  # nothing is that loud
    with pytest.raises(RuntimeError, match="min_rms"):
        gen.batch(0)


def _rank_worker(rank, world, port, out_dir):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        gen = DoppelgangerSynth(batch_size=4, seed=0)  # rank taken from torch.distributed
        torch.save({"rank": gen.rank, "params": gen.batch(0).params}, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_distributed_ranks_draw_distinct_streams(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    mp.spawn(_rank_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert (r0["rank"], r1["rank"]) == (0, 1)
    assert not torch.isclose(r0["params"], r1["params"]).all(dim=1).any()
    # and each rank's stream is the one a single process asking for that rank would draw
    assert torch.equal(r1["params"], DoppelgangerSynth(batch_size=4, seed=0, rank=1).batch(0).params)
