"Pretraining engine end to end: CLI run, SIGKILL + exact resume, two gloo ranks with distinct batches, bad inputs."
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from conftest import ROOT
from doppelnb.fixtures import write_audio_folder
from doppelnb.pretrain import pretrain_cli

# tiny settings on the CPU preset (the command line defaults to the main recipe): 0.5 s sounds, 48-frame patches, a narrow
# small_cnn, batch 8
TINY = ["--preset", "cpu", "--batch-size", "8", "--duration", "0.5", "--patch-frames", "48", "--encoder-kwargs", '{"channels": [8, 16]}',
        "--log-every", "1", "--no-progress"]
CLI = [sys.executable, "-c", "from doppelnb.pretrain import pretrain_cli; pretrain_cli()"]
ENV = {**os.environ, "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"}


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, timeout=300, env=ENV, cwd=ROOT, **kwargs)


def last(out: Path) -> dict:
    return torch.load(out / "last.pt", map_location="cpu", weights_only=True)


def cli_error(capsys, *args) -> str:
    "Run pretrain_cli in-process, expect exit status 2, return stderr."
    with pytest.raises(SystemExit) as e:
        pretrain_cli([*map(str, args)])
    assert e.value.code == 2
    return capsys.readouterr().err


def test_cli_run_writes_config_metrics_checkpoint(tmp_path):
    out = tmp_path / "run"
    r = run(*TINY, "--steps", "4", "--checkpoint-every", "2", "--out", out, "--progress")
    assert r.returncode == 0, r.stderr
    assert "doppelnb pretrain" in r.stdout and "batch_size" in r.stdout            # the config is printed at the start
    config = json.loads((out / "config.json").read_text())
    assert config["batch_size"] == 8 and config["encoder"] == "small_cnn"
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss") and len(rows) == 5
    ckpt = last(out)
    assert ckpt["step"] == 4 and ckpt["config"] == config and ckpt["data"]["next_batch"] == 4
    assert {"encoder", "encoder_kwargs", "state_dict", "optimizer", "scheduler", "rng"} <= set(ckpt)
    assert (out / "loss.png").stat().st_size > 1000


def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    args = [*TINY, "--steps", "30", "--checkpoint-every", "5", "--workers", "1"]
    whole = tmp_path / "whole"
    assert run(*args, "--out", whole).returncode == 0
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*CLI, *args, "--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, cwd=ROOT)
    deadline = time.time() + 240
    while not (killed / "last.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    stopped_at = last(killed)["step"]
    assert 5 <= stopped_at < 30
    r = run("--out", killed, "--resume", "--no-progress")                          # the config comes from the run folder
    assert r.returncode == 0, r.stderr
    a, b = last(whole), last(killed)
    assert a["step"] == b["step"] == 30
    assert abs(a["loss"] - b["loss"]) <= 1e-6 * max(1.0, abs(a["loss"])), (a["loss"], b["loss"])
    for k, v in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][k], v, rtol=1e-5, atol=1e-6)
    steps = [int(line.split(",")[0]) for line in (killed / "metrics.csv").read_text().splitlines()[1:]]
    assert steps == list(range(1, 31))                                              # one history, no duplicated rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_see_different_batches(tmp_path):
    script = tmp_path / "ranked.py"
    script.write_text(textwrap.dedent("""
        import hashlib, json, os, sys
        import doppelnb.pretrain as P
        seen, original = [], P.SynthViews.batch
        def batch(self, index):
            a, b = original(self, index)
            seen.append([index, hashlib.sha1(a.numpy().tobytes() + b.numpy().tobytes()).hexdigest()])
            return a, b
        P.SynthViews.batch = batch
        result = P.pretrain_from_args(sys.argv[1:])
        weights = hashlib.sha1(b"".join(p.detach().numpy().tobytes() for p in result["model"].parameters())).hexdigest()
        out = result["out"] / f"rank{os.environ['RANK']}.json"
        out.write_text(json.dumps(dict(seen=seen, weights=weights, step=result["step"], loss=result["loss"])))
    """))
    out = tmp_path / "ddp"
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(free_port()), str(script),
           *TINY, "--batch-size", "16", "--steps", "3", "--checkpoint-every", "3", "--workers", "0", "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**ENV, "OMP_NUM_THREADS": "1"}, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    ranks = [json.loads((out / f"rank{i}.json").read_text()) for i in range(2)]
    assert [i for i, _ in ranks[0]["seen"]] == [i for i, _ in ranks[1]["seen"]] == [0, 1, 2]
    assert not {h for _, h in ranks[0]["seen"]} & {h for _, h in ranks[1]["seen"]}, "two ranks trained on the same batch"
    assert ranks[0]["weights"] == ranks[1]["weights"], "DDP left the ranks with different weights"  # (BN running stats are per rank)
    assert ranks[0]["loss"] == ranks[1]["loss"]                                     # the whole-batch loss, on every rank
    ckpt = last(out)
    assert ckpt["world_size"] == 2 and ckpt["step"] == 3 and len(ckpt["rng"]) == 2 and ckpt["data"]["per_rank_batch"] == 8


