"The offline documentation site builds from the notebooks, with navigation, API docs, figures and audio players."
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

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
    for name in ("perturb", "DoppelgangerSynth", "write_pairs", "run_main", "get_timestamp_embeddings", "embed_cli"):
        assert name in api, f"{name} is missing from the API page"
    assert "torch._C" not in api and "extra_repr" not in api, "the API page repeats torch internals"
    assert not any("NoneType" in p.read_text(encoding="utf-8") for p in out.glob("*.html")), "a parameter renders as NoneType"
    broken = broken_links(out)
    assert not broken, f"{len(broken)} broken links, e.g. {broken[:5]}"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        for key in ("href", "src"):
            if a.get(key):
                self.links.append(a[key])


def broken_links(site: Path, unconfirmed=("doppelnb.github.io", "github.com/doppelnb")) -> list:
    "`(page, link, why)` for every link of the built site to a missing file or anchor, a root path, or an unconfirmed host."
    pages = {}
    for f in site.rglob("*.html"):
        parser = _Links()
        parser.feed(f.read_text(encoding="utf-8"))
        pages[f.resolve()] = parser
    bad = []
    for f, parser in pages.items():
        for url in parser.links:
            u = urlsplit(url)
            if u.scheme in ("data", "javascript", "mailto"):
                continue
            if u.scheme or u.netloc:
                if any(host in url for host in unconfirmed):
                    bad.append((f.name, url, "unconfirmed host"))
                continue
            if u.path.startswith("/"):
                bad.append((f.name, url, "root path"))
                continue
            target = (f.parent / unquote(u.path)).resolve() if u.path else f
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                bad.append((f.name, url, "missing file"))
            elif u.fragment and target.suffix == ".html" and unquote(u.fragment) not in pages[target].ids:
                bad.append((f.name, url, "missing anchor"))
    return bad


def test_link_checker_catches_broken_links(tmp_path):
    (tmp_path / "a.html").write_text('<h2 id="x">x</h2><a href="a.html#x">ok</a><a href="b.html">gone</a>'
                                     '<a href="#y">no anchor</a><a href="/abs.css">root</a>'
                                     '<a href="https://doppelnb.github.io/doppelnb/synth.html">old</a>', encoding="utf-8")
    assert [why for _, _, why in broken_links(tmp_path)] == ["missing file", "missing anchor", "root path", "unconfirmed host"]
