"Shared helpers for doppelnb's tests."
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def console_script(name: str) -> str:
    "Path of an installed console script (next to the running interpreter, else on PATH)."
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"console script {name} is not installed: run scripts/setup.sh")
    return found


def run_cli(name: str, *args, check: bool = False, timeout: int = 600, **kwargs) -> subprocess.CompletedProcess:
    "Run a console script as a user would; return the completed process (stdout/stderr as text)."
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONWARNINGS": "ignore"}
    result = subprocess.run([console_script(name), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{name} {' '.join(map(str, args))} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result
