"""Fault injection (issue 15): each test breaks one input or interrupts one run and checks the outcome — a clear one-line
error naming the culprit, and nothing already written lost. `FAULT_CASES` (filled by the `fault` decorator) is the table
of case → behaviour; `python tests/test_faults.py` prints it as markdown."""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from doppelnb import build_data as B
from doppelnb import checkpoint as C
from doppelnb import evaluate as E
from doppelnb import pairs as PAIRS
from doppelnb import synth as S
from doppelnb import tasks as T
from doppelnb.fixtures import make_fixture_task
from doppelnb.features import AudioFileError, load_audio
from doppelnb.model import build_encoder
from doppelnb.runlock import RunLockedError, StaleLockWarning, lock_path, read_lock, run_lock

FAULT_CASES = []  # (area, case, behaviour, test name)


def fault(area: str, case: str, behaviour: str):
    "Register a test as the check of one fault case."
    def register(fn):
        FAULT_CASES.append((area, case, behaviour, fn.__name__))
        return fn
    return register


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    "A data folder with two tiny built tasks, `toy` and `toy2`."
    root = tmp_path_factory.mktemp("data")
    make_fixture_task(root, name="toy", n_groups=4, per_class_group=2)
    make_fixture_task(root, name="toy2", n_classes=3, n_groups=4, per_class_group=2, seed=1)
    return root


def copy_task(data, tmp_path, name="toy"):
    shutil.copytree(data / name, tmp_path / name)
    return tmp_path / name


# ---------------------------------------------------------------- run locks

def hold_lock(folder, name=None):
    "A second process that holds `folder`'s lock until killed."
    args = f"{str(folder)!r}" + (f", name={name!r}" if name else "")
    p = subprocess.Popen([sys.executable, "-c", f"from doppelnb.runlock import _hold_for_test; _hold_for_test({args})"],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


@fault("run lock", "a second process takes a folder another live process holds",
       "`RunLockedError` naming the folder, the owner's pid and host; the owner's lock untouched")
def test_live_lock_is_refused(tmp_path):
    other = hold_lock(tmp_path)
    try:
        with pytest.raises(RunLockedError, match=f"pid {other.pid} on host {socket.gethostname()}") as e:
            with run_lock(tmp_path, "second"):
                pass
        assert str(tmp_path) in str(e.value)
        assert read_lock(tmp_path)["pid"] == other.pid
    finally:
        other.kill(); other.wait()


@fault("run lock", "the owner was killed with kill -9 (stale lock)",
       "a `StaleLockWarning` naming the old pid; the lock is taken over and released at the end")
def test_stale_lock_is_reported_and_taken_over(tmp_path):
    other = hold_lock(tmp_path)
    other.kill(); other.wait()
    with pytest.warns(StaleLockWarning, match=f"pid {other.pid}"):
        with run_lock(tmp_path, "after kill") as info:
            assert read_lock(tmp_path)["token"] == info["token"]
    assert not lock_path(tmp_path).exists()


@fault("run lock", "a run takes over a stale lock (its owner was killed)",
       "one line on stderr naming the folder and the dead owner, no Python source line; the run goes on")
def test_stale_lock_notice_is_one_line(tmp_path):
    other = hold_lock(tmp_path)
    other.kill(); other.wait()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    code = f"from doppelnb.runlock import run_lock\nwith run_lock({str(tmp_path)!r}, 'a run'): print('ran')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0 and r.stdout == "ran\n", r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"doppelnb:0: StaleLockWarning: {tmp_path}: took over a stale "
                                                   f"lock of pid {other.pid} on host ") \
        and lines[0].endswith("which no longer runs"), r.stderr


@fault("run lock", "`doppelnb_build_data` while another process holds the data folder",
       "exit status 2, one line naming the folder and the owner's pid; nothing built")
