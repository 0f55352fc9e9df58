"doppelnb_bench pretrain's side-by-side comparison: alternating rounds, extra baseline knobs, and a clear error for bad counts."
import json

import pytest

from doppelnb.bench_loop import bench_cli

TINY = ["pretrain", "--sources", "synth", "--steps", "3", "--warmup", "1", "--batch-size", "8", "--workers", "0", "--device", "cpu"]


def test_rounds_alternate_and_summarise(tmp_path, capsys):
    out = tmp_path / "bench.json"
    bench_cli([*TINY, "--base", "duration=0.5,patch_frames=48", "--variants", "precision=bf16", "--rounds", "2",
                        "--json", str(out)])
    printed = capsys.readouterr().out
    assert "median of 2 rounds | synth | precision=bf16:" in printed and "vs baseline" in printed, printed
    rows = json.loads(out.read_text())
    assert [(r["variant"], r["round"]) for r in rows] == [("baseline", 0), ("precision=bf16", 0), ("baseline", 1), ("precision=bf16", 1)]
    assert all(r["precision"] == ("bf16" if r["variant"] != "baseline" else "32") for r in rows)


def test_bad_rounds_and_base_knobs_exit_2(capsys):
    for args, says in ((["--rounds", "0"], "rounds: at least 1"), (["--base", "durashun=0.5"], "not KNOB=VALUE")):
        with pytest.raises(SystemExit) as e:
            bench_cli([*TINY, *args])
        assert e.value.code == 2 and says in capsys.readouterr().err


def test_base_knobs_win_over_the_flags_they_repeat(tmp_path):
    "`--base precision=bf16,workers=0` sets knobs that are flags too (it was a TypeError: two values for one knob)."
    out = tmp_path / "bench.json"
    bench_cli([*TINY, "--base", "duration=0.5,patch_frames=48,precision=bf16,channels_last=true",
                        "--variants", "synth=zoo", "--json", str(out)])
    rows = json.loads(out.read_text())
    assert [r["precision"] for r in rows] == ["bf16", "bf16"] and [r["variant"] for r in rows] == ["baseline", "synth=zoo"]
