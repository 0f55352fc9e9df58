"doppelnb_embed: a folder with a corrupt file, a stereo 44.1 kHz file and a 0.2 s file; resume; bad arguments; the installed wheel."
import os
import subprocess
import sys
import zipfile

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from doppelnb.fixtures import realish_clip

from conftest import ROOT, run_cli


def make_folder(root):
    (root / "sub").mkdir(parents=True)
    sf.write(root / "stereo.wav", realish_clip(2.0, 44100, channels=2), 44100)
    sf.write(root / "sub" / "short.flac", realish_clip(0.2, 16000, channels=1), 16000)
    (root / "sub" / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(40)))
    (root / "notes.txt").write_text("not audio")
    return root


def test_folder_with_a_corrupt_file(tmp_path):
    audio, out = make_folder(tmp_path / "audio"), tmp_path / "out"
    r = run_cli("doppelnb_embed", audio, out, "--quiet")
    assert r.returncode == 1, r.stderr                      # some file failed: exit status 1, the rest embedded
    index = pd.read_csv(out / "index.csv")
    assert list(index.file) == ["stereo.wav", "sub/corrupt.wav", "sub/short.flac"]
    assert list(index.status) == ["ok", "error", "ok"]
    assert "corrupt.wav" in r.stdout and "1 failed" in r.stdout and "2 of 3 files embedded" in r.stdout
    assert index.error[1] and index.duration[0] == pytest.approx(2.0, abs=1e-3) and index.duration[2] == pytest.approx(0.2, abs=1e-3)
    scene = np.load(out / "scene.npy")
    assert scene.shape == (2, 512) and np.isfinite(scene).all()
    np.testing.assert_allclose(scene[1], np.load(out / index.embedding[2])[0])
    assert (out / "scene_files.txt").read_text().splitlines() == ["stereo.wav", "sub/short.flac"]


def test_resume_skips_finished_files(tmp_path):
    from doppelnb.embed import embed_folder
    audio, out = make_folder(tmp_path / "audio"), tmp_path / "out"
    first = embed_folder(audio, out, progress=False, log=None)
    done = out / first.embedding[0]
    stamp = done.stat().st_mtime_ns
    (out / first.embedding[2]).unlink()                     # as if killed before this file was written
    (out / "embeddings" / ".leftover.npy.tmp").write_bytes(b"half")
    lines = []
    again = embed_folder(audio, out, progress=False, log=lines.append)
    assert done.stat().st_mtime_ns == stamp                 # not embedded again
    assert list(again.status) == ["ok", "error", "ok"] and "2 done before" not in lines[0] and "1 done before" in lines[0]
    np.testing.assert_allclose(np.load(out / first.embedding[2]), np.load(out / again.embedding[2]))
    assert not (out / ".lock").exists()                     # the run lock is released at the end


def test_timestamp_kind(tmp_path):
    audio, out = make_folder(tmp_path / "audio"), tmp_path / "out"
    run_cli("doppelnb_embed", audio, out, "--kind", "timestamp", "--quiet")
    emb, ts = np.load(out / "embeddings" / "stereo.wav.npy"), np.load(out / "embeddings" / "stereo.wav.timestamps.npy")
    assert emb.shape == (40, 512) and ts.shape == (40,) and ts[-1] <= 2000.0 and np.allclose(np.diff(ts), 50.0)
    assert not (out / "scene.npy").exists()


@pytest.mark.parametrize("args, message", [
    (["{tmp}/missing", "{tmp}/out"], "not a folder"),
    (["{tmp}/empty", "{tmp}/out"], "no audio files"),
    (["{tmp}/audio", "{tmp}/audio/stereo.wav"], "not a folder"),
    (["{tmp}/audio", "{tmp}/out", "--checkpoint", "{tmp}/nope.pt"], "nope.pt"),
    (["{tmp}/audio", "{tmp}/out", "--batch-files", "0"], "batch_files"),
])
def test_bad_arguments_one_line(tmp_path, args, message):
    make_folder(tmp_path / "audio"); (tmp_path / "empty").mkdir()
    r = run_cli("doppelnb_embed", *[a.format(tmp=tmp_path) for a in args])
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2


def test_other_encoder_in_same_out_is_refused(tmp_path):
    audio, out = make_folder(tmp_path / "audio"), tmp_path / "out"
    run_cli("doppelnb_embed", audio, out, "--quiet")
    before = (out / "index.csv").read_bytes()
    r = run_cli("doppelnb_embed", audio, out, "--kind", "timestamp")
    assert r.returncode == 2 and "another run" in r.stderr
    assert (out / "index.csv").read_bytes() == before         # nothing written is lost


def test_installed_wheel_works_outside_the_clone(tmp_path):
    "A wheel carries the weights: load_model(''), embed_file and doppelnb_embed work from an install, not the clone."
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", str(ROOT), "-w", str(wheels)],
                   check=True, cwd=tmp_path, timeout=600, capture_output=True)
    wheel = next(wheels.glob("doppelnb-*.whl"))
    assert "doppelnb/weights/small_cnn_doppelgangers.pt" in zipfile.ZipFile(wheel).namelist()
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, timeout=600, capture_output=True)
    audio = make_folder(tmp_path / "audio")
    code = ("import doppelnb, sys; from pathlib import Path; assert Path(doppelnb.__file__).is_relative_to(sys.argv[1]), doppelnb.__file__\n"
            "from doppelnb.hear import load_model; from doppelnb.main import embed_file\n"
            "m = load_model(''); print(m.scene_embedding_size, tuple(embed_file(sys.argv[2]).shape))\n"
            "from doppelnb.embed import embed_cli; embed_cli([sys.argv[3], sys.argv[4], '--quiet'])")
    env = {**os.environ, "PYTHONPATH": str(target), "MPLBACKEND": "Agg"}
    r = subprocess.run([sys.executable, "-c", code, str(target), str(audio / "stereo.wav"), str(audio), str(tmp_path / "out")],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert r.returncode == 1 and "512 (512,)" in r.stdout, r.stderr  # exit 1: the corrupt file
    assert list(pd.read_csv(tmp_path / "out" / "index.csv").status) == ["ok", "error", "ok"]
    scripts = [line for line in (target.glob("doppelnb-*.dist-info/entry_points.txt").__next__()).read_text().splitlines()]
    assert "doppelnb_embed = doppelnb.embed:embed_cli" in scripts