def test_build_data_respects_lock(tmp_path, capsys):
    other = hold_lock(tmp_path)
    try:
        assert B.build_cli(["--tasks", "notes", "--root", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert f"pid {other.pid}" in err and str(tmp_path) in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "notes").exists()
    finally:
        other.kill(); other.wait()


@fault("run lock", "two `doppelnb_eval` runs write the same `--out`",
       "the second exits 2 before any work, naming the output and the first run's pid")
def test_eval_respects_lock(data, tmp_path, capsys, monkeypatch):
    out = tmp_path / "eval"; out.mkdir()
    other = hold_lock(out)
    monkeypatch.setattr(E, "task_logmels", lambda *a, **k: pytest.fail("embedding started"))
    try:
        assert E.eval_cli(["--random", "--data", str(data), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert f"pid {other.pid}" in err and str(out) in err, err
    finally:
        other.kill(); other.wait()


@fault("run lock", "two `doppelnb_embed` runs write the same OUT",
       "the second exits 2 with one line naming the folder and the first run's pid; nothing written to OUT")
def test_embed_respects_lock(tmp_path, capsys):
    from doppelnb.embed import embed_cli
    audio, out = tmp_path / "audio", tmp_path / "out"
    audio.mkdir()
    sf.write(audio / "a.wav", np.zeros(8000, np.float32), 16000)
    other = hold_lock(out)
    try:
        with pytest.raises(SystemExit) as e:
            embed_cli([str(audio), str(out), "--quiet"])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert f"pid {other.pid}" in err and str(out) in err and len(err.strip().splitlines()) == 1, err
        assert [p.name for p in out.iterdir()] == [".lock"]     # no run.json, index.csv or embeddings
    finally:
        other.kill(); other.wait()


@fault("run lock", "two processes run the same experiment (`run_experiment` / `run_supervised` on one `cache_dir/name`)",
       "`RunLockedError` naming the folder and the first process's pid, before anything is pretrained, probed or written")
def test_experiment_respects_lock(data, tmp_path, monkeypatch):
    from doppelnb import experiments as X
    from doppelnb.config import PretrainConfig
    tasks, cache = [T.load_task(data / "toy")], tmp_path / "cache"
    out = cache / "dg"
    for f in ("ensure_pretrained", "score_method", "supervised_fold"):
        monkeypatch.setattr(X, f, lambda *a, f=f, **k: pytest.fail(f"{f} started"))
    other = hold_lock(out)
    try:
        runs = [lambda: X.run_experiment("dg", PretrainConfig(steps=2), tasks, k=2, cache_dir=cache),
                lambda: X.run_experiment("dg", None, tasks, k=2, cache_dir=cache, mode="logmel"),
                lambda: X.run_supervised("dg", "small_cnn", tasks, k=2, cache_dir=cache, steps=1)]
        for run in runs:
            with pytest.raises(RunLockedError, match=f"pid {other.pid}") as e:
                run()
            assert str(out) in str(e.value)
        assert [p.name for p in out.iterdir()] == [".lock"]
        assert read_lock(out)["pid"] == other.pid
    finally:
        other.kill(); other.wait()


# ---------------------------------------------------------------- doppelnb_eval: early checks, partial results

@pytest.mark.parametrize("args, culprit", [
    (["--out", "{file}/eval"], "out"),
    (["--out", "{file}"], "out"),
    (["--out", "results.csv"], "looks like a CSV file name; --out is a folder"),
    (["--test-fraction", "0"], "test-fraction"),
    (["--test-fraction", "1.5"], "test-fraction"),
    (["--seeds", "-1"], "seeds"),
    (["--batch-size", "0"], "batch-size"),
    (["--encoder", "nope"], "encoder"),
])
@fault("doppelnb_eval", "an unwritable `--out` (inside a file, a file, a CSV name), `--test-fraction 0`, a negative seed, `--batch-size 0`, an unknown encoder",
       "exit status 2 and one line naming the argument, before any clip is embedded")
def test_eval_checks_arguments_before_work(data, tmp_path, capsys, monkeypatch, args, culprit):
    (tmp_path / "file").write_text("not a folder")
    args = [a.format(file=tmp_path / "file") for a in args]
    monkeypatch.setattr(E, "task_logmels", lambda *a, **k: pytest.fail("embedding started before the arguments were checked"))
    argv = ["--random", "--data", str(data), "--out", str(tmp_path / "eval")] + args
    assert E.eval_cli(argv) == 2
    err = capsys.readouterr().err.strip()
    assert culprit in err and len(err.splitlines()) == 1, err


@fault("doppelnb_eval", "a task that fails late (a corrupt clip in the second task)",
       "exit status 2 naming the clip; the first task's rows are kept in `<out>/scores.partial.csv`, an older "
       "`<out>/scores.csv` untouched")
def test_eval_keeps_partial_results(data, tmp_path, capsys):
    d = tmp_path / "data"
    copy_task(data, d, "toy"); bad = copy_task(data, d, "toy2")
    (bad / pd.read_csv(bad / "metadata.csv").file[5]).write_bytes(b"RIFF....WAVEfmt garbage")
    folder = tmp_path / "eval"; folder.mkdir(); out = folder / "scores.csv"
    out.write_text("an older result\n")
    assert E.eval_cli(["--random", "--data", str(d), "--out", str(folder), "--seeds", "0", "--probes", "linear"]) == 2
    err = capsys.readouterr().err
    assert "toy2" in err and "partial" in err, err
    assert out.read_text() == "an older result\n"
    partial = pd.read_csv(folder / "scores.partial.csv")
    assert set(partial.task) == {"toy"} and len(partial) == 2 * 2  # 2 methods × 2 metrics


@fault("doppelnb_eval", "the disk fills while the partial results of the second task are written",
       "exit status 2; the message lists exactly the tasks the partial file holds; no temporary file is left")
def test_eval_partial_message_matches_the_file(data, tmp_path, capsys, monkeypatch):
    import errno
    d = tmp_path / "data"
    copy_task(data, d, "toy"); copy_task(data, d, "toy2")
    folder = tmp_path / "eval"; out = folder / "scores.csv"
    real, calls = pd.DataFrame.to_csv, []
    def to_csv(df, path, *a, **k):
        calls.append(path)
        if len(calls) == 2: raise OSError(errno.ENOSPC, "No space left on device")
        return real(df, path, *a, **k)
    monkeypatch.setattr(pd.DataFrame, "to_csv", to_csv)
    assert E.eval_cli(["--random", "--data", str(d), "--out", str(folder), "--seeds", "0", "--probes", "linear"]) == 2
    err = capsys.readouterr().err
    partial = pd.read_csv(folder / "scores.partial.csv")
    assert set(partial.task) == {"toy"} and "['toy']" in err and "toy2" not in err.split("kept")[-1], err
    assert not list(folder.glob(".*tmp")) and not out.exists()


@fault("doppelnb_eval", "a task with a single class", "a one-line error naming the task and its only class, before any work")
def test_single_class_task(data, tmp_path, capsys, monkeypatch):
    one = copy_task(data, tmp_path)
    meta = pd.read_csv(one / "metadata.csv"); meta["label"] = "tone0"; meta.to_csv(one / "metadata.csv", index=False)
    task = T.load_task(one)
    with pytest.raises(ValueError, match="toy.*only one class.*tone0"):
        E.evaluate_features(np.zeros((len(task), 4)), task, seeds=(0,))
    monkeypatch.setattr(E, "task_logmels", lambda *a, **k: pytest.fail("embedding started"))
    assert E.eval_cli(["--random", "--data", str(tmp_path), "--out", str(tmp_path / "e")]) == 2
    assert "only one class" in capsys.readouterr().err


# ---------------------------------------------------------------- checkpoints

@fault("checkpoint", "one weight tensor of a checkpoint holds NaN",
       "`load_checkpoint` (and so `doppelnb_eval`, `embed_file`) refuses it, naming the file and the tensor")
def test_nan_checkpoint_is_refused(tmp_path):
    enc = build_encoder("small_cnn", seed=0)
    sd = enc.state_dict()
    key = next(k for k, v in sd.items() if v.is_floating_point())
    sd[key] = sd[key].clone(); sd[key].view(-1)[0] = float("nan")
    path = tmp_path / "nan.pt"
    torch.save({"encoder": "small_cnn", "encoder_kwargs": {}, "state_dict": sd}, path)
    with pytest.raises(ValueError, match="nan.pt.*(NaN|non-finite)") as e:
        C.load_checkpoint(path)
    assert key in str(e.value)


@fault("checkpoint", "two bytes of a weight flipped inside a checkpoint file (it still unpickles)",
       "`read_checkpoint` (and so `load_checkpoint`, `hear.load_model`, `doppelnb_embed`, `doppelnb_eval`, resume) "
       "refuses it in one line: its weights do not match the digest written with them")
def test_flipped_bytes_are_caught(tmp_path):
    from doppelnb.hear import load_model
    enc = build_encoder("small_cnn", seed=0)
    path = C.save_checkpoint(tmp_path / "enc.pt", enc)
    data = bytearray(path.read_bytes())
    weight = max(enc.state_dict().values(), key=lambda v: v.numel()).contiguous().numpy().tobytes()
    at = data.find(weight[:64])
    assert at > 0
    data[at + 100] ^= 0xFF; data[at + 101] ^= 0x0F
    path.write_bytes(bytes(data))
    for load in (C.read_checkpoint, C.load_checkpoint, load_model):
        with pytest.raises(ValueError, match="enc.pt: its weights do not match the digest") as e:
            load(path)
        assert len(str(e.value).splitlines()) == 1


@fault("checkpoint", "float weights cast to int64 and saved again (with or without the digest)",
       "refused in one line naming the file: the digest, or for a file without one the dtype, does not match")
def test_cast_weights_are_caught(tmp_path):
    enc = build_encoder("small_cnn", seed=0)
    ckpt = C.read_checkpoint(C.save_checkpoint(tmp_path / "enc.pt", enc))
    key = next(k for k, v in ckpt["state_dict"].items() if v.is_floating_point())
    ckpt["state_dict"][key] = ckpt["state_dict"][key].long()
    torch.save(ckpt, tmp_path / "cast.pt")
    with pytest.raises(ValueError, match="cast.pt: its weights do not match the digest"):
        C.load_checkpoint(tmp_path / "cast.pt")
    del ckpt["digest"]
    torch.save(ckpt, tmp_path / "old.pt")
    with pytest.raises(ValueError, match=f"old.pt does not match encoder.*dtype mismatch.*{key}"):
        C.load_checkpoint(tmp_path / "old.pt")


@fault("embed", "`doppelnb_embed` run again after a file's audio changed (same name)",
       "the changed file is embedded again (its size or modification time differ from those in `index.csv`); "
       "unchanged files are skipped")
def test_embed_resume_reembeds_changed_files(tmp_path):
    from doppelnb.embed import embed_folder
    from doppelnb.fixtures import realish_clip
    audio, out = tmp_path / "audio", tmp_path / "out"
    audio.mkdir()
    sf.write(audio / "a.wav", realish_clip(1.0, 16000, channels=1), 16000)
    sf.write(audio / "b.wav", realish_clip(1.5, 16000, channels=1, seed=1), 16000)
    first = embed_folder(audio, out, progress=False, log=None)
    kept, old_b = (out / first.embedding[0]).stat().st_mtime_ns, np.load(out / first.embedding[1])
    sf.write(audio / "b.wav", realish_clip(1.5, 16000, channels=1, seed=2), 16000)   # same name and size
    os.utime(audio / "b.wav", ns=(time.time_ns(), time.time_ns() + 10**9))
    said = []
    again = embed_folder(audio, out, progress=False, log=said.append)
    assert "1 done before" in said[0], said
    assert (out / first.embedding[0]).stat().st_mtime_ns == kept
    fresh = embed_folder(audio, tmp_path / "fresh", progress=False, log=None)
    new = np.load(tmp_path / "fresh" / fresh.embedding[1])             # the changed audio, embedded afresh
    np.testing.assert_allclose(np.load(out / again.embedding[1]), new, atol=1e-5)    # (batched otherwise)
    assert not np.allclose(old_b, new, atol=1e-3)                      # and not what the old audio gave


@fault("embed", "`doppelnb_embed --device cuda` on a machine without a GPU (or a device name torch does not know)",
       "exit status 2, one line naming the device, before any file is read or written")
def test_embed_checks_the_device_first(tmp_path):
    from conftest import run_cli
    from doppelnb.fixtures import realish_clip
    (tmp_path / "audio").mkdir()
    sf.write(tmp_path / "audio" / "a.wav", realish_clip(1.0, 16000, channels=1), 16000)
    bad = ["gpu"] + ([] if torch.cuda.is_available() else ["cuda"])
    for device in bad:
        r = run_cli("doppelnb_embed", tmp_path / "audio", tmp_path / "out", "--device", device, "--quiet")
        assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert f"device: {device!r}" in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()


@fault("checkpoint", "a folder passed where a checkpoint file is expected (`--checkpoint runs/x`)",
       "one line saying it is a folder and naming the run's `last.pt` inside it")
def test_checkpoint_folder_is_named(tmp_path):
    with pytest.raises(ValueError, match=f"{tmp_path} is a folder, not a checkpoint file.*{tmp_path / 'last.pt'}"):
        C.load_checkpoint(tmp_path)


@fault("pretrain", "`doppelnb_pretrain --batch-size 0`", "exit status 2, one line naming `batch_size` (not the synth)")
def test_pretrain_batch_size_is_named(tmp_path, capsys):
    err = pretrain_error(capsys, "--batch-size", "0", "--out", tmp_path / "run")
    assert "batch_size: an integer >= 2, got 0" in err, err


@fault("eval", "`doppelnb_eval --probes knn` on a task too small for k = 15 (8 clips to fit on)",
       "exit status 2 before any clip is embedded, one line naming the task, the seed and the k-NN probe")
def test_eval_knn_needs_enough_clips(tmp_path, capsys, monkeypatch):
    make_fixture_task(tmp_path, name="tiny", n_groups=4, per_class_group=1)
    monkeypatch.setattr(E, "task_logmels", lambda *a, **k: pytest.fail("a clip was embedded before the check"))
    assert E.eval_cli(["--random", "--tasks", "tiny", "--data", str(tmp_path), "--out", str(tmp_path / "e"),
                       "--probes", "knn", "--seeds", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "task tiny, seed 0: the k-NN probe tries k up to 15" in err, err
    assert not (tmp_path / "e" / "scores.csv").exists()


@fault("checkpoint", "a checkpoint in torch's legacy (non-zip) format, cut short",
       "one line saying it is a legacy-format torch.save file that cannot be read (a whole one reads)")
def test_legacy_checkpoint_is_named(tmp_path):
    enc = build_encoder("small_cnn", seed=0)
    torch.save({"encoder": "small_cnn", "encoder_kwargs": {}, "state_dict": enc.state_dict()}, tmp_path / "old.pt",
               _use_new_zipfile_serialization=False)
    assert C.read_checkpoint(tmp_path / "old.pt")["encoder"] == "small_cnn"
    data = (tmp_path / "old.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match="cut.pt: it is a torch.save file of the legacy \\(non-zip\\) format"):
        C.read_checkpoint(tmp_path / "cut.pt")


@fault("embed", "`doppelnb_embed` on a folder with an MP3 file, a dangling and a self-referencing symbolic link",
       "the MP3 is embedded (libsndfile reads it); each broken link is an error row of `index.csv`, counted in "
       "the summary, none skipped silently")
def test_embed_lists_every_audio_entry(tmp_path):
    from doppelnb.embed import embed_folder
    from doppelnb.fixtures import realish_clip
    audio = tmp_path / "audio"; audio.mkdir()
    sf.write(audio / "ok.wav", realish_clip(1.0, 16000, channels=1), 16000)
    sf.write(audio / "song.mp3", realish_clip(1.0, 44100, channels=1), 44100, format="MP3")
    (audio / "dangling.wav").symlink_to(tmp_path / "gone.wav")
    (audio / "loop.flac").symlink_to(audio / "loop.flac")
    said = []
    index = embed_folder(audio, tmp_path / "out", progress=False, log=said.append)
    assert list(index.file) == ["dangling.wav", "loop.flac", "ok.wav", "song.mp3"]
    assert list(index.status) == ["error", "error", "ok", "ok"]
    assert all("symbolic link" in e for e in index.error[:2]), list(index.error)
    assert "2 of 4 files embedded" in said[0] and "2 failed" in said[0], said


@fault("embed", "the disk fills while `doppelnb_embed` writes an embedding",
       "exit status 2, one line: which file could not be written and that the disk is full (not a bare `[Errno 28]`)")
def test_embed_full_disk_is_named(tmp_path, capsys, monkeypatch):
    import errno
    from doppelnb import embed as M
    from doppelnb.fixtures import realish_clip
    (tmp_path / "audio").mkdir()
    sf.write(tmp_path / "audio" / "a.wav", realish_clip(1.0, 16000, channels=1), 16000)
    def full(f, *a, **k): raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(M.np, "save", full)
    with pytest.raises(SystemExit) as e:
        M.embed_cli([str(tmp_path / "audio"), str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1, err
    assert err == f"doppelnb_embed: error: cannot write {tmp_path / 'out' / 'embeddings' / 'a.wav.npy'}: the disk is full"


@fault("checkpoint", "`doppelnb_pretrain` under a file size limit (`ulimit -f`) too small for its checkpoint",
       "exit status 2, one line naming the file size limit (not only a full disk); no `last.pt` or temporary file")
def test_file_size_limit_is_named(tmp_path):
    out = tmp_path / "run"
    code = ("import resource; resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))\n"
            "from doppelnb.pretrain import pretrain_cli; pretrain_cli()")
    r = subprocess.run([sys.executable, "-c", code, *TINY, "--steps", "1", "--out", str(out)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "file size limit of this process (20000 bytes, ulimit -f)" in r.stderr, r.stderr
    assert not (out / "last.pt").exists() and not list(out.glob(".*.tmp"))


@fault("checkpoint", "an encoder whose output is not finite", "`embed_logmels` raises, naming the encoder")
def test_nonfinite_embedding_is_named():
    enc = build_encoder("small_cnn", seed=0)
    with torch.no_grad():
        next(enc.parameters()).fill_(float("inf"))
    with pytest.raises(ValueError, match="my encoder.*(NaN|non-finite)"):
        E.embed_logmels(enc, [torch.randn(100, 64)], name="my encoder")


@fault("checkpoint", "a 1 KB checkpoint declaring `channels=[8192, 8192]`",
       "refused as a shape mismatch before any full-size model is built")
def test_oversized_architecture_is_not_built(tmp_path, monkeypatch):
    small = build_encoder("small_cnn", seed=0)
    path = tmp_path / "huge.pt"
    sd = {k: v[:1].clone() if v.ndim else v for k, v in small.state_dict().items()}
    torch.save({"encoder": "small_cnn", "encoder_kwargs": {"channels": [8192, 8192]}, "state_dict": sd}, path)
    built = []
    real = C.build_encoder
    def spy(*a, **k):
        m = real(*a, **k)
        built.append(next(m.parameters()).device.type)
        return m
    monkeypatch.setattr(C, "build_encoder", spy)
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="huge.pt.*does not match"):
        C.load_checkpoint(path)
    assert all(d == "meta" for d in built), built
    assert time.perf_counter() - t0 < 20


# ---------------------------------------------------------------- task folders

@pytest.mark.parametrize("content, where", [
    (b"", "empty"),
    (b"file,label,group\naudio/a.wav,x,g\n\x00\x01\x02\xff\xfe binary", "line 3"),
    (b"file,label,group\naudio/a.wav,x,g\naudio/b.wav,y,g,extra\n", "line 3"),
    (b"file,label,group\naudio/a.wav,x\n", "line 2"),
])
@fault("task folder", "a `metadata.csv` that is empty, binary or ragged", "`ValueError` naming the file and the line")
def test_corrupt_metadata_is_named(tmp_path, content, where):
    (tmp_path / "metadata.csv").write_bytes(content)
    with pytest.raises(ValueError, match=f"metadata.csv.*{where}") as e:
        T.load_task(tmp_path)
    assert len(str(e.value).splitlines()) == 1


@fault("task folder", "an already-built task whose `metadata.csv` is corrupt",
       "reported as corrupt (not 'already built'), left as it is; `--overwrite` rebuilds it")
def test_corrupt_built_task_is_reported_and_rebuilt(data, tmp_path, capsys):
    toy = copy_task(data, tmp_path)
    (toy / "metadata.csv").write_bytes(b"\x00\x00garbage")
    with pytest.raises(ValueError, match="corrupt.*metadata.csv.*overwrite"):
        make_fixture_task(tmp_path, name="toy", overwrite=False)
    assert "already built" not in capsys.readouterr().out
    assert (toy / "metadata.csv").read_bytes() == b"\x00\x00garbage"
    make_fixture_task(tmp_path, name="toy", overwrite=True)
    assert len(T.load_task(toy)) == 96


@fault("task folder", "`doppelnb_build_data --root FILE` (a file, not a folder)", "exit status 2, one line naming the path")
def test_build_data_root_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"; f.write_text("x")
    assert B.build_cli(["--tasks", "notes", "--root", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(f) in err and len(err.splitlines()) == 1, err
    assert f.read_text() == "x"


# ---------------------------------------------------------------- audio files

@fault("audio file", "a WAV cut short (1,000 of 32,044 bytes)",
       "`AudioFileError` naming the file and both lengths (header and file)")
def test_truncated_wav(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(str(path), np.zeros(16000, np.float32), 16000, subtype="PCM_16")
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(AudioFileError, match="cut.wav.*16000.*478"):
        load_audio(path)


# ---------------------------------------------------------------- doppelnb_pairs

def pair_digest(folder):
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())}


@fault("doppelnb_pairs", "`--n 4 --seed 1`, then `--n 2 --seed 2 --overwrite`",
       "the folder holds the new set only: 4 WAVs and a `params.csv` that lists exactly them")
def test_pairs_overwrite_replaces_the_whole_set(tmp_path):
    out = tmp_path / "pairs"
    PAIRS.write_pairs(out, 4, seed=1, duration=0.25)
    PAIRS.write_pairs(out, 2, seed=2, overwrite=True, duration=0.25)
    table = pd.read_csv(out / "params.csv")
    assert sorted(p.name for p in out.glob("*.wav")) == sorted(table.file) and len(table) == 4
    assert (table.seed == 2).all()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs"]  # no temporary or old folder left


@fault("doppelnb_pairs", "a run killed during `--overwrite` (while writing WAVs, or between the two renames)",
       "the old set stays whole (WAVs and `params.csv` together); a later run cleans up and restores it")
def test_pairs_killed_overwrite_keeps_the_old_set(tmp_path, monkeypatch):
    import soundfile
    out = tmp_path / "pairs"
    PAIRS.write_pairs(out, 3, seed=1, duration=0.25)
    before = pair_digest(out)
    real, calls = soundfile.write, []
    def dying(*a, **k):
        calls.append(1)
        if len(calls) == 3: raise KeyboardInterrupt  # killed while writing the third WAV
        return real(*a, **k)
    monkeypatch.setattr(soundfile, "write", dying)
    with pytest.raises(KeyboardInterrupt):
        PAIRS.write_pairs(out, 2, seed=2, overwrite=True, duration=0.25)
    monkeypatch.setattr(soundfile, "write", real)
    assert pair_digest(out) == before
    os.replace(out, tmp_path / ".pairs.old-99")                   # as if killed between the two renames
    (tmp_path / ".pairs.tmp-xyz").mkdir()                         # and the new set's temporary folder left behind
    with pytest.raises(FileExistsError, match="--overwrite"):
        PAIRS.write_pairs(out, 2, seed=2, duration=0.25)
    assert pair_digest(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["pairs"]


@fault("doppelnb_pairs", "`--overwrite` on a folder that also holds other files",
       "refused, naming one of them: the swap would discard them; nothing changes")
def test_pairs_refuse_a_folder_with_other_files(tmp_path):
    PAIRS.write_pairs(tmp_path / "p", 1, seed=1, duration=0.25)
    (tmp_path / "p" / "notes.txt").write_text("mine")
    before = pair_digest(tmp_path / "p")
    with pytest.raises(ValueError, match="not pairs.*notes.txt"):
        PAIRS.write_pairs(tmp_path / "p", 1, seed=2, overwrite=True, duration=0.25)
    assert pair_digest(tmp_path / "p") == before


@fault("run lock", "two `doppelnb_pairs` write the same `--out`",
       "the second exits 2 naming the folder and the first run's pid; the first's files untouched")
def test_pairs_respect_lock(tmp_path, capsys):
    other = hold_lock(tmp_path, name=".pairs.lock")
    try:
        with pytest.raises(SystemExit) as e:
            PAIRS.pairs_cli(["--out", str(tmp_path / "pairs"), "--n", "1", "--duration", "0.25"])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert f"pid {other.pid}" in err and "pairs" in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "pairs").exists()
    finally:
        other.kill(); other.wait()


# ---------------------------------------------------------------- synth arguments

@pytest.mark.parametrize("text, where", [
    ('[{"name": ["adsr_1", "attack", "curve"],\n "value": 0.5,}]', "mine.json, line 2"),
    ('{"adsr_1": 1}', "mine.json must hold a list"),
    ('[{"name": "adsr_1.attack.curve", "value": 1}]', "mine.json, entry 0"),
    ('[{"name": ["nope", "attack", "curve"], "value": 1}]', "mine.json does not fit Voice"),
])
@fault("synth", "a nebula JSON file that is malformed or wrongly structured",
       "`ValueError` naming the file (and the line or entry), not a TypeError from inside torchsynth")
def test_bad_nebula_file_is_named(tmp_path, text, where):
    (tmp_path / "mine.json").write_text(text)
    with pytest.raises(ValueError, match=f"nebula: .*{where}"):
        S.build_synth(nebula=str(tmp_path / "mine.json"), batch_size=2)


@pytest.mark.parametrize("kwargs, culprit", [(dict(seed=-1), "seed"), (dict(max_rounds=0), "max_rounds")])
@fault("synth", "`DoppelgangerSynth(seed=-1)` or `max_rounds=0`", "`ValueError` naming the argument, at construction")
def test_synth_arguments_are_named(kwargs, culprit):
    with pytest.raises(ValueError, match=f"^{culprit}: "):
        S.DoppelgangerSynth(batch_size=2, duration=0.25, **kwargs)


@fault("synth", "`doppelnb_pairs --duration 1e9` (a sound longer than memory holds)",
       "exit status 2, one line naming `duration` and the longest a sound may be; nothing written")
def test_pairs_duration_is_bounded(tmp_path):
    from conftest import run_cli
    r = run_cli("doppelnb_pairs", "--out", tmp_path / "pairs", "--duration", "1e9", "--n", "1")
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "duration: 1e+09 s is longer than the 60 s" in r.stderr, r.stderr
    assert not (tmp_path / "pairs").exists()


@pytest.mark.parametrize("params, match", [(torch.full((2, 3), float("nan")), "NaN or infinite"),
                                           (torch.ones(2, 3, dtype=torch.long), "floating-point")])
@fault("synth", "`perturb` of NaN or integer parameters", "`ValueError` naming `params` and the problem")
def test_perturb_checks_params(params, match):
    with pytest.raises(ValueError, match=f"params: .*{match}"):
        S.perturb(params, 0.1)


# ---------------------------------------------------------------- doppelnb_pretrain: run folder and checkpoints

TINY = ["--preset", "cpu", "--batch-size", "8", "--duration", "0.5", "--patch-frames", "48", "--encoder-kwargs", '{"channels": [8, 16]}',
        "--log-every", "1", "--no-progress", "--no-tensorboard", "--workers", "0"]


def pretrain_error(capsys, *args) -> str:
    "Run doppelnb_pretrain in-process, expect exit status 2, return its one-line error."
    from doppelnb.pretrain import pretrain_cli
    with pytest.raises(SystemExit) as e:
        pretrain_cli([*map(str, args)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    "A finished 2-step run that kept a checkpoint at every step: last.pt, step_0000001.pt, step_0000002.pt."
    from doppelnb.pretrain import pretrain_cli
    out = tmp_path_factory.mktemp("pretrain") / "run"
    pretrain_cli([*TINY, "--steps", "2", "--checkpoint-every", "1", "--keep-checkpoints", "--out", str(out)])
    return out


def copy_run(tiny_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out)
    return out


@fault("run lock", "`doppelnb_pretrain --resume --out X` while another run trains in X",
       "exit status 2 naming the folder and the first run's pid, before the folder is read or written")
def test_pretrain_respects_lock(tiny_run, tmp_path, capsys):
    out = copy_run(tiny_run, tmp_path)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    other = hold_lock(out)
    try:
        err = pretrain_error(capsys, *TINY, "--steps", "3", "--resume", "--out", out)
        assert f"pid {other.pid}" in err and str(out) in err, err
    finally:
        other.kill(); other.wait()
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != ".lock"} == before


class _RunsCode:
    def __reduce__(self): return (os.system, ("touch pwned",))


@pytest.mark.parametrize("damage, reason", [
    ("empty", "empty \\(0 bytes\\)"), ("random", "not a checkpoint written by torch.save"),
    ("cut", "damaged \\(a cut-off"), ("pickle", "Python objects other than tensors.*posix.system.*could run code")])
@fault("checkpoint", "a damaged `last.pt`: 0 bytes, random bytes, cut short, or a pickle that would run code",
       "one line saying what is wrong (never torch's advice to load it with `weights_only=False`); nothing runs")
def test_damaged_checkpoint_is_described(tiny_run, tmp_path, monkeypatch, damage, reason):
    from doppelnb.checkpoint import read_checkpoint
    path = tmp_path / "last.pt"
    good = (tiny_run / "last.pt").read_bytes()
    if damage == "pickle": torch.save({"format": "doppelnb.pretrain/1", "x": _RunsCode()}, path)
    else: path.write_bytes({"empty": b"", "random": np.random.default_rng(0).bytes(5000), "cut": good[:len(good) // 2]}[damage])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=f"last.pt: it .*{reason}") as e:
        read_checkpoint(path)
    assert "weights_only" not in str(e.value) and len(str(e.value).splitlines()) == 1, str(e.value)
    assert not (tmp_path / "pwned").exists()


def resume_to_the_end(out, whole: dict, capsys=None) -> str:
    """Resume the run in `out` with `--resume` to its last step and check that it ends exactly as `whole` (the
    last.pt of the run nothing damaged or interrupted) did; returns what the resume printed."""
    from doppelnb.pretrain import pretrain_cli
    pretrain_cli(["--resume", "--out", str(out)])
    said = capsys.readouterr().out if capsys is not None else ""
    again = torch.load(out / "last.pt", weights_only=True)
    assert again["step"] == whole["step"] and again["loss"] == whole["loss"]
    for k, v in whole["state_dict"].items(): torch.testing.assert_close(again["state_dict"][k], v, rtol=0, atol=0)
    return said


@fault("checkpoint", "`--resume` with a damaged `last.pt` (and a damaged newest `step_*.pt`)",
       "resumes from the newest readable kept `step_*.pt`, saying which, and ends as the undamaged run did; without "
       "`--resume` the error names that file")
def test_resume_falls_back_to_kept_checkpoint(tiny_run, tmp_path, capsys):
    out = copy_run(tiny_run, tmp_path)
    whole = torch.load(tiny_run / "last.pt", weights_only=True)
    (out / "last.pt").write_bytes(b""); (out / "step_0000002.pt").write_bytes(b"garbage")
    err = pretrain_error(capsys, *TINY, "--steps", "2", "--out", out)
    assert "empty" in err and "--resume" in err and "step_0000001.pt (step 1)" in err, err
    said = resume_to_the_end(out, whole, capsys)
    assert whole["step"] == 2 and "resuming from" in said and "step_0000001.pt (step 1)" in said, said
    assert [int(l.split(",")[0]) for l in (out / "metrics.csv").read_text().splitlines()[1:]] == [1, 2]


def finite_weights(path) -> bool:
    ckpt = torch.load(path, weights_only=True)
    return all(bool(torch.isfinite(v).all()) for v in ckpt["state_dict"].values() if v.is_floating_point())


@fault("checkpoint", "a run diverges (`--lr 1e12`, a checkpoint every step) and its weights turn NaN or inf",
       "exit status 2, one line naming the step and where the bad state was written aside (`diverged_step_*.pt`); "
       "`last.pt` keeps the last healthy step; `--resume` then names the bad file it skips")
def test_diverging_run_keeps_the_last_good_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    err = pretrain_error(capsys, *TINY, "--steps", "30", "--checkpoint-every", "1", "--keep-checkpoints",
                         "--lr", "1e12", "--out", out)
    aside = sorted(out.glob("diverged_step_*.pt"))
    assert "diverged" in err and len(aside) == 1 and aside[0].name in err, err
    bad_step = int(aside[0].stem.split("_")[-1])
    assert not finite_weights(aside[0])
    # nothing non-finite replaced a checkpoint: last.pt (if a step finished healthy) and every kept step are finite
    kept = sorted(out.glob("step_*.pt"))
    assert all(finite_weights(p) for p in kept) and [int(p.stem.split("_")[1]) for p in kept] == list(range(1, bad_step))
    if bad_step > 1:
        assert finite_weights(out / "last.pt") and torch.load(out / "last.pt", weights_only=True)["step"] == bad_step - 1
    else: assert not (out / "last.pt").exists()


@fault("checkpoint", "`--resume` where `last.pt` holds NaN weights beside healthy kept `step_*.pt`",
       "resumes from the newest healthy `step_*.pt`, naming the bad `last.pt` and the file it resumes from, and ends "
       "as the undamaged run did; without `--resume` the error names the bad file")
def test_resume_falls_back_from_nonfinite_checkpoint(tiny_run, tmp_path, capsys):
    out = copy_run(tiny_run, tmp_path)
    whole = torch.load(tiny_run / "last.pt", weights_only=True)
    for name in ("last.pt", "step_0000002.pt"):      # the newest kept checkpoint went bad too
        bad = torch.load(out / name, weights_only=True)
        next(iter(bad["state_dict"].values())).fill_(float("nan"))
        C.write_checkpoint(out / name, bad)          # as a diverged run writes it: its digest matches
    err = pretrain_error(capsys, *TINY, "--steps", "2", "--out", out)
    assert "last.pt" in err and "non-finite" in err and "step_0000001.pt (step 1)" in err, err
    said = resume_to_the_end(out, whole, capsys)
    assert "last.pt is unusable" in said and "non-finite" in said and "step_0000001.pt (step 1)" in said, said


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    "The last.pt of a 12-step run (log every step, a checkpoint every 5) that nothing interrupted."
    from doppelnb.pretrain import pretrain_cli
    out = tmp_path_factory.mktemp("whole") / "run"
    pretrain_cli([*TINY, "--steps", "12", "--checkpoint-every", "5", "--out", str(out)])
    return torch.load(out / "last.pt", weights_only=True)


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
@fault("pretrain", "SIGINT (Ctrl-C) or SIGTERM (a scheduler) while `doppelnb_pretrain` trains, between checkpoints",
       "finishes the step, writes `last.pt` there, releases the lock, exits 130 / 143 with one line naming the "
       "step and how to resume; `--resume` ends bit-exactly as the run nothing interrupted")
def test_signal_checkpoints_and_resumes(uninterrupted, tmp_path, signame):
    import signal
    from conftest import console_script
    out = tmp_path / "run"
    args = [*TINY, "--steps", "12", "--checkpoint-every", "5", "--out", str(out)]
    proc = subprocess.Popen([console_script("doppelnb_pretrain"), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:      # wait for step 6: past the checkpoint at 5
        rows = (out / "metrics.csv").read_text().splitlines()[1:] if (out / "metrics.csv").exists() else []
        if len(rows) >= 6: break
        time.sleep(0.05)
    proc.send_signal(getattr(signal, signame))
    stdout, stderr = proc.communicate(timeout=120)
    signum = int(getattr(signal, signame))
    assert proc.returncode == 128 + signum, (proc.returncode, stderr)
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    step = torch.load(out / "last.pt", weights_only=True)["step"]
    assert 6 <= step < 12 and f"step {step}" in stderr and "--resume" in stderr and signame in stderr, stderr
    assert not lock_path(out).exists()
    assert uninterrupted["step"] == 12
    resume_to_the_end(out, uninterrupted)


@pytest.mark.parametrize("args, culprit", [(["--nebula", "nope"], "nebula: 'nope'"),
                                           (["--keep-fixed", "no_such_param"], "keep_fixed: 'no_such_param'"),
                                           (["--tasks", "notse", "--no-build"], "tasks: ['notse']"),
                                           (["--device", "cuda:99"], "device: 'cuda:99'")])
@fault("main", "`doppelnb_main` with an unknown `--nebula`, `--keep-fixed` name, (with `--no-build`) a misspelled task, "
       "or a `--device` this machine does not have",
       "exit status 2, one line naming the setting, before any task is built or any file is written under `--out`")
def test_main_checks_settings_first(tmp_path, args, culprit):
    from conftest import run_cli
    r = run_cli("doppelnb_main", "--out", tmp_path / "out", "--data", tmp_path / "data", *args)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert culprit in r.stderr, r.stderr
    assert not (tmp_path / "data").exists() and not list((tmp_path / "out").glob("*"))


@pytest.mark.parametrize("args, culprit", [(["--base-steps", "0"], "--base-steps: a positive number"),
                                           (["--only", "bogus"], "--only: not entries of the search plan: ['bogus']"),
                                           (["--plan", "zoo", "--only", "bogus"], "not entries of the zoo plan"),
                                           (["--data", "no-such-folder"], "data: none of")])
@fault("speedrun", "`doppelnb_speedrun --base-steps 0`, `--only` an unknown entry, `--data` with no built task",
       "exit status 2, one line naming the argument, before any run starts or any file is written")
def test_speedrun_checks_arguments_first(tmp_path, args, culprit):
    from conftest import run_cli
    r = run_cli("doppelnb_speedrun", "--root", tmp_path / "runs", *args)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert culprit in r.stderr, r.stderr
    assert not (tmp_path / "runs").exists()


@fault("speedrun", "`doppelnb_speedrun --plan knee` where the real-audio corpus is not built",
       "exit status 2, one line naming `audio_dir` and `doppelnb_build_corpus`, before any run starts")
def test_speedrun_knee_needs_the_corpus(tmp_path):
    from conftest import run_cli
    r = run_cli("doppelnb_speedrun", "--plan", "knee", cwd=tmp_path)     # no data/corpus under tmp_path
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "audio_dir: data/corpus not built; run doppelnb_build_corpus" in r.stderr, r.stderr
    assert not (tmp_path / "results").exists()


@fault("speedrun", "`doppelnb_speedrun --root` a file", "exit status 2, one line naming `--root` (not `[Errno 20]`)")
def test_speedrun_root_must_be_a_folder(tmp_path):
    from conftest import run_cli
    (tmp_path / "runs").write_text("not a folder")
    r = run_cli("doppelnb_speedrun", "--root", tmp_path / "runs", "--data", tmp_path / "data")
    assert r.returncode == 2 and r.stderr.strip() == f"doppelnb_speedrun: error: --root: {tmp_path / 'runs'} is not a folder"


@fault("pretrain", "`doppelnb_pretrain --resume` on a folder that is missing or holds no run",
       "exit status 2, one line: there is no run to resume there (nothing is trained, nothing written)")
def test_resume_without_a_run_is_refused(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for out in (tmp_path / "missing", tmp_path / "empty"):
        err = pretrain_error(capsys, "--resume", "--out", out)
        assert "no run to resume" in err and str(out) in err, err
    assert not (tmp_path / "missing").exists() and not list((tmp_path / "empty").iterdir())


@fault("checkpoint", "the disk fills while `last.pt` is written (torch's `inline_container.cc` RuntimeError)",
       "exit status 2, one line: the disk is full, and `last.pt` (its step named) remains as it was; no temporary file")
def test_disk_full_is_one_line(tiny_run, tmp_path, capsys, monkeypatch):
    out = copy_run(tiny_run, tmp_path)
    before = (out / "last.pt").read_bytes()
    real_save = torch.save
    def full(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        with open(f, "r+b") as fh: fh.truncate(64)
        raise RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing file data/3: "
                           "file write failed")
    monkeypatch.setattr(torch, "save", full)
    err = pretrain_error(capsys, "--resume", "--steps", "3", "--out", out)
    assert "disk is full" in err and "last.pt (step 2) is intact" in err and "Traceback" not in err, err
    assert (out / "last.pt").read_bytes() == before
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("optimizer", ["cpu", "adamw"])
@fault("checkpoint", "`--resume` with a larger `--steps` (step or cosine schedule already under way)",
       "refused before training, saying the learning rate would jump and how to continue; a constant rate extends")
def test_resume_with_more_steps_is_refused(tmp_path, capsys, optimizer):
    from doppelnb.config import lr_factor
    from doppelnb.pretrain import pretrain_cli
    out = tmp_path / "run"
    pretrain_cli([*TINY, "--steps", "4", "--optimizer", optimizer, "--out", str(out)])
    before = (out / "last.pt").read_bytes()
    err = pretrain_error(capsys, "--resume", "--steps", "8", "--out", out)
    assert "would jump" in err and "--steps 4" in err, err
    assert (out / "last.pt").read_bytes() == before
    if optimizer == "cpu":   # a constant rate (Fonseca's preset: no milestones) extends as if planned longer
        out2 = tmp_path / "constant"
        pretrain_cli([*TINY, "--steps", "2", "--optimizer", "fonseca", "--out", str(out2)])
        pretrain_cli(["--resume", "--steps", "3", "--out", str(out2)])
        assert torch.load(out2 / "last.pt", weights_only=True)["step"] == 3


@fault("run folder", "`--resume` after `config.json` was deleted",
       "the config stored in `last.pt` is used (batch 8 stays 8), and the run says so")
def test_resume_without_config_json_uses_checkpoint(tiny_run, tmp_path, capsys):
    from doppelnb.pretrain import pretrain_cli
    out = copy_run(tiny_run, tmp_path)
    (out / "config.json").unlink()
    pretrain_cli(["--resume", "--steps", "3", "--out", str(out)])
    assert "using the config stored in" in capsys.readouterr().out
    ckpt = torch.load(out / "last.pt", weights_only=True)
    assert ckpt["step"] == 3 and ckpt["config"]["batch_size"] == 8
    assert json.loads((out / "config.json").read_text())["batch_size"] == 8


@pytest.mark.parametrize("name, content, where", [
    ("config.json", b"", "line 1"), ("config.json", b'{"batch_size": 8,\n "steps": 2,\n}', "line 3"),
    ("config.json", b"\x00\x01\xff\xfe", "not UTF-8|line 1"), ("config.json", b"[1, 2]", "JSON object"),
    ("metrics.csv", b"", "empty"), ("metrics.csv", None, "line 2: NUL"), ("metrics.csv", None, "line 3: 9 fields"),
])
@fault("run folder", "`--resume` with a `config.json` or `metrics.csv` that is empty, binary, malformed or ragged",
       "exit status 2, one line naming the file and the line; `last.pt` untouched")
def test_corrupt_run_files_are_named(tiny_run, tmp_path, capsys, name, content, where):
    out = copy_run(tiny_run, tmp_path)
    if content is None:
        lines = (out / name).read_bytes().split(b"\n")
        if "NUL" in where: lines[1] = b"\x00" + lines[1]
        else: lines[2] = lines[2].rstrip(b"\r") + b",extra\r"
        content = b"\n".join(lines)
    (out / name).write_bytes(content)
    before = (out / "last.pt").read_bytes()
    err = pretrain_error(capsys, "--resume", "--steps", "3", "--out", out)
    assert re.search(f"{name}.*({where})", err), err
    assert (out / "last.pt").read_bytes() == before


def fault_table() -> str:
    "The fault-injection table (markdown), one row per registered case."
    rows = ["| area | fault | behaviour | test |", "|---|---|---|---|"]
    rows += [f"| {a} | {c} | {b} | `tests/test_faults.py::{t}` |" for a, c, b, t in FAULT_CASES]
    return "\n".join(rows) + "\n"


def test_fault_table_is_current():
    "nbs/90_faults.ipynb shows the table of this module's cases (re-run the notebook after adding a case)."
    from pathlib import Path
    nb = json.loads((Path(__file__).resolve().parents[1] / "nbs" / "90_faults.ipynb").read_text())
    shown = ["".join(o["data"]["text/markdown"]) for c in nb["cells"] for o in c.get("outputs", [])
             if "text/markdown" in o.get("data", {})]
    assert shown == [fault_table()], "nbs/90_faults.ipynb shows an old fault table: re-run the notebook and commit it"


if __name__ == "__main__":
    print(fault_table(), end="")


@fault("pairs", "`doppelnb_pairs` runs out of disk (here: a file size limit) while it writes the pairs",
       "exit status 2, one line naming the output folder and the reason (not libsndfile's 'System error.'); "
       "no partial pairs and no temporary folder left")
def test_pairs_write_failure_is_named(tmp_path):
    out = tmp_path / "pairs"
    code = ("import resource; resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000))\n"
            "from doppelnb.pairs import pairs_cli; pairs_cli()")
    r = subprocess.run([sys.executable, "-c", code, "--out", str(out), "--n", "2"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.strip() == (f"doppelnb_pairs: error: cannot write the pairs into {out}: the file size limit of "
                                "this process is reached (ulimit -f)"), r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [], list(tmp_path.iterdir())


@fault("pairs", "`doppelnb_pairs --out` a folder that holds only the stale `.lock` of a killed run",
       "the pairs are written (the stale lock is not kept); a live lock there is still refused, naming `.lock`")
def test_pairs_over_a_stale_lock(tmp_path):
    from doppelnb.pairs import write_pairs
    out = tmp_path / "pairs"; out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"]); dead.wait()
    (out / ".lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(), "what": "killed"}))
    write_pairs(out, 1, duration=0.1)
    assert sorted(p.name for p in out.iterdir()) == ["pair_0000_a.wav", "pair_0000_b.wav", "params.csv"]
    other = tmp_path / "busy"; other.mkdir()
    owner = hold_lock(other)
    try:
        with pytest.raises(ValueError, match=r"holds 1 file\(s\) that are not pairs \(e\.g\. \.lock\)"):
            write_pairs(other, 1, duration=0.1)
    finally:
        owner.kill(); owner.wait()


@pytest.mark.parametrize("command, args, culprit", [
    ("doppelnb_bench", ["synth", "--batch-sizes", "128", "0"], "--batch-sizes: at least 2, got 0"),
    ("doppelnb_bench", ["synth", "--device", "cuda:99"], "device: 'cuda:99'"),
    ("doppelnb_bench", ["views", "--frames", "0"], "--frames: at least 1, got 0"),
    ("doppelnb_bench", ["model", "--device", "cuda:99"], "device: 'cuda:99'"),
    ("doppelnb_bench", ["model", "--json", "no/such/folder/r.json"], "--json: no/such/folder/r.json"),
    ("doppelnb_bench", ["eval", "--clips", "-5"], "--clips: at least 1, got -5")])
@fault("bench", "a benchmark command with a count below its minimum (`--clips -5`, `--frames 0`, a batch size 0), a "
       "`--device` this machine lacks, or `--json` in a missing folder",
       "exit status 2, one line naming the flag, before anything is timed (was: a torch traceback, or timing with "
       "NaN results and exit 0)")
def test_bench_commands_check_arguments(command, args, culprit):
    from conftest import run_cli
    r = run_cli(command, *args)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert culprit in r.stderr and not r.stdout.strip(), (r.stdout, r.stderr)
