"Task folders: builders (doppelnb.build_data), loader checks, group-disjoint splits (doppelnb.tasks)."
import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from doppelnb import build_data as B
from doppelnb import tasks as T
from doppelnb.fixtures import make_fixture_task
from doppelnb.features import AudioFileError


@pytest.fixture(scope="module")
def fixture_dir(tmp_path_factory):
    return make_fixture_task(tmp_path_factory.mktemp("tasks"))


def test_fixture_layout(fixture_dir):
    meta = pd.read_csv(fixture_dir / "metadata.csv")
    assert {"file", "label", "group"} <= set(meta.columns) and len(meta) == 96
    info = sf.info(str(fixture_dir / meta.file[0]))
    assert info.samplerate == 16000 and info.channels == 1
    assert sum(p.stat().st_size for p in fixture_dir.rglob("*.wav")) < 4_000_000


def test_load_task_and_label_column(fixture_dir):
    task = T.load_task(fixture_dir)
    assert len(task) == 96 and task.classes == ["tone0", "tone1", "tone2", "tone3"] and len(set(task.groups)) == 6
    assert task.class_counts().tolist() == [24] * 4
    by_group = T.load_task(fixture_dir, label="group")
    assert len(by_group.classes) == 6
    assert task.audio(0).shape == (16000,)


def test_loader_errors_name_the_problem(fixture_dir, tmp_path):
    with pytest.raises(ValueError, match="metadata.csv not found"):
        T.load_task(tmp_path)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['family'\]"):
        T.load_task(fixture_dir, label="family")
    with pytest.raises(ValueError, match="unknown label"):
        T.load_task(fixture_dir, classes=["tone0"])
    broken = tmp_path / "broken"
    shutil.copytree(fixture_dir, broken)
    (broken / "audio" / "c1_g2_3.wav").unlink()
    with pytest.raises(ValueError, match="c1_g2_3.wav"):
        T.load_task(broken)
    meta = pd.read_csv(broken / "metadata.csv")
    meta = meta[meta.file != "audio/c1_g2_3.wav"]
    meta.to_csv(broken / "metadata.csv", index=False)
    (broken / "audio" / "c0_g0_0.wav").write_bytes(b"RIFF\x00\x00garbage")
    task = T.load_task(broken)
    i = [f.name for f in task.files].index("c0_g0_0.wav")
    with pytest.raises(AudioFileError, match="c0_g0_0.wav"):
        task.audio(i)
    meta.loc[0, "label"] = ""
    meta.to_csv(broken / "metadata.csv", index=False)
    with pytest.raises(ValueError, match="empty 'label'"):
        T.load_task(broken)


def test_group_splits_are_disjoint_and_deterministic(fixture_dir):
    task = T.load_task(fixture_dir)
    for seed in range(4):
        tr, te = T.group_split(task, 0.25, seed)
        assert not set(task.groups[tr]) & set(task.groups[te]) and len(tr) + len(te) == len(task)
        assert set(task.y[te]) <= set(task.y[tr])
        np.testing.assert_array_equal(te, T.group_split(task, 0.25, seed)[1])
    folds = T.group_kfold(task, k=3)
    assert len(folds) == 3
    np.testing.assert_array_equal(np.sort(np.concatenate([te for _, te in folds])), np.arange(len(task)))
    with pytest.raises(AssertionError, match="not group-disjoint"):
        T.assert_group_disjoint(task.groups, [0], [1])


def test_task_folder_is_atomic_and_does_not_clobber(tmp_path):
    with T.task_folder(tmp_path, "t") as f:
        T.write_metadata(f, [dict(file="a.wav", label="x", group="g")], ["file", "label", "group"])
    with T.task_folder(tmp_path, "t") as f:
        assert f is None
    with pytest.raises(RuntimeError):
        with T.task_folder(tmp_path, "u") as f:
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]


def test_builders_name_missing_packages(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no fluidsynth, espeak-ng, flite, festival on PATH
    with pytest.raises(T.MissingDependencyError, match="apt-get install .*fluidsynth"):
        B.build_notes(tmp_path)
    with pytest.raises(T.MissingDependencyError, match="espeak-ng"):
        B.build_keywords(tmp_path, engines=("espeak-ng",))
    monkeypatch.setitem(B.FOLEY_SOURCES, "widelands", (str(tmp_path / "nowhere"), "widelands-data"))
    with pytest.raises(T.MissingDependencyError, match="widelands-data"):
        B.build_foley(tmp_path, packages=("widelands",))
    assert B.build_cli(["--tasks", "notes", "--root", str(tmp_path)]) == 2
    assert not (tmp_path / "notes").exists()


@pytest.mark.skipif(shutil.which("fluidsynth") is None or not B.Path(B.SOUNDFONTS["timgm6mb"][0]).exists(),
                    reason="needs Debian fluidsynth + timgm6mb-soundfont")
def test_build_notes_small(tmp_path):
    path = B.build_notes(tmp_path, soundfonts=["timgm6mb"], programs_per_family=1, pitch_step=12, velocities=[100], duration=1.0, hold=0.5)
    task = T.load_task(path)
    assert len(task.classes) == 11 and set(task.groups) == {"timgm6mb"}
    assert {"pitch", "pitch_class", "family"} <= set(task.metadata.columns)
    assert sf.info(str(task.files[0])).duration == pytest.approx(1.0)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs Debian espeak-ng")
def test_build_keywords_small_is_deterministic(tmp_path):
    kw = dict(engines=("espeak-ng",), words=["yes", "no"], espeak_variants=1, takes=1)
    a = T.load_task(B.build_keywords(tmp_path / "a", **kw))
    b = T.load_task(B.build_keywords(tmp_path / "b", **kw))
    assert len(a) == 2 * len(B.ESPEAK_ACCENTS) and a.classes == ["no", "yes"]
    pd.testing.assert_frame_equal(a.metadata, b.metadata)
    assert all(fa.read_bytes() == fb.read_bytes() for fa, fb in zip(a.files, b.files))
    assert sf.info(str(a.files[0])).duration == pytest.approx(1.0)
