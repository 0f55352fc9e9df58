"""Execute doppelnb's notebooks top to bottom in a Jupyter kernel, as JupyterLab's "Run All" does.

    python scripts/run_notebooks.py [NOTEBOOK ...] [--read-back] [--workers N] [--times CSV] [--inplace]

Every cell runs, `#| slow` ones included, in the kernel each notebook names (its kernelspec), with nbs/ as the
working directory. `--read-back` sets DOPPELNB_READ_BACK=1 in the kernel (`doppelnb.readback`): slow cells read
back the committed results, work at a small size and skip what needs data that is not built; this is how the test
command runs them. Without it the notebooks run exactly as a reader's "Run All" does. `--times` writes one row per
notebook (seconds, mode, slowest cell) for the README's table; `--inplace` keeps the executed outputs in the
notebooks (the docs show them). A notebook that raises fails the command with the cell and the error named.
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from doppelnb.readback import READ_BACK_VAR

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"


def all_notebooks() -> list[Path]:
    "Every notebook of nbs/, in file-name order (those starting with `_` or `.` are scratch)."
    return sorted(p for p in NBS.glob("*.ipynb") if not p.name.startswith(("_", ".")))


def cell_seconds(cell) -> float:
    "Wall time of an executed cell, from the timestamps nbclient records in its metadata."
    t = cell.get("metadata", {}).get("execution", {})
    start, end = t.get("iopub.execute_input"), t.get("shell.execute_reply")
    if not (start and end): return 0.0
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
    return (parse(end) - parse(start)).total_seconds()


def run_notebook(path: Path, read_back: bool, timeout: int, inplace: bool) -> dict:
    "Execute `path` whole; a row for the times table, with `error` set when a cell raised."
    row = dict(notebook=path.name, seconds=0.0, mode="read-back" if read_back else "full", slowest_cell=None,
               slowest_cell_s=0.0, error="")
    nb = nbformat.read(path, as_version=4)
    if "kernelspec" not in nb.metadata: return row | dict(error="no kernelspec in the notebook's metadata")
    env = {**os.environ, READ_BACK_VAR: "1" if read_back else "0"}
    start, error = time.perf_counter(), ""
    # the kernel talks over local sockets (IPC) in a folder of its own, not TCP: no network port, no warning
    with tempfile.TemporaryDirectory(prefix="doppelnb-kernel-") as sockets:
        km = KernelManager(kernel_name=nb.metadata.kernelspec.name, transport="ipc", ip=str(Path(sockets) / "k"))
        client = NotebookClient(nb, km=km, timeout=timeout, resources={"metadata": {"path": str(path.parent)}},
                                record_timing=True, startup_timeout=600)
        try: client.execute(env=env)
        except CellExecutionError as e:
            failed = [(i, o) for i, c in enumerate(nb.cells) if c.cell_type == "code"
                      for o in c.get("outputs", []) if o.get("output_type") == "error"]
            error = (f"cell {failed[0][0]}: {failed[0][1]['ename']}: {failed[0][1]['evalue']}"[:300] if failed
                     else str(e).strip().splitlines()[-1][:300])
        except Exception as e: error = f"{type(e).__name__}: {e}"[:300]
        finally:      # the client shuts down only kernels it started itself
            if km.has_kernel: km.shutdown_kernel(now=True)
    seconds = time.perf_counter() - start
    code = [(cell_seconds(c), i) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    slowest_s, slowest = max(code, default=(0.0, None))
    if inplace and not error:
        for c in nb.cells: c.get("metadata", {}).pop("execution", None)
        nbformat.write(nb, path)
        # as committed: nbdev's clean step (execution counts, metadata)
        subprocess.run([str(Path(sys.executable).parent / "nbdev_clean"), "--fname", str(path)], cwd=ROOT,
                       check=True, capture_output=True)
    return row | dict(seconds=round(seconds, 1), slowest_cell=slowest, slowest_cell_s=round(slowest_s, 1),
                      error=error)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: every one in nbs/)")
    p.add_argument("--read-back", action="store_true", help="run slow cells in read-back mode (the test command)")
    p.add_argument("--workers", type=int, default=1, help="notebooks run at once, each in its own kernel")
    p.add_argument("--timeout", type=int, default=1800, help="seconds one cell may run before it fails")
    p.add_argument("--times", type=Path, help="write a CSV of the seconds each notebook took")
    p.add_argument("--inplace", action="store_true", help="keep the executed outputs in the notebooks")
    a = p.parse_args(argv)
    paths = [n.resolve() for n in a.notebooks] or all_notebooks()
    missing = [str(n) for n in paths if not n.is_file()]
    if missing: p.error(f"no such notebook: {', '.join(missing)}")
    start = time.perf_counter()
    run = lambda path: run_notebook(path, a.read_back, a.timeout, a.inplace)
    rows = []
    with ThreadPoolExecutor(max(1, a.workers)) as pool:
        for row in pool.map(run, paths):
            rows.append(row)
            print(f"{row['notebook']}: {row['seconds']:.0f} s" + (f"  FAILED {row['error']}" if row["error"] else ""),
                  flush=True)
    if a.times:
        a.times.parent.mkdir(parents=True, exist_ok=True)
        with open(a.times, "w", newline="") as f:
            w = csv.DictWriter(f, list(rows[0])); w.writeheader(); w.writerows(rows)
    failed = [r for r in rows if r["error"]]
    print(f"{len(rows) - len(failed)} of {len(rows)} notebooks ran top to bottom"
          f"{' in read-back mode' if a.read_back else ''} in {time.perf_counter() - start:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
