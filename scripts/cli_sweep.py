"""Bad input on every command line (issue 28's sweep): each case must end with exit status 2 and at most a one-line
error (argparse's usage line aside), never a traceback. Prints one line per case, BAD where that fails, and exits 1
if any case is BAD. Takes a few minutes (each case starts Python and imports torch):

    .venv/bin/python scripts/cli_sweep.py [COMMAND ...]
"""
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

V = str(Path(sys.executable).parent) + "/"
T = Path(tempfile.mkdtemp(prefix="cli-sweep-"))
from doppelnb.fixtures import make_fixture_task
make_fixture_task(T / "data", name="toy", n_groups=4, per_class_group=2)
(T / "file.txt").write_text("x")
(T / "bad.json").write_text("{,")
(T / "bad.pt").write_bytes(b"\x00garbage")
(T / "empty").mkdir()
(T / "audio").mkdir(); shutil.copy(next((T / "data/toy").rglob("*.wav")), T / "audio/a.wav")
tiny = ["--steps", "2", "--batch-size", "4", "--preset", "cpu"]
cases = {
 "doppelnb_pairs": [["--out", str(T/"p"), "--n", "-1"], ["--out", str(T/"p"), "--n", "abc"], ["--out", str(T/"p"), "--delta", "2"],
   ["--out", str(T/"p"), "--delta", "nan"], ["--out", str(T/"p"), "--sample-rate", "0"], ["--out", str(T/"p"), "--duration", "0"],
   ["--out", str(T/"p"), "--duration", "-1"], ["--out", str(T/"p"), "--nebula", "nope"], ["--out", str(T/"p"), "--nebula", str(T/"bad.json")],
   ["--out", str(T/"p"), "--keep-fixed", "bogus"], ["--out", "/proc/x/y"], ["--out", str(T/"file.txt")], ["--out", str(T/"p"), "--seed", "-1"]],
 "doppelnb_pretrain": [[*tiny, "--out", str(T/"r"), "--steps", "-1"], [*tiny, "--out", str(T/"r"), "--lr", "nan"],
   [*tiny, "--out", str(T/"file.txt")], ["--config", str(T/"nope.json"), "--out", str(T/"r")], ["--config", str(T/"bad.json"), "--out", str(T/"r")],
   [*tiny, "--encoder", "bogus", "--out", str(T/"r")], [*tiny, "--loss", "bogus", "--out", str(T/"r")], [*tiny, "--device", "cuda:99", "--out", str(T/"r")],
   [*tiny, "--precision", "bogus", "--out", str(T/"r")], ["--resume", "--out", str(T/"nope")], [*tiny, "--workers", "-1", "--out", str(T/"r")],
   [*tiny, "--delta", "-0.5", "--out", str(T/"r")], [*tiny, "--encoder-kwargs", "{bad", "--out", str(T/"r")], [*tiny, "--loss-kwargs", '{"zzz": 1}', "--out", str(T/"r")],
   [*tiny, "--source", "audio", "--out", str(T/"r")], [*tiny, "--source", "audio", "--audio-dir", str(T/"empty"), "--out", str(T/"r")],
   [*tiny, "--views", "bogus", "--out", str(T/"r")], [*tiny, "--wave-augment", "bogus", "--out", str(T/"r")], [*tiny, "--body", "bogus", "--out", str(T/"r")],
   [*tiny, "--frontend", "bogus", "--out", str(T/"r")], [*tiny, "--patch-frames", "0", "--out", str(T/"r")], [*tiny, "--optimizer", "bogus", "--out", str(T/"r")],
   [*tiny, "--synth", "zoo-organ", "--out", str(T/"r")], [*tiny, "--synth", "voice*-1", "--out", str(T/"r")], [*tiny, "--synth", "modal:drum", "--out", str(T/"r")],
   [*tiny, "--events", "0", "--out", str(T/"r")], [*tiny, "--synth", "zoo", "--delta-scale", '{"fm/bogus": 1}', "--out", str(T/"r")],
   [*tiny, "--threads", "-3", "--out", str(T/"r")], [*tiny, "--checkpoint-every", "0", "--out", str(T/"r")], [*tiny, "--synth", "bogus", "--out", str(T/"r")],
   [*tiny, "--data-on", "bogus", "--out", str(T/"r")], [*tiny, "--delta-scale", "bogus", "--out", str(T/"r")], [*tiny, "--perturb-only", "bogus", "--out", str(T/"r")]],
 "doppelnb_eval": [["--checkpoint", str(T/"nope.pt"), "--data", str(T/"data"), "--tasks", "toy"], ["--checkpoint", str(T/"bad.pt"), "--data", str(T/"data"), "--tasks", "toy"],
   ["--random", "--data", str(T/"data"), "--tasks", "bogus"], ["--random", "--data", str(T/"nope"), "--tasks", "toy"], ["--random", "--data", str(T/"data"), "--tasks", "toy", "--test-fraction", "2"],
   ["--random", "--data", str(T/"data"), "--tasks", "toy", "--batch-size", "0"], ["--random", "--data", str(T/"data"), "--tasks", "toy", "--out", str(T/"file.txt")],
   ["--random", "--data", str(T/"data"), "--tasks", "toy:nocol"], ["--random", "--data", str(T/"data"), "--tasks", "toy", "--encoder", "bogus"],
   ["--random", "--data", str(T/"file.txt"), "--tasks", "toy"], ["--random", "--data", str(T/"data"), "--tasks", "toy", "--seeds", "x"]],
 "doppelnb_embed": [[str(T/"nope"), str(T/"e")], [str(T/"file.txt"), str(T/"e")], [str(T/"audio"), str(T/"e"), "--checkpoint", str(T/"bad.pt")],
   [str(T/"audio"), str(T/"e"), "--batch-files", "0"], [str(T/"audio"), str(T/"e"), "--device", "cuda:99"], [str(T/"audio"), str(T/"e"), "--device", "bogus"],
   [str(T/"audio"), str(T/"file.txt")], [str(T/"empty"), str(T/"e2")], [str(T/"audio"), str(T/"e3"), "--checkpoint", str(T/"empty")]],
 "doppelnb_main": [["--delta", "2", "--out", str(T/"m")], ["--folds", "1", "--out", str(T/"m")], ["--tasks", "bogus", "--no-build", "--data", str(T/"data"), "--out", str(T/"m")],
   ["--data", str(T/"file.txt"), "--out", str(T/"m")], ["--config", str(T/"bad.json"), "--out", str(T/"m")], ["--steps", "0", "--out", str(T/"m")],
   ["--out", str(T/"file.txt")], ["--nebula", "bogus", "--out", str(T/"m")], ["--device", "cuda:99", "--out", str(T/"m")]],
 "doppelnb_speedrun": [["--base-steps", "0", "--root", str(T/"s")], ["--only", "bogus", "--root", str(T/"s")], ["--curve", "bogus", "--root", str(T/"s")],
   ["--root", str(T/"file.txt")], ["--data", str(T/"nope"), "--root", str(T/"s"), "--base-steps", "1"], ["--plan", "bogus", "--root", str(T/"s")]],
 "doppelnb_build_data": [["--tasks", "bogus"], ["--root", str(T/"file.txt"), "--tasks", "notes"]],
 "doppelnb_bench synth": [["--synths", "bogus"], ["--synths", "zoo-organ"], ["--batch-sizes", "0"], ["--repeats", "0"], ["--device", "cuda:99"], ["--json", "/proc/x/y.json", "--batch-sizes", "1", "--repeats", "1"]],
 "doppelnb_bench views": [["--batch-size", "0"], ["--frames", "0"], ["--preset", "none", "--device", "cuda:99"], ["--encoder", "nope:nope"], ["--repeats", "0"]],
 "doppelnb_bench model": [["--encoders", "bogus"], ["--batch-size", "0"], ["--device", "cuda:99"]],
 "doppelnb_bench pretrain": [["--steps", "0"], ["--variants", "bogus=1"], ["--device", "cuda:99"], ["--base", "x"]],
 "doppelnb_hear": [["nosuchtask", "--data", str(T/"data"), "--out", str(T/"h")],
   ["toy", "--data", str(T/"data"), "--folds", "2", "--out", str(T/"h")],
   ["toy", "--data", str(T/"data"), "--checkpoint", str(T/"bad.pt"), "--out", str(T/"h")],
   ["toy", "--data", str(T/"data"), "--grid", "bogus", "--out", str(T/"h")],
   ["toy", "--data", str(T/"data"), "--out", str(T/"file.txt")]],
 "doppelnb_bench eval": [["--encoders", "small_cnn", "--clips", "0"], ["--probe", "--data", str(T/"nope")], ["--clips", "-5"]],
}
only, bad_cases = sys.argv[1:], 0
for cmd, argss in cases.items():
    if only and cmd not in only: continue
    for args in argss:
        try: r = subprocess.run([V + cmd.split()[0], *cmd.split()[1:], *args], capture_output=True, text=True, timeout=240, cwd=T)
        except subprocess.TimeoutExpired: print("TIMEOUT", cmd, args); continue
        err = r.stderr.strip()
        bad = "Traceback" in err or r.returncode != 2 or (len(err.splitlines()) > 2 and "usage:" not in err)
        bad_cases += bad
        tag = "BAD " if bad else "ok  "
        print(tag, r.returncode, cmd, " ".join(a.replace(str(T), "T") for a in args), "|", err.splitlines()[-1][:200] if err else "(no stderr)", flush=True)
shutil.rmtree(T, ignore_errors=True)
print(f"{bad_cases} BAD of {sum(len(v) for k, v in cases.items() if not only or k in only)} cases")
sys.exit(1 if bad_cases else 0)
