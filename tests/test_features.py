"Bad-input, corrupt-file, reproducibility and edge-case property tests of the log-mel front end, audio I/O and patch sampling."
import math
import struct

import numpy as np
import pytest
import soundfile as sf
import torch

from doppelnb.features import (DOPPELGANGER, FONSECA, AudioFileError, LogMel, LogMelConfig, load_audio, random_patches,
                               to_linear, to_log)
from doppelnb.fixtures import realish_clip


# ---------------------------------------------------------------- audio I/O: every unusable file names itself
def _truncated_wav(path):
    "A WAV whose header promises 16000 samples but holds 3 bytes of data."
    header = b"RIFF" + struct.pack("<I", 36 + 32000) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    path.write_bytes(header + b"data" + struct.pack("<I", 32000) + b"\x01\x02\x03")


CORRUPT = {
    "garbage.wav": lambda p: p.write_bytes(b"\x00\xffnot audio at all" * 64),
    "zero_bytes.wav": lambda p: p.write_bytes(b""),
    "text.flac": lambda p: p.write_text("fLaC? no, just text\n"),
    "header_only.wav": lambda p: p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt "),
    "random.flac": lambda p: p.write_bytes(np.random.default_rng(0).bytes(4096)),
    "empty.wav": lambda p: sf.write(p, np.zeros((0, 2), np.float32), 16000),
    "nan.wav": lambda p: sf.write(p, np.array([0.0, np.nan, 0.5], np.float32), 16000, subtype="FLOAT"),
    "inf.wav": lambda p: sf.write(p, np.array([[0.0, np.inf]] * 10, np.float32), 16000, subtype="FLOAT"),
}


@pytest.mark.parametrize("name", sorted(CORRUPT))
def test_unusable_files_raise_an_error_naming_the_file(tmp_path, name):
    path = tmp_path / name
    CORRUPT[name](path)
    with pytest.raises(AudioFileError) as info:
        load_audio(path)
    assert str(info.value).startswith(str(path)), info.value
    assert isinstance(info.value, ValueError)


def test_truncated_wav_is_refused(tmp_path):
    # libsndfile reads what is there (here one sample of 16000); load_audio refuses the file, naming it and both lengths
    path = tmp_path / "truncated.wav"
    _truncated_wav(path)
    with pytest.raises(AudioFileError, match="header declares 16000 samples, the file holds 1$") as e:
        load_audio(path)
    assert str(e.value).startswith(str(path))


def test_wav_with_extra_chunks_or_streamed_size_still_loads(tmp_path):
    # trailing chunks after the data, and the 0xFFFFFFFF size of a streamed WAV, are not truncation
    path = tmp_path / "ok.wav"
    sf.write(path, np.full(100, 0.25, np.float32), 16000, subtype="PCM_16")
    raw = path.read_bytes()
    path.write_bytes(raw + b"LIST" + struct.pack("<I", 4) + b"INFO")
    assert load_audio(path).shape == (100,)
    i = raw.index(b"data") + 4
    path.write_bytes(raw[:i] + struct.pack("<I", 0xFFFFFFFF) + raw[i + 4:])
    assert load_audio(path).shape[0] >= 100


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AudioFileError, match="no such file"): load_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioFileError, match="not a file"): load_audio(tmp_path)


@pytest.mark.parametrize("rate", [0, -16000, 16000.0, True, "16000"])
def test_bad_sample_rate(tmp_path, rate):
    sf.write(tmp_path / "a.wav", np.zeros(100, np.float32), 16000)
    with pytest.raises(ValueError, match="sample_rate"): load_audio(tmp_path / "a.wav", rate)


