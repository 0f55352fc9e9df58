"Bad-input, seeded-reproducibility and edge-case property tests of mix-back, the augmentations, the view pipeline and its benchmark CLI."
import hashlib
import json
import math
import subprocess
import sys

import pytest
import torch

from doppelnb.augment import (Compression, GaussianBlur, GaussianNoise, MixBack, RandomResizedCrop, RandomShift, SpecAugment,
                              ViewPipeline, PRESETS, mix_back, sample_backgrounds)
from doppelnb.bench_loop import bench_cli
from doppelnb.features import DOPPELGANGER, FONSECA, to_linear
from conftest import ROOT

AUGMENTATIONS = [RandomResizedCrop, RandomShift, Compression, SpecAugment, GaussianNoise, GaussianBlur]


def patches(n=8, frames=96, bands=64, seed=0):
    return torch.randn(n, frames, bands, generator=torch.Generator().manual_seed(seed)) * 1.5 - 2.0


def digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.contiguous().numpy().tobytes()).hexdigest()


# ---------------------------------------------------------------- seeded reproducibility
@pytest.mark.parametrize("preset", PRESETS)
def test_pipeline_same_seed_same_views(preset):
    a, b = patches(seed=1), patches(seed=2)
    pipe = ViewPipeline.preset(preset)
    va, vb = pipe.views(a, b, 5)
    va2, vb2 = ViewPipeline.preset(preset).views(a.clone(), b.clone(), torch.Generator().manual_seed(5))
    assert torch.equal(va, va2) and torch.equal(vb, vb2)
    if preset != "none":
        assert not torch.equal(va, pipe.views(a, b, 6)[0])


def test_pipeline_is_reproducible_across_processes():
    code = ("import torch, hashlib; from doppelnb.augment import ViewPipeline; "
            "x = torch.randn(8, 96, 64, generator=torch.Generator().manual_seed(0)) * 1.5 - 2.0; "
            "a, b = ViewPipeline.preset('all').views(x[:4], x[4:], 11); "
            "print(hashlib.sha256(torch.cat([a, b]).contiguous().numpy().tobytes()).hexdigest())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, timeout=120).stdout.strip()
    x = patches(8, seed=0)
    a, b = ViewPipeline.preset("all").views(x[:4], x[4:], 11)
    assert out == digest(torch.cat([a, b]))


def test_global_rng_does_not_leak_into_seeded_views():
    x = patches()
    torch.manual_seed(1); first = ViewPipeline.preset("all")(x, None, 3)
    torch.manual_seed(2); torch.rand(10); second = ViewPipeline.preset("all")(x, None, 3)
    assert torch.equal(first, second)


def test_switching_one_module_off_keeps_the_others_draws():
    # each module draws from its own stream (by position), so what an earlier module is, or whether it is on, changes nothing later
    x = patches()
    later = [SpecAugment(), GaussianNoise()]
    reference = ViewPipeline(0.05, [RandomShift(p=0.0)] + later)(x, None, 3)
    for first in (RandomResizedCrop(p=0.0), GaussianBlur(p=0.0), Compression(p=0.0)):
        assert torch.equal(ViewPipeline(0.05, [first] + later)(x, None, 3), reference)
    assert not torch.equal(ViewPipeline(0.05, [RandomShift(p=1.0)] + later)(x, None, 3), reference)


# ---------------------------------------------------------------- edge inputs
EDGE = {
    "silent": torch.full((6, 96, 64), DOPPELGANGER.log_silence),
    "tiny": DOPPELGANGER.log_silence + 1e-7 * torch.rand(6, 96, 64),
    "huge": patches(6) * 1e4,
    "very loud": patches(6) + 85.0,
    "below floor": torch.full((6, 96, 64), -1e4),
    "one frame": patches(6, 1, 64),
    "one band": patches(6, 96, 1),
    "one bin": patches(6, 1, 1),
    "tiny patch": patches(6, 2, 3),
    "float64": patches(6).double(),
    "channel dim": patches(6)[:, None],
}


@pytest.mark.parametrize("name", sorted(EDGE))
@pytest.mark.parametrize("preset", ["all", "fonseca"])
def test_views_are_finite_and_keep_shape_on_edge_inputs(name, preset):
    x = EDGE[name]
    out = ViewPipeline.preset(preset)(x, torch.arange(len(x)) // 2, 0)
    assert out.shape == x.shape and out.dtype == x.dtype and torch.isfinite(out).all()


@pytest.mark.parametrize("aug", AUGMENTATIONS, ids=lambda c: c.__name__)
def test_p_zero_is_identity_and_batch_equals_one_by_one(aug):
    x = patches(10, 40, 24)
    assert torch.equal(aug(p=0.0)(x, torch.Generator().manual_seed(0)), x)
    a = aug()
    params = a.sample(10, 40, 24, torch.Generator().manual_seed(1))
    whole = a.transform(x, params)
    for i in range(10):
        one = {k: (v[i:i + 1] if v.shape[0] == 10 else v[:, i:i + 1]) for k, v in params.items()}
        assert torch.allclose(a.transform(x[i:i + 1], one), whole[i:i + 1], atol=1e-5)


@pytest.mark.parametrize("aug", AUGMENTATIONS, ids=lambda c: c.__name__)
def test_draws_do_not_depend_on_p(aug):
    # a module draws the same number of values whatever p, so a later module's draws are unchanged
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    aug(p=0.0)(patches(4), g1); aug(p=1.0)(patches(4), g2)
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))


