"The offline documentation site builds from the notebooks, with navigation, API docs, figures and audio players."
import re
import subprocess
import sys

from conftest import ROOT


def test_docs_site_builds(tmp_path):
    out = tmp_path / "site"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "docs.py"), "site", "--out", str(out)], check=True, cwd=ROOT, timeout=900)
    notebooks = sorted(p.stem for p in (ROOT / "nbs").glob("*.ipynb"))
    for stem in notebooks + ["api"]:
        assert (out / f"{stem}.html").is_file(), f"missing page {stem}.html"
    home = (out / "index.html").read_text(encoding="utf-8")
    assert "doppelnb" in home and "scripts/main.sh" in home and "scripts/test.sh" in home
    assert re.search(r'<img[^>]+src="data:image/png;base64', home), "the home page figure is missing"
    for stem in notebooks:  # navigation links every page
        assert f'href="{stem}.html"' in home or stem == "index", f"{stem} is not in the navigation"
    synth = (out / "00_synth.html").read_text(encoding="utf-8")
    assert synth.count("<audio") >= 11 and "data:audio/wav;base64" in synth, "audio players are missing"
    assert "DoppelgangerSynth" in synth and "perturb" in synth
    api = (out / "api.html").read_text(encoding="utf-8")
    for name in ("perturb", "DoppelgangerSynth", "write_pairs", "run_main"):
        assert name in api, f"{name} is missing from the API page"
