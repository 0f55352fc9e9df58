"""The synth zoo from the command line: a mixture run end to end, the same batches in another process, δ per group
across members, and one-line errors for mixtures that cannot be."""
import hashlib
import json
import subprocess
import sys

import pytest
import torch

from conftest import ROOT
from doppelnb.pretrain import pretrain_cli
from doppelnb.streams import SynthViews
from doppelnb.synth_space import parameter_mask

TINY = ["--batch-size", "16", "--duration", "0.5", "--patch-frames", "48", "--encoder-kwargs", '{"channels": [8, 16]}',
        "--log-every", "1", "--no-progress", "--no-tensorboard", "--workers", "0"]


def test_zoo_run_records_its_members(tmp_path):
    "`--synth zoo-texture --events 2`: a run trains and `mixture.json` names the members, their share and events."
    out = tmp_path / "run"
    pretrain_cli([*TINY, "--synth", "zoo-texture", "--events", "2", "--steps", "2", "--out", str(out)])
    mixture = json.loads((out / "mixture.json").read_text())
    assert [(m["synth"], m["nebula"]) for m in mixture] == [
        ("voice", "default"), ("voice", "drum"), ("additive", "default"), ("fm", "default"),
        ("subtractive", "default"), ("modal", "default"), ("formant", "default")]
    assert sum(m["pairs_per_batch"] for m in mixture) == 16 and {m["events"] for m in mixture} == {2}
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 2


def batch_digest(synth: str, events: int = 1, seed: int = 0) -> str:
    views = SynthViews(16, seed=seed, duration=0.5, patch_frames=48, synth=synth, events=events)
    a, b = views.batch(3)
    return hashlib.sha256(a.numpy().tobytes() + b.numpy().tobytes()).hexdigest()


def test_zoo_batches_are_the_same_in_another_process():
    "A seed fixes every sample of a zoo batch, multi-event clips included: the same digest in a fresh process."
    code = ("import sys; sys.path.insert(0, 'tests'); from test_zoo import batch_digest; "
            "print(batch_digest('zoo', 1), batch_digest('modal+formant', 3))")
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                           timeout=300).stdout.split()
    assert there == [batch_digest("zoo", 1), batch_digest("modal+formant", 3)]
    assert batch_digest("zoo", seed=1) != there[0]


def test_delta_per_group_holds_in_every_member_that_has_the_group():
    "`delta_scale={'pitch': 0}` over the zoo: every member with pitch parameters keeps them; texture has none."
    views = SynthViews(16, seed=0, duration=0.5, synth="zoo", delta=0.2, delta_scale={"pitch": 0.0, "fm/envelope": 2})
    for synth in views.synths:
        batch = synth.batch(0)
        pitch = parameter_mask(synth.names, perturb_only=["pitch"], groups=synth.groups) \
            if "pitch" in synth.groups else torch.zeros(len(synth.names), dtype=torch.bool)
        assert torch.equal(batch.params_a[:, pitch], batch.params[:, pitch]), synth.synth_spec
        assert not torch.equal(batch.params_a[:, ~pitch], batch.params[:, ~pitch]), synth.synth_spec
        envelope = (synth.mask == 2.0)
        assert envelope.any() == (synth.synth_spec == "fm"), synth.synth_spec


@pytest.mark.parametrize("args, culprit", [
    (["--synth", "zoo-organ"], "synth: 'organ' is not a member of 'zoo'"),
    (["--synth", "voice*0"], "must be a positive number"),
    (["--synth", "zoo", "--batch-size", "4"], "8 synths/nebulae cannot share a batch of 4"),
    (["--events", "9"], "events: an integer in [1, 8]"),
    (["--synth", "zoo", "--delta-scale", '{"fm/oscillators": 0}'], "'fm/oscillators' matches no parameter"),
])
def test_bad_mixtures_exit_2_with_one_line(tmp_path, capsys, args, culprit):
    with pytest.raises(SystemExit) as e:
        pretrain_cli([*TINY, "--steps", "1", "--out", str(tmp_path / "run"), *args])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and culprit in err, err
    assert not (tmp_path / "run").exists()


def test_zoo_members_are_known_without_importing_the_zoo():
    "A fresh process that imports only the pair stream renders a zoo member and reads the `zoo` mixture by name."
    code = ("from doppelnb.synth import DoppelgangerSynth\nfrom doppelnb.synth_space import synth_mixture\n"
            "a, b = next(iter(DoppelgangerSynth(synth='modal', batch_size=2, duration=0.25, seed=0)))\n"
            "print(tuple(a.shape), sorted({p.synth for p in synth_mixture('zoo')}))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[0] == "(2, 4000) ['additive', 'fm', 'formant', 'modal', 'subtractive', 'texture', 'voice']"
