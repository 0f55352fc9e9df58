"The HEAR 2021 API on the shipped encoder: the validator's checks, timestamps inside the audio, long audio, devices, checkpoints."
import subprocess
import sys

import pytest
import torch

from doppelnb.hear import (HearCheckError, check_hear_api, frame_layout, get_scene_embeddings, get_timestamp_embeddings,
                           load_model, packaged_weights)

from conftest import ROOT


@pytest.fixture(scope="module")
def model():
    return load_model("")


def test_validator_checks_pass_on_shipped_encoder():
    lines = check_hear_api("doppelnb.hear", "", device="cpu", log=None)
    assert lines[-1].endswith("all checks passed")
    assert any("1.07 s" in line for line in lines) and any("4.0 s" in line for line in lines)


def test_validator_checks_can_fail(monkeypatch):
    import doppelnb.hear as hear
    real = hear.get_timestamp_embeddings
    monkeypatch.setattr(hear, "get_timestamp_embeddings", lambda a, m: (real(a, m)[0], real(a, m)[1] * 1.5))
    with pytest.raises(HearCheckError, match="outside the audio|apart"):
        check_hear_api("doppelnb.hear", log=None)


@pytest.mark.parametrize("seconds", [0.1, 1.07, 1.98, 4.0])
def test_timestamps_regular_and_inside_the_audio(model, seconds):
    n = int(seconds * model.sample_rate)
    emb, ts = get_timestamp_embeddings(torch.rand(2, n) * 2 - 1, model)
    assert emb.dtype == ts.dtype == torch.float32 and emb.shape[:2] == ts.shape and emb.shape[2] == 512
    assert ts.min() >= 0 and ts.max() <= 1000 * n / model.sample_rate
    diff = torch.diff(ts)
    if diff.numel():
        assert diff.max() <= 50.0 and (diff - diff.mean()).abs().max() < 1e-3
    # the last window is the last one whose centre lies inside the audio
    assert ts[0, -1] + model.hop_ms > 1000 * n / model.sample_rate


def test_tiny_sound_gets_one_embedding(model):
    emb, ts = get_timestamp_embeddings(torch.zeros(1, 20), model)
    assert emb.shape == (1, 1, 512) and 0 <= ts.item() <= 1000 * 20 / 16000
    assert frame_layout(model, 20)[1] == 1


def test_scene_is_the_probe_path_and_embed_file(model, tmp_path):
    import soundfile as sf
    from doppelnb.evaluate import embed_logmels
    from doppelnb.fixtures import realish_clip
    from doppelnb.main import embed_file
    sf.write(tmp_path / "c.wav", realish_clip(1.5, 16000, channels=1), 16000, subtype="FLOAT")
    audio = torch.from_numpy(realish_clip(1.5, 16000, channels=1)[:, 0])[None]
    z = get_scene_embeddings(audio, model)
    torch.testing.assert_close(z, torch.from_numpy(embed_logmels(model.encoder, [model.logmel(audio[0])], 96)))
    torch.testing.assert_close(embed_file(tmp_path / "c.wav"), z[0], atol=1e-4, rtol=1e-4)


def test_long_audio_in_chunks(model):
    "Two minutes with 7-s chunks: the same numbers as one chunk, and no loop over frames blows up."
    long = 0.1 * torch.randn(1, 120 * 16000, generator=torch.Generator().manual_seed(0))
    small = load_model("")
    small.chunk_seconds = 7.0
    z_small, z_big = get_scene_embeddings(long, small), get_scene_embeddings(long, model)
    torch.testing.assert_close(z_small, z_big, atol=1e-5, rtol=1e-5)
    emb, ts = get_timestamp_embeddings(long, small)
    assert emb.shape == (1, 2400, 512) and ts[0, -1] <= 120_000


def test_no_gradient_and_deterministic(model):
    x = torch.rand(2, 16000, requires_grad=True)
    emb, _ = get_timestamp_embeddings(x, model)
    assert not emb.requires_grad
    torch.testing.assert_close(get_scene_embeddings(x.detach(), model), get_scene_embeddings(x.detach(), model), rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here")
def test_runs_on_the_models_device():
    m = load_model("").to("cuda")
    emb, ts = get_timestamp_embeddings(torch.rand(2, 16000, device="cuda"), m)
    assert emb.device.type == ts.device.type == "cuda"
    assert get_scene_embeddings(torch.rand(2, 16000, device="cuda"), m).device.type == "cuda"


def test_pretraining_checkpoint_loads(tmp_path):
    "A `doppelnb_pretrain` checkpoint (format, config with the front end) loads through load_model."
    from doppelnb.model import build_encoder
    from doppelnb.checkpoint import CHECKPOINT_FORMAT
    from doppelnb.config import PretrainConfig
    enc = build_encoder("small_cnn", seed=0, channels=(8, 16))
    cfg = PretrainConfig(encoder="small_cnn", encoder_kwargs={"channels": [8, 16]}).to_dict()
    torch.save(dict(format=CHECKPOINT_FORMAT, encoder="small_cnn", encoder_kwargs={"channels": [8, 16]},
                    state_dict=enc.state_dict(), config=cfg), tmp_path / "last.pt")
    m = load_model(str(tmp_path / "last.pt"))
    assert m.scene_embedding_size == 32 and m.sample_rate == 16000
    assert get_scene_embeddings(torch.rand(1, 16000), m).shape == (1, 32)


def test_bad_input_is_one_line(model, tmp_path):
    with pytest.raises(ValueError, match=r"\[n_sounds, n_samples\]"):
        get_scene_embeddings(torch.zeros(16000), model)
    with pytest.raises(ValueError, match="float32 tensor"):
        get_timestamp_embeddings(torch.zeros(1, 16000, dtype=torch.int16), model)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pt"):
        load_model(str(tmp_path / "junk.pt"))


def test_packaged_weights_are_the_model_cards():
    assert packaged_weights().read_bytes() == (ROOT / "checkpoints" / packaged_weights().name).read_bytes()