def test_bad_inputs_give_clear_errors(tmp_path, capsys):
    out = tmp_path / "run"
    fast = [*TINY, "--workers", "0", "--steps", "2", "--out", str(out)]
    assert "encoder: unknown name 'resnet50'" in cli_error(capsys, *fast, "--encoder", "resnet50")
    assert "loss: unknown name 'infonce'" in cli_error(capsys, *fast, "--loss", "infonce")
    assert "delta: must lie in [0, 1]" in cli_error(capsys, *fast, "--delta", "1.5")
    assert not out.exists()                                                         # nothing written for a bad config
    (tmp_path / "empty").mkdir()
    assert "holds no audio files" in cli_error(capsys, *fast, "--source", "audio", "--audio-dir", tmp_path / "empty")
    clips = write_audio_folder(tmp_path / "clips", n=10, seconds=1.0, rate=16000)
    (clips / "deep").mkdir()
    (clips / "deep" / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEjunk" + bytes(64))
    err = cli_error(capsys, *fast, "--source", "audio", "--audio-dir", clips)
    assert "corrupt.wav" in err and "cannot read audio" in err
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert "cannot write to" in cli_error(capsys, *fast[:-1], blocker / "run")     # unwritable out: its parent is a file

    # a finished run's checkpoint survives every later failure byte for byte
    (clips / "deep" / "corrupt.wav").unlink()
    pretrain_cli([*fast, "--source", "audio", "--audio-dir", str(clips), "--views", "fonseca"])
    before = (out / "last.pt").read_bytes()
    assert "different configuration" in (err := cli_error(capsys, "--out", out, "--resume", "--encoder", "vgglike", "--steps", "4"))
    assert "encoder: 'small_cnn' → 'vgglike'" in err
    assert "pass --resume" in cli_error(capsys, *fast, "--source", "audio", "--audio-dir", clips)
    assert "unknown name" in cli_error(capsys, "--out", out, "--resume", "--steps", "4", "--loss", "nope")
    assert (out / "last.pt").read_bytes() == before


def test_disk_full_keeps_previous_checkpoint(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    pretrain_cli([*TINY, "--workers", "0", "--steps", "2", "--out", str(out)])
    before = (out / "last.pt").read_bytes()
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):  # write part of the file, then run out of space
        real_save(obj, f, *args, **kwargs)
        with open(f, "r+b") as fh: fh.truncate(100)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(torch, "save", full_disk)
    err = cli_error(capsys, "--out", out, "--resume", "--steps", "4", "--no-progress")
    assert "the disk is full" in err and "is intact" in err
    assert (out / "last.pt").read_bytes() == before
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_bench_pretrain_prints_variant_ratio(tmp_path, capsys):
    "doppelnb_bench pretrain runs the baseline and each variant in one invocation and prints each variant's pairs/s ratio."
    from doppelnb.bench_loop import bench_cli
    out = tmp_path / "bench.json"
    bench_cli(["pretrain", "--sources", "synth", "--steps", "3", "--warmup", "1", "--batch-size", "8", "--workers", "0", "--device", "cpu",
                        "--variants", "channels_last=true", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "channels_last=true: × " in printed and "vs baseline" in printed, printed
    rows = json.loads(out.read_text())
    assert [r["variant"] for r in rows] == ["baseline", "channels_last=true"] and rows[0]["ratio"] == 1.0
    with pytest.raises(SystemExit) as e:
        bench_cli(["pretrain", "--sources", "synth", "--variants", "chanels_last=true"])
    assert e.value.code == 2 and "not KNOB=VALUE" in capsys.readouterr().err


def test_registered_synth_is_reachable_from_the_command_line():
    "A synthesizer registered in one place (doppelnb.synth_space.register_synth) is a value of doppelnb_pretrain --synth."
    from doppelnb.config import config_parser
    from doppelnb.pretrain import config_from_args, make_stream
    from doppelnb.synth_space import SYNTHS, import_torchsynth, register_synth
    class OtherVoice(import_torchsynth()[1].Voice): pass
    register_synth("other_voice", lambda: OtherVoice, ("default", "drum"), SYNTHS["voice"].groups)
    try:
        args = ["--synth", "voice+other_voice", "--batch-size", "4", "--duration", "0.5", "--patch-frames", "32",
                "--loss-kwargs", '{"alpha": 2, "t": 3}']
        cfg, _ = config_from_args(vars(config_parser().parse_args(args)))
        cfg.validate()
        assert cfg.synth == "voice+other_voice" and cfg.loss_kwargs == {"t": 3}
        stream = make_stream(cfg)
        assert [type(s.synth).__name__ for s in stream.synths] == ["Voice", "OtherVoice"]
        assert stream.batch(0)[0].shape == (4, 32, 64)
    finally:
        del SYNTHS["other_voice"]


def test_loader_workers_end_with_a_failed_run_whose_error_is_kept(tmp_path):
    """A run that fails (here a monitor probe) leaves no DataLoader worker behind, even while the caller keeps
    the error, whose traceback holds the loop's frame: workers ignore SIGINT and SIGTERM, so one left over made
    the process wait for it forever at exit (a study hung after its last entry)."""
    import multiprocessing as mp
    from doppelnb.config import PretrainConfig
    from doppelnb.pretrain import pretrain
    def failing(step, encoder): raise RuntimeError("callback failed")
    cfg = PretrainConfig(batch_size=8, steps=4, duration=0.5, patch_frames=48, encoder_kwargs={"channels": [8, 16]},
                         workers=1, monitor_every=2, progress=False, tensorboard=False, out=str(tmp_path / "run"))
    kept = None
    try: pretrain(cfg, probes=[failing])
    except RuntimeError as e: kept = e
    assert kept is not None and "callback failed" in str(kept)
    assert mp.active_children() == [], f"DataLoader workers still alive: {mp.active_children()}"


def test_a_loss_with_parameters_trains_checkpoints_and_resumes_exactly(tmp_path):
    "A registered `Loss` module with a parameter (NT-Xent's learned τ): it trains, is checkpointed, resumes bit-exactly."
    fast = [*TINY, "--workers", "0", "--loss", "nt_xent_learned_tau", "--loss-kwargs", '{"tau": 0.2}', "--optimizer", "fonseca"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    pretrain_cli([*fast, "--steps", "4", "--out", str(straight)])
    pretrain_cli([*fast, "--steps", "2", "--out", str(split)])
    assert list(last(split)["loss_state"]) == ["log_tau"]
    pretrain_cli(["--resume", "--steps", "4", "--no-progress", "--out", str(split)])
    a, b = last(straight), last(split)
    assert a["step"] == b["step"] == 4
    assert torch.equal(a["loss_state"]["log_tau"], b["loss_state"]["log_tau"])
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert a["loss_state"]["log_tau"].item() != pytest.approx(float(torch.log(torch.tensor(0.2))), abs=1e-9)  # τ moved
    assert a["optimizer"]["param_groups"][1]["weight_decay"] == 0.0                  # τ is not decayed


def two_ranks_keeping_the_loss(tmp_path, *args) -> Path:
    "Pretrain on two gloo ranks with `args`; each rank saves its loss module's state as `out/rankN.pt`. Returns `out`."
    script = tmp_path / "ranked.py"
    script.write_text(textwrap.dedent("""
        import os, sys, torch
        import doppelnb.pretrain as P
        made, original = [], P.get_loss
        def get_loss(*args, **kwargs):                   # keep the run's loss module, to read this rank's state
            made.append(original(*args, **kwargs)); return made[-1]
        P.get_loss = get_loss
        result = P.pretrain_from_args(sys.argv[1:])
        torch.save(made[-1].state_dict(), result["out"] / f"rank{os.environ['RANK']}.pt")
    """))
    out = tmp_path / "ddp"
    torchrun = Path(sys.executable).parent / "torchrun"
    cmd = [str(torchrun), "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(free_port()), str(script),
           *TINY, "--batch-size", "16", "--steps", "3", "--workers", "0", *args, "--out", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**ENV, "OMP_NUM_THREADS": "1"}, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def test_a_loss_parameter_stays_the_same_on_every_rank(tmp_path):
    "Two gloo ranks: the learned τ (outside DDP's model) gets the summed gradient, so the ranks keep one τ."
    out = two_ranks_keeping_the_loss(tmp_path, "--checkpoint-every", "1", "--keep-checkpoints", "--loss", "nt_xent_learned_tau",
                                     "--optimizer", "adamw")
    taus = [torch.load(out / f"step_{s:07d}.pt", weights_only=True)["loss_state"]["log_tau"].item() for s in (1, 2, 3)]
    assert len(set(taus)) == 3                                                       # τ trains
    ranks = [torch.load(out / f"rank{i}.pt", weights_only=True)["log_tau"].item() for i in range(2)]
    assert ranks[0] == ranks[1] == taus[-1]


def test_a_loss_with_targets_gets_the_pitch_offsets_and_resumes_exactly(tmp_path, capsys):
    "nt_xent_pitch_offset: the stream's pitch offsets reach the loss; its predictor trains, is seeded and resumes bit-exactly."
    fast = [*TINY, "--workers", "0", "--loss", "nt_xent_pitch_offset", "--loss-kwargs", '{"dim": 32, "hidden": 8}',
            "--pitch-offset", "3", "--optimizer", "fonseca"]
    straight, split, again = tmp_path / "straight", tmp_path / "split", tmp_path / "again"
    pretrain_cli([*fast, "--steps", "4", "--out", str(straight)])
    pretrain_cli([*fast, "--steps", "2", "--out", str(split)])
    pretrain_cli(["--resume", "--steps", "4", "--no-progress", "--out", str(split)])
    pretrain_cli([*fast, "--steps", "2", "--out", str(again)])
    a, b, c = last(straight), last(split), last(again)
    assert all(k.startswith("predictor.") for k in a["loss_state"]) and len(a["loss_state"]) == 4
    for key in a["loss_state"]:
        assert torch.equal(a["loss_state"][key], b["loss_state"][key])              # resumed exactly
        assert not torch.equal(a["loss_state"][key], c["loss_state"][key])          # and the predictor trains
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    err = cli_error(capsys, *TINY, "--loss", "nt_xent_pitch_offset", "--steps", "1", "--out", tmp_path / "none")
    assert "pitch_offset > 0" in err                                                 # no offsets, nothing to predict
    assert not (tmp_path / "none").exists()


def test_a_loss_predictor_is_the_same_on_every_rank(tmp_path):
    "Two gloo ranks with nt_xent_pitch_offset: the predictor starts from the run's seed and trains on summed gradients, so the ranks keep one."
    out = two_ranks_keeping_the_loss(tmp_path, "--loss", "nt_xent_pitch_offset", "--loss-kwargs", '{"dim": 32, "hidden": 8}',
                                     "--pitch-offset", "3", "--optimizer", "adamw")
    ranks = [torch.load(out / f"rank{i}.pt", weights_only=True) for i in range(2)]
    saved = torch.load(out / "last.pt", weights_only=True)["loss_state"]
    assert all(torch.equal(ranks[0][k], ranks[1][k]) and torch.equal(ranks[0][k], saved[k]) for k in saved)