@pytest.mark.parametrize("subtype, fmt", [("PCM_U8", "WAV"), ("PCM_16", "WAV"), ("PCM_24", "WAV"), ("FLOAT", "WAV"), ("PCM_16", "FLAC"), ("PCM_24", "FLAC")])
@pytest.mark.parametrize("source_rate, channels", [(8000, 1), (11025, 2), (48000, 6)])
def test_formats_rates_and_channels(tmp_path, subtype, fmt, source_rate, channels):
    rng = np.random.default_rng(source_rate + channels)
    data = (0.5 * rng.uniform(-1, 1, (source_rate // 4, channels))).astype(np.float32)   # 0.25 s
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(path, data, source_rate, subtype=subtype, format=fmt)
    audio = load_audio(path, 16000)
    assert audio.dtype == torch.float32 and audio.ndim == 1 and torch.isfinite(audio).all()
    assert abs(len(audio) - 4000) <= 1
    multi = load_audio(path, source_rate, mono=False)
    assert multi.shape == (channels, source_rate // 4)
    assert torch.allclose(load_audio(path, source_rate), multi.mean(0), atol=1e-6)


def test_same_file_same_audio(tmp_path):
    sf.write(tmp_path / "a.wav", realish_clip(1.0, 44100, seed=3), 44100)
    assert torch.equal(load_audio(tmp_path / "a.wav", 16000), load_audio(tmp_path / "a.wav", 16000))
    assert not np.array_equal(realish_clip(1.0, 8000, seed=3), realish_clip(1.0, 8000, seed=4))


# ---------------------------------------------------------------- front end
@pytest.mark.parametrize("kwargs, word", [(dict(sample_rate=0), "sample_rate"), (dict(n_fft=256), "win_length"),
                                          (dict(f_min=8000.0, f_max=7500.0), "f_min"), (dict(log_base=1.0), "log_base"),
                                          (dict(patch_frames=0), "patch_frames"), (dict(power=0.5), "power")])
def test_config_rejects_bad_settings(kwargs, word):
    with pytest.raises(ValueError, match=word): LogMelConfig(**kwargs)


@pytest.mark.parametrize("config", [DOPPELGANGER, FONSECA], ids=["doppelganger", "fonseca"])
def test_frame_count_and_edge_lengths(config):
    front = LogMel(config)
    for n in (1, 2, config.win_length - 1, config.win_length, config.win_length + config.hop_length, config.sample_rate, 3 * config.sample_rate + 7):
        if config.center and n <= config.n_fft // 2: continue  # torch's reflect padding needs more samples than half an FFT
        out = front(torch.randn(2, n) * 0.1)
        assert out.shape == (2, config.n_frames(n), config.n_mels), n
        assert torch.isfinite(out).all() and (out >= config.log_silence - 1e-4).all()


def test_front_end_on_silent_tiny_and_huge_audio():
    front = LogMel()
    silent = front(torch.zeros(1, 16000))
    assert torch.equal(silent, torch.full_like(silent, math.log(0.01)))
    for scale in (1e-30, 1e-8, 1e3, 1e15):
        out = front(torch.randn(1, 16000) * scale)
        assert torch.isfinite(out).all(), scale
    with pytest.raises(ValueError, match="NaN"): front(torch.full((1, 800), float("inf")))
    with pytest.raises(ValueError, match="empty"): front(torch.zeros(0))


def test_log_power_grows_by_log10_4_when_amplitude_doubles():
    x = torch.from_numpy(realish_clip(1.0, 22050, seed=1, channels=1)[:, 0])
    front = LogMel(FONSECA)
    a, b = front(x), front(2 * x)
    loud = a > -4  # far above the 1.1e-8 offset
    assert torch.allclose((b - a)[loud], torch.full_like(b[loud], math.log10(4)), atol=1e-3)


def test_to_linear_inverts_to_log_and_never_goes_negative():
    g = torch.Generator().manual_seed(0)
    mel = torch.rand(1000, generator=g) ** 8 * 100
    for cfg in (DOPPELGANGER, FONSECA):
        assert torch.allclose(to_linear(to_log(mel, cfg), cfg), mel, rtol=1e-3, atol=1e-3 * cfg.log_offset + 1e-6)
        assert (to_linear(torch.randn(1000, generator=g) * 20, cfg) >= 0).all()


# ---------------------------------------------------------------- patches
def test_patches_are_seeded():
    x = torch.randn(5, 300, 64)
    a = random_patches(x, 96, torch.Generator().manual_seed(7), views=3)
    b = random_patches(x, 96, torch.Generator().manual_seed(7), views=3)
    c = random_patches(x, 96, torch.Generator().manual_seed(8), views=3)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_patch_property_on_random_shapes():
    g = torch.Generator().manual_seed(0)
    for _ in range(60):
        B, T, F = (int(torch.randint(1, k, (1,), generator=g)) for k in (5, 130, 20))
        n, nb = int(torch.randint(1, 110, (1,), generator=g)), int(torch.randint(1, F + 1, (1,), generator=g))
        lengths = torch.randint(1, T + 1, (B,), generator=g)
        x = torch.arange(B * T * F, dtype=torch.float64).reshape(B, T, F)
        for pad in ("repeat", -7.0):
            out, t0, f0 = random_patches(x, n, g, views=2, n_bands=nb, lengths=lengths, pad=pad, return_starts=True)
            assert out.shape == (2, B, n, nb)
            for v in range(2):
                for b in range(B):
                    L = int(lengths[b]); s, f = int(t0[v, b]), int(f0[v, b])
                    assert 0 <= s <= max(L - n, 0) and 0 <= f <= F - nb
                    frames = torch.arange(s, s + n)
                    if pad == "repeat":
                        assert torch.equal(out[v, b], x[b, frames % L, f:f + nb])
                    else:
                        inside = frames < L
                        assert torch.equal(out[v, b][inside], x[b, frames[inside], f:f + nb])
                        assert (out[v, b][~inside] == -7.0).all()


@pytest.mark.parametrize("args, kwargs, word", [
    ((torch.zeros(64),), {}, "logmel"),
    ((torch.zeros(0, 100, 64),), {}, "no clips"),
    ((torch.zeros(2, 0, 64),), {}, "empty"),
    ((torch.zeros(2, 100, 64),), dict(lengths=torch.tensor([100, 0])), "clip 1 is empty"),
    ((torch.zeros(2, 100, 64),), dict(lengths=torch.tensor([100])), "lengths"),
    ((torch.zeros(2, 100, 64),), dict(lengths=torch.tensor([100, 101])), "lengths"),
    ((torch.zeros(2, 100, 64),), dict(lengths=torch.tensor([100, -1])), "empty|lengths"),
    ((torch.zeros(2, 100, 64),), dict(views=0), "views"),
    ((torch.zeros(2, 100, 64),), dict(n_bands=65), "n_bands"),
    ((torch.zeros(2, 100, 64), 96.0), {}, "n_frames"),
    ((torch.zeros(2, 100, 64),), dict(pad=None), "pad"),
])
def test_patch_bad_inputs(args, kwargs, word):
    with pytest.raises(ValueError, match=word): random_patches(*args, **kwargs)