# ---------------------------------------------------------------- mix-back
def test_energy_share_is_one_minus_lambda_for_both_front_ends():
    g = torch.Generator().manual_seed(0)
    for cfg in (DOPPELGANGER, FONSECA):
        x = cfg.log_silence + torch.rand(64, 50, 32, generator=g) * 10 * torch.rand(64, 1, 1, generator=g)
        alpha = 0.3
        index, lam = MixBack(alpha, cfg).sample(torch.arange(32).repeat(2), g)
        out = mix_back(x, x[index], lam, cfg)
        energy = lambda l: (to_linear(l.double(), cfg) ** (2 / cfg.power)).sum((-2, -1))
        share = (1 - lam.double()) * energy(x) / energy(out)
        assert (share >= 1 - alpha - 1e-5).all()
        assert torch.allclose(share, 1 - lam.double(), atol=1e-4)


def test_mix_back_keeps_leading_dimensions():
    x, b = patches(6).reshape(2, 3, 96, 64), patches(6, seed=1).reshape(2, 3, 96, 64)
    lam = torch.tensor([[0.0, 0.1, 0.2], [0.3, 0.0, 0.05]])
    out = mix_back(x, b, lam)
    assert out.shape == x.shape and torch.equal(out[0, 0], x[0, 0]) and torch.equal(out[1, 1], x[1, 1])
    assert torch.allclose(out[0, 1], mix_back(x[0, 1], b[0, 1], 0.1), atol=1e-6)


@pytest.mark.parametrize("call, word", [
    (lambda: mix_back(patches(2), patches(3), 0.1), "background"),
    (lambda: mix_back(patches(2), patches(2), -0.1), "lam"),
    (lambda: mix_back(patches(2), patches(2), torch.tensor([0.1, 2.0])), "lam"),
    (lambda: mix_back(torch.zeros(2, 4, 4, dtype=torch.long), torch.zeros(2, 4, 4, dtype=torch.long), 0.1), "floating"),
    (lambda: MixBack(1.5), "alpha"),
    (lambda: MixBack()(patches(4), torch.arange(3)), "clip_ids"),
    (lambda: MixBack()(patches(1)), "at least two clips"),
    (lambda: sample_backgrounds(torch.tensor([0.0, 1.0])), "integer"),
    (lambda: sample_backgrounds(torch.zeros(2, 2, dtype=torch.long)), "1-D"),
    (lambda: sample_backgrounds(torch.tensor([3, 3, 3, 3, 3, 1])), "distinct backgrounds"),
])
def test_mix_back_bad_inputs(call, word):
    with pytest.raises(ValueError, match=word): call()


