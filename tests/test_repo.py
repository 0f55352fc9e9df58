"The repository's own promises: pinned environment, two README commands, CI runs the test command."
import configparser
import re

from conftest import ROOT


def pins(path):
    found = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^\s*(?:-\s*)?([A-Za-z0-9_.\-]+)==([^\s#]+)", line)
        if m:
            found[m.group(1).lower()] = m.group(2)
    return found


def test_environment_yml_matches_constraints():
    constraints, conda = pins(ROOT / "constraints.txt"), pins(ROOT / "environment.yml")
    assert conda, "environment.yml pins nothing"
    for name, version in conda.items():
        assert constraints.get(name) == version, f"{name}: environment.yml has {version}, constraints.txt {constraints.get(name)}"
    assert constraints["torch"] == "2.11.0" and constraints["torchaudio"] == "2.11.0"


def test_settings_requirements_are_constrained():
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini")
    constraints = pins(ROOT / "constraints.txt")
    for req in (cfg["DEFAULT"]["requirements"] + " " + cfg["DEFAULT"]["dev_requirements"]).split():
        name = re.split(r"[<>=!\[]", req)[0].lower()
        assert name in constraints, f"{name} (settings.ini) is not pinned in constraints.txt"


def test_readme_names_exactly_two_commands():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    assert [b.strip() for b in blocks] == ["bash scripts/main.sh", "bash scripts/test.sh"]


def test_ci_runs_the_test_command_and_nothing_else():
    lines = [l for l in (ROOT / ".ci" / "run").read_text().splitlines() if l.strip() and not l.startswith("#")]
    commands = [l for l in lines if not l.startswith(("set ", "cd "))]
    assert commands == ["exec bash scripts/test.sh"]


def test_every_console_script_answers_help():
    "Each entry point in settings.ini is installed and starts (`--help` exits 0 and prints its usage)."
    from conftest import run_cli
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini")
    names = [line.split("=")[0].strip() for line in cfg["DEFAULT"]["console_scripts"].splitlines() if line.strip()]
    assert len(names) >= 8
    for name in names:
        result = run_cli(name, "--help", timeout=120)
        assert result.returncode == 0 and "usage:" in result.stdout, f"{name} --help failed:\n{result.stderr}"


def test_benchmark_commands_exit_cleanly(tmp_path):
    "The model and view benchmarks print their numbers and exit 0 (a returned object must not become the exit status)."
    from conftest import run_cli
    r = run_cli("doppelnb_bench", "model", "--encoders", "small_cnn", "--batch-size", 4, "--repeats", 1, "--warmup", 0, check=True)
    assert "patches/s" in r.stdout
    r = run_cli("doppelnb_bench", "views", "--batch-size", 8, "--repeats", 1, "--warmup", 0, check=True)
    assert "views / encoder" in r.stdout


def test_notebook_outputs_hold_no_library_warnings():
    "Kept outputs show results, not a library's warning with this machine's site-packages path (clear it, or silence it in the cell)."
    import json
    leaks = [f"{nb.name} cell {c.get('id')}" for nb in sorted((ROOT / "nbs").glob("*.ipynb"))
             for c in json.loads(nb.read_text())["cells"] for o in c.get("outputs", [])
             if o.get("output_type") == "stream" and o.get("name") == "stderr" and "site-packages/" in "".join(o["text"])]
    assert not leaks, f"{len(leaks)} outputs keep a library warning, e.g. {leaks[:3]}"


def test_notebook_code_lines_are_short():
    "Code cells, the library's source, keep lines to 110 characters (nbdev writes `__all__` and module docstrings)."
    import json
    long = [f"{nb.name} cell {c.get('id')}: {line[:50]}…" for nb in sorted((ROOT / "nbs").glob("*.ipynb"))
            for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"
            for line in "".join(c["source"]).splitlines() if len(line) > 110]
    assert not long, f"{len(long)} code lines over 110 characters, e.g. {long[:3]}"
