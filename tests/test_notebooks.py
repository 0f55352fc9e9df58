"Notebooks as a reader meets them: a kernel named in each, stable metadata, and a runner that fails where a cell fails."
import json
import os
import shutil
import subprocess
import sys

import nbformat

from conftest import ROOT

RUNNER = ROOT / "scripts" / "run_notebooks.py"
NOTEBOOKS = sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith(("_", ".")))


def run_notebooks(*args, env=None):
    return subprocess.run([sys.executable, str(RUNNER), *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env={**os.environ, **(env or {})})


def notebook(path, *sources, kernel=True):
    "Write a notebook of code cells `sources` to `path`."
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    if kernel: nb.metadata["kernelspec"] = {"name": "python3", "display_name": "python3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_every_notebook_names_its_kernel():
    "JupyterLab opens each notebook without asking for a kernel: every one carries the python3 kernelspec."
    assert len(NOTEBOOKS) > 20
    missing = [p.name for p in NOTEBOOKS if json.loads(p.read_text())["metadata"].get("kernelspec", {}).get("name")
               != "python3"]
    assert not missing, f"notebooks without the python3 kernelspec: {missing}"


def test_nbdev_clean_keeps_notebooks_as_committed(tmp_path):
    "nbdev's clean step changes nothing in a committed notebook (its metadata, kernelspec included, is stable)."
    shutil.copytree(ROOT / "nbs", tmp_path / "nbs")
    shutil.copy(ROOT / "settings.ini", tmp_path)
    clean = shutil.which("nbdev_clean", path=str(ROOT / ".venv" / "bin")) or shutil.which("nbdev_clean")
    subprocess.run([clean], cwd=tmp_path, check=True, capture_output=True, timeout=120)
    changed = [p.name for p in NOTEBOOKS if (tmp_path / "nbs" / p.name).read_text() != p.read_text()]
    assert not changed, f"nbdev_clean changes {changed}: run nbdev_clean and commit"


def test_runner_runs_a_notebook_whole_and_passes_the_mode(tmp_path):
    "Every cell runs in the notebook's kernel, in the notebook's folder; --read-back reaches the kernel."
    nb = notebook(tmp_path / "ok.ipynb", "from pathlib import Path\nPath('ran.txt').write_text('yes')",
                  "import os\nprint(os.environ['DOPPELNB_READ_BACK'])\n"
                  "from doppelnb.readback import read_back, quick\nassert read_back() and quick(200, 20) == 20")
    times = tmp_path / "times.csv"
    r = run_notebooks(nb, "--read-back", "--times", times, "--inplace")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "ran.txt").read_text() == "yes"
    assert "1 of 1 notebooks ran top to bottom in read-back mode" in r.stdout
    row = times.read_text().splitlines()
    assert row[0].startswith("notebook,seconds,mode") and row[1].startswith("ok.ipynb,") and ",read-back," in row[1]
    assert nbformat.read(nb, 4).cells[1].outputs[0]["text"] == "1\n"       # --inplace keeps the outputs


def test_runner_fails_on_a_failing_cell_and_names_it(tmp_path):
    "A cell that raises fails the command, names the notebook, the cell and the error; the others still run."
    bad = notebook(tmp_path / "bad.ipynb", "x = 1", "raise ValueError('boom in cell one')", "print('never')")
    good = notebook(tmp_path / "good.ipynb", "print('fine')")
    unnamed = notebook(tmp_path / "nokernel.ipynb", "print('fine')", kernel=False)
    r = run_notebooks(bad, good, unnamed, "--workers", 2)
    assert r.returncode == 1
    assert "bad.ipynb" in r.stdout and "FAILED cell 1: ValueError: boom in cell one" in r.stdout, r.stdout
    assert "nokernel.ipynb" in r.stdout and "no kernelspec" in r.stdout
    assert "1 of 3 notebooks ran top to bottom" in r.stdout
    # without --read-back the kernel runs in full mode, whatever the caller's environment says
    full = notebook(tmp_path / "full.ipynb", "from doppelnb.readback import read_back\nassert not read_back()")
    assert run_notebooks(full, env={"DOPPELNB_READ_BACK": "1"}).returncode == 0
    assert "no such notebook" in run_notebooks(tmp_path / "missing.ipynb").stderr