def test_backgrounds_never_from_the_same_clip_on_random_layouts():
    g = torch.Generator().manual_seed(1)
    checked = 0
    for _ in range(300):
        n = int(torch.randint(2, 60, (1,), generator=g))
        ids = torch.randint(-5, int(torch.randint(2, 12, (1,), generator=g)), (n,), generator=g) * 7   # arbitrary, non-contiguous ids
        counts = torch.unique(ids, return_counts=True)[1]
        if len(counts) < 2 or counts.max() > n - counts.max(): continue
        bg = sample_backgrounds(ids, g)
        assert (ids[bg] != ids).all() and bg.min() >= 0 and bg.max() < n
        for c in ids.unique(): assert len(bg[ids == c].unique()) == int((ids == c).sum())
        checked += 1
    assert checked > 100


# ---------------------------------------------------------------- augmentation settings
@pytest.mark.parametrize("make, word", [
    (lambda: RandomResizedCrop(p=-0.1), "p:"), (lambda: RandomResizedCrop(scale=(0.0, 1.2)), "scale"),
    (lambda: RandomResizedCrop(ratio=(2.0, 1.0)), "ratio"), (lambda: RandomResizedCrop(attempts=0), "attempts"),
    (lambda: RandomShift(max_time=-1), "max_time"), (lambda: RandomShift(max_freq=2.5), "max_freq"),
    (lambda: Compression(factor=(1.0, 0.5)), "factor"), (lambda: Compression(p=True), "p:"),
    (lambda: SpecAugment(n_freq=-1), "n_freq"), (lambda: SpecAugment(mask_value=None), "mask_value"),
    (lambda: GaussianNoise(sigma=-0.01), "sigma"), (lambda: GaussianNoise(sigma=math.inf), "sigma"),
    (lambda: GaussianBlur(kernel_size=0), "kernel_size"), (lambda: GaussianBlur(sigma=(0.0, 1.0)), "sigma"),
    (lambda: ViewPipeline(0.05, [torch.nn.Identity()]), "Augmentation"), (lambda: ViewPipeline.preset("byol"), "preset"),
])
def test_bad_settings(make, word):
    with pytest.raises(ValueError, match=word): make()


@pytest.mark.parametrize("x", [torch.zeros(96, 64), torch.zeros(2, 2, 96, 64), torch.zeros(2, 1, 1, 96, 64), [[0.0]]])
def test_bad_patch_shapes(x):
    with pytest.raises(ValueError, match="patches"): ViewPipeline.preset("all")(x)


# ---------------------------------------------------------------- benchmark command line
def test_bench_cli_small_run_writes_json(tmp_path, capsys):
    r = bench_cli(["views", "--batch-size", "8", "--repeats", "1", "--warmup", "0", "--json", str(tmp_path / "b.json"), "--encoder", "torch.nn:PReLU"])
    printed = capsys.readouterr().out
    assert "patches/s" in printed and "views / encoder" in printed
    saved = json.loads((tmp_path / "b.json").read_text())
    assert r is None  # a console script's return value becomes its exit status
    assert saved["batch"] == 8 and saved["views_ms"] > 0 and saved["encoder_ms"] > 0
    assert saved["ratio"] == pytest.approx(saved["views_ms"] / saved["encoder_ms"])
    assert set(saved["stages_ms"]) == {"mix-back", "RandomShift", "RandomResizedCrop", "Compression", "SpecAugment", "GaussianNoise", "GaussianBlur"}


@pytest.mark.parametrize("args, word", [(["--batch-size", "7"], "batch-size"), (["--batch-size", "2"], "batch-size"),
                                        (["--repeats", "0"], "repeats"), (["--encoder", "nomodule"], "encoder"),
                                        (["--encoder", "doppelnb_no_such_module:make"], "cannot import"),
                                        (["--encoder", "torch.nn:NoSuchEncoder"], "no attribute"), (["--threads", "0"], "threads")])
def test_bench_cli_bad_input(args, word, capsys):
    with pytest.raises(SystemExit) as info:
        bench_cli(["views", "--batch-size", "8", "--repeats", "1"] + args)  # later options override earlier ones
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert word in err and "Traceback" not in err
