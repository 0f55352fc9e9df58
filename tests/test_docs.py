"""The offline documentation site builds from the notebooks (navigation, API pages with parameter tables, the source
files, figures, audio players) and holds up on a web server: it is served by `python -m http.server`, every link is
requested over HTTP, and every page is loaded in headless Chromium (404s, broken images, console errors, signatures
wider than their box). Chromium comes from Debian: `bash scripts/setup_docs.sh` (run by scripts/test.sh)."""
import html as html_lib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

_spec = importlib.util.spec_from_file_location("site_check", ROOT / "scripts" / "site_check.py")
site_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(site_check)


def _modules() -> list[str]:
    from doppelnb._modidx import d
    return sorted(m.split(".", 1)[1] for m in d["syms"])


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "site"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "docs.py"), "site", "--out", str(out)], check=True, cwd=ROOT,
                   timeout=900)
    return out


@pytest.fixture(scope="module")
def served(site):
    with site_check.serve(site) as base:
        yield base


def test_docs_site_builds(site):
    out = site
    notebooks = sorted(p.stem for p in (ROOT / "nbs").glob("*.ipynb"))
    for page in [f"{stem}.html" for stem in notebooks] + ["api/index.html"] + [f"api/{m}.html" for m in _modules()]:
        assert (out / page).is_file(), f"missing page {page}"
    home = (out / "index.html").read_text(encoding="utf-8")
    assert "doppelnb" in home and "scripts/main.sh" in home and "scripts/test.sh" in home
    assert re.search(r'<img[^>]+src="data:image/png;base64', home), "the home page figure is missing"
    for stem in notebooks:  # navigation links every page, the API pages too
        assert f'href="{stem}.html"' in home or stem == "index", f"{stem} is not in the navigation"
    for m in _modules():
        assert f'href="api/{m}.html"' in home, f"api/{m}.html is not in the navigation"
    synth = (out / "00_synth.html").read_text(encoding="utf-8")
    assert synth.count("<audio") >= 11 and "data:audio/wav;base64" in synth, "audio players are missing"
    assert "DoppelgangerSynth" in synth and "perturb" in synth
    for module, name in (("synth", "perturb"), ("synth", "DoppelgangerSynth"), ("pairs", "write_pairs"),
                         ("main", "run_main"), ("hear", "get_timestamp_embeddings"), ("embed", "embed_cli")):
        assert f'id="{name}"' in (out / "api" / f"{module}.html").read_text(encoding="utf-8"), \
            f"{name} is missing from api/{module}.html"
    api = "".join((out / "api" / f"{m}.html").read_text(encoding="utf-8") for m in _modules())
    assert "torch._C" not in api and "extra_repr" not in api, "the API pages repeat torch internals"
    assert not any("NoneType" in p.read_text(encoding="utf-8") for p in out.rglob("*.html")), "a parameter renders as NoneType"


def _entries(page_html: str) -> list[str]:
    "The API entries of a page: from each signature box to the next entry's source link or heading."
    return re.split(r'<p class="doc-source">', page_html)[1:]


def test_api_entries_have_parameter_tables_and_source_lines(site):
    "Every entry with parameters has its table; every source link of every page lands on its definition's line."
    missing, entries = [], 0
    for m in _modules():
        page = (site / "api" / f"{m}.html").read_text(encoding="utf-8")
        for entry in _entries(page):
            entries += 1
            sig = re.search(r'<div class="doc-signature highlight"><pre><code>(.*?)</code>', entry, re.S)
            text = html_lib.unescape(re.sub(r"<[^>]+>", "", sig.group(1))) if sig else ""
            params = re.match(r"(?:def|class) \w+\((.+)\)", " ".join(text.split()))
            if params and params.group(1).strip(" ,") and 'class="doc-params"' not in entry:
                missing.append(f"api/{m}: {text[:60]}")
    assert entries > 300 and not missing, f"{len(missing)} of {entries} entries lack a parameter table: {missing[:5]}"
    table = (site / "api" / "features.html").read_text(encoding="utf-8")
    assert "25 ms at 16 kHz" in table, "docments comments are missing from the parameter tables"

    links = {}
    for page in site.rglob("*.html"):
        for href in re.findall(r'<a href="([^"]+)">source</a>', page.read_text(encoding="utf-8")):
            links.setdefault(href, page)
    assert len(links) > 300, f"only {len(links)} source links"
    lines, wrong = {}, []
    for href, page in links.items():
        target, _, anchor = href.partition("#")
        path = (page.parent / target).resolve()
        assert path.is_relative_to(site.resolve() / "source"), f"{page.name}: a source link leaves the site: {href}"
        if path not in lines:
            lines[path] = {i: html_lib.unescape(re.sub(r"<[^>]+>", "", t)) for i, t in
                           re.findall(r'<span class="line" id="L(\d+)"><a class="ln"[^>]*>\d+</a>(.*?)</span>(?=<span class="line"|</code>)',
                                      path.read_text(encoding="utf-8"), re.S)}
        if anchor:
            line = lines[path].get(anchor[1:], "")
            if not re.match(r"(@|def |class |async def |[A-Za-z_][\w, ]*\s*[:=])", line.strip()):
                wrong.append(f"{page.relative_to(site)} → {href}: {line.strip()[:60]!r}")
    assert not wrong, f"{len(wrong)} source links miss their definition, e.g. {wrong[:5]}"
    for py in (ROOT / "doppelnb").glob("*.py"):
        if py.name != "_modidx.py":
            assert (site / "source" / "doppelnb" / py.name).read_bytes() == py.read_bytes(), f"{py.name} not copied"


def test_links_over_http(site, served):
    "Every link of every page, requested from the served site (a link outside it is a 404 there)."
    broken = site_check.http_link_check(served, site_check.site_pages(site))
    assert not broken, f"{len(broken)} broken links, e.g. {broken[:5]}"


def _chromium() -> str:
    binary = site_check.find_chromium()
    if not binary:
        pytest.fail(site_check.INSTALL_HINT, pytrace=False)
    return binary


def test_pages_in_chromium(site, served):
    "Every page in headless Chromium: no failed request, no broken image, no console error, no signature overflow."
    pages = site_check.site_pages(site)
    reports = site_check.browser_check(served, pages, _chromium())
    assert len(reports) == len(pages) >= 2 * len(_modules()) + 20  # notebooks, API pages, source pages
    found = site_check.problems(reports)
    assert not found, f"{len(found)} problems in the browser:\n" + "\n".join(found[:30])
    for page in ("12b_speedrun_results.html", "10_experiments.html"):  # the experiments' figures, drawn for the page column
        report = next(r for r in reports if r["page"] == page)
        assert report["figures"], f"no figures measured on {page}"
        for f in report["figures"]:  # shown at (nearly) their own size, none a tower
            assert f["rendered"][0] >= 0.9 * f["natural"][0] and f["rendered"][1] <= 900, \
                f"{page}: figure {f['cell']} {f['natural']} is shown at {f['rendered']} in a {report['column']}-px column"


def test_link_checker_catches_broken_links(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "a.html").write_text('<h2 id="x">x</h2><a href="a.html#x">ok</a><a href="b.html">gone</a>'
                                 '<a href="#y">no anchor</a><a href="/abs.css">root</a>'
                                 '<a href="../../outside/file.py#L3">outside</a>'
                                 '<a href="https://doppelnb.github.io/doppelnb/synth.html">old</a>', encoding="utf-8")
    with site_check.serve(site) as base:
        found = site_check.http_link_check(base, ["a.html"])
    assert [why for _, _, why in found] == ["HTTP 404", "missing anchor", "root path", "HTTP 404", "unconfirmed host"]


def test_browser_check_catches_problems(tmp_path):
    "The browser check reports a missing image, a 404 script, a console error and an uncaught exception."
    site = tmp_path / "site"
    site.mkdir()
    (site / "ok.html").write_text("<!doctype html><title>ok</title><p>fine</p>", encoding="utf-8")
    (site / "bad.html").write_text('<!doctype html><title>bad</title><img src="missing.png"><script src="gone.js"></script>'
                                   '<script>console.error("boom")</script><script>null.x</script>'
                                   '<div class="doc-signature"><pre style="width:100px;overflow:auto">'
                                   + "x" * 200 + "</pre></div>", encoding="utf-8")
    with site_check.serve(site) as base:
        reports = site_check.browser_check(base, ["bad.html", "ok.html"], _chromium())
    bad, ok = reports
    assert [x.split()[0] for x in bad["http"]] == ["404", "404"], bad["http"]
    assert len(bad["images"]) == 1 and bad["images"][0].endswith("missing.png"), bad["images"]
    assert any("boom" in x for x in bad["console"]) and any("TypeError" in x for x in bad["console"]), bad["console"]
    assert len(bad["overflow"]) == 1, bad["overflow"]
    assert not site_check.problems([ok]), site_check.problems([ok])


def test_browser_leaves_no_process_behind():
    "Closing the browser ends its whole process group: the zygote and renderers outlived it before (6 processes per check)."
    import time
    from pathlib import Path
    def alive_in(group: int) -> list:   # processes of the group that are not zombies (PID 1 may never reap them)
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try: fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError: continue
            if int(fields[2]) == group and fields[0] != "Z": found.append(stat.parent.name)
        return found
    browser = site_check.Chromium(_chromium())
    group = browser.proc.pid
    assert browser.evaluate("1 + 1") == 2 and len(alive_in(group)) > 1
    browser.close()
    deadline = time.time() + 10
    while alive_in(group) and time.time() < deadline: time.sleep(0.1)
    assert not alive_in(group), alive_in(group)


def test_source_links_follow_source_url():
    "With settings.ini's `source_url` set, an entry's source link goes there (file and line), not into the site."
    spec = importlib.util.spec_from_file_location("docs_script", ROOT / "scripts" / "docs.py")
    docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(docs)
    from doppelnb.synth import perturb
    url = "https://github.com/OWNER/doppelnb/blob/main"
    path, line = docs.where(perturb)
    assert path == "doppelnb/synth.py" and line > 1
    assert f'href="{url}/doppelnb/synth.py#L{line}"' in docs.doc_entry(perturb, "perturb", 3, "", url)
    assert f'href="../source/doppelnb/synth.py.html#L{line}"' in docs.doc_entry(perturb, "perturb", 2, "../")
