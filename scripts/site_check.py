"""Check the built docs site the way a reader gets it: from a web server, in a browser.

    python scripts/site_check.py [SITE] [--measure 12_speedrun.html ...] [--json report.json]

`SITE` (default `_site`, built by `python scripts/docs.py site`) is served by `python -m http.server` on a free localhost
port, one folder below the server's root (as `doc_baseurl` puts it on a real host), so a link that leaves the site or
starts at the server root is a 404 here as it is there. Two checks:

- **links over HTTP** (`http_link_check`): every `href`/`src` of every page is requested from the server; a status other
  than 200, a missing `#anchor` in the target page, or a link to an unconfirmed host is reported.
- **pages in headless Chromium** (`browser_check`): every page is loaded over the Chrome DevTools protocol (a small
  client on `websocket-client`); each HTTP status ≥ 400 or failed request of any resource, each image that did not
  decode (`naturalWidth == 0`), each console error or uncaught exception, and each API signature wider than its box
  is reported. `--measure` also prints the rendered width of the page column and of each figure on the given pages.

Chromium comes from Debian: `bash scripts/setup_docs.sh` installs `chromium-headless-shell` (or `chromium`).
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_NAMES = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_HINT = ("headless Chromium not found (looked for " + ", ".join(CHROMIUM_NAMES) + " and $DOPPELNB_CHROMIUM): "
                "install it with `bash scripts/setup_docs.sh` (as root: apt-get install chromium-headless-shell)")
UNCONFIRMED_HOSTS = ("doppelnb.github.io", "github.com/doppelnb")
VIEWPORT = (1280, 900)  # a laptop browser window: the page column of mkdocs-material at this width is what figures meet


# ---------------------------------------------------------------- the server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(site: Path, mount: str = "doppelnb"):
    """Serve `site` with `python -m http.server` on a free localhost port, at `/<mount>/` (a folder of links to the
    site's files one level below the server root, as `doc_baseurl` puts it on a real host); yields the site's URL."""
    site = Path(site).resolve()
    with tempfile.TemporaryDirectory(prefix="doppelnb-serve-") as root:
        (Path(root) / mount).symlink_to(site, target_is_directory=True)
        for attempt in range(5):
            port = free_port()
            server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                       "--directory", root], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            base = f"http://127.0.0.1:{port}/{mount}/"
            for _ in range(100):
                if server.poll() is not None:
                    break  # the port was taken in between: try another
                try:
                    urllib.request.urlopen(base, timeout=2).close()
                    break
                except (urllib.error.URLError, ConnectionError, OSError):
                    time.sleep(0.05)
            if server.poll() is None:
                break
        else:
            raise RuntimeError("could not start python -m http.server on a free port")
        try:
            yield base
        finally:
            server.terminate()
            server.wait(timeout=10)


def site_pages(site: Path) -> list[str]:
    "Every HTML page of the built site, relative to it, in a stable order."
    return sorted(p.relative_to(site).as_posix() for p in Path(site).rglob("*.html"))


# ---------------------------------------------------------------- links over HTTP
class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name"):
            if a.get(key) and (key == "id" or tag == "a"):
                self.ids.add(a[key])
        for key in ("href", "src"):
            if a.get(key) and not (tag == "script" and key == "src" and a[key] == ""):
                self.links.append(a[key])


def _get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read(), r.headers.get_content_type()
    except urllib.error.HTTPError as e:
        return e.code, b"", ""


def http_link_check(base: str, pages: list[str], unconfirmed=UNCONFIRMED_HOSTS) -> list[tuple[str, str, str]]:
    """`(page, link, why)` for every link of `pages` (relative to `base`) that the server does not answer with 200,
    whose `#anchor` is not an id of the target page, that starts at the server root, or that names an unconfirmed
    host. Each target is requested once."""
    cache: dict[str, tuple[int, set | None]] = {}

    def fetch(url: str) -> tuple[int, set | None]:
        if url not in cache:
            status, body, ctype = _get(url)
            ids = None
            if status == 200 and (ctype == "text/html" or url.endswith(".html")):
                parser = _Links()
                parser.feed(body.decode("utf-8", "replace"))
                ids = parser.ids
                cache[url] = (status, ids, parser.links)
            else:
                cache[url] = (status, ids, [])
        return cache[url][:2]

    bad = []
    for page in pages:
        page_url = urljoin(base, page)
        status, _ = fetch(page_url)
        if status != 200:
            bad.append((page, page_url, f"HTTP {status}"))
            continue
        for link in cache[page_url][2]:
            u = urlsplit(link)
            if u.scheme in ("data", "javascript", "mailto", "blob"):
                continue
            if u.scheme or u.netloc:
                if any(host in link for host in unconfirmed):
                    bad.append((page, link, "unconfirmed host"))
                continue  # other hosts are not reachable from here
            if u.path.startswith("/"):
                bad.append((page, link, "root path"))
                continue
            target = urljoin(page_url, u._replace(fragment="").geturl()) if (u.path or u.query) else page_url
            status, ids = fetch(target)
            if status != 200:
                bad.append((page, link, f"HTTP {status}"))
            elif u.fragment and ids is not None and unquote(u.fragment) not in ids:
                bad.append((page, link, "missing anchor"))
    return bad


# ---------------------------------------------------------------- headless Chromium over the DevTools protocol
def find_chromium() -> str | None:
    "The headless Chromium to use: $DOPPELNB_CHROMIUM, else the first of `CHROMIUM_NAMES` on PATH."
    env = os.environ.get("DOPPELNB_CHROMIUM")
    if env:
        return env if Path(env).exists() else shutil.which(env)
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


class Chromium:
    """Headless Chromium with one tab, driven over the DevTools protocol: `call(method, **params)` sends a command and
    returns its result; events that arrive meanwhile collect in `events`."""

    def __init__(self, binary: str | None = None, viewport=VIEWPORT, timeout: float = 60):
        import websocket  # websocket-client
        binary = binary or find_chromium()
        if not binary:
            raise FileNotFoundError(INSTALL_HINT)
        self.profile = tempfile.mkdtemp(prefix="doppelnb-chromium-")
        args = [binary, "--headless", "--remote-debugging-port=0", f"--user-data-dir={self.profile}",
                f"--window-size={viewport[0]},{viewport[1]}", "--hide-scrollbars", "--no-first-run",
                "--no-default-browser-check", "--disable-gpu", "--disable-extensions", "--disable-dev-shm-usage",
                "--mute-audio", "--disable-background-networking", "--disable-component-update", "about:blank"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        # its own process group: the zygote and renderers outlive the browser process, and close() ends them all
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.time() + timeout
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace").strip().splitlines()
                self.close()
                raise RuntimeError(f"{binary} exited at start ({self.proc.returncode}): {' | '.join(err[-3:])}")
            if time.time() > deadline:
                self.close()
                raise RuntimeError(f"{binary} did not open its DevTools port within {timeout} s")
            time.sleep(0.05)
        port = int(port_file.read_text().splitlines()[0])
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
        page = next(t for t in targets if t.get("type") == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout, suppress_origin=True)
        self.timeout, self.next_id, self.events = timeout, 0, []
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=viewport[0], height=viewport[1],
                  deviceScaleFactor=1, mobile=False)

    def _recv(self, deadline: float) -> dict:
        self.ws.settimeout(max(0.05, deadline - time.time()))
        return json.loads(self.ws.recv())

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps(dict(id=self.next_id, method=method, params=params)))
        deadline = time.time() + self.timeout
        while True:
            msg = self._recv(deadline)
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_for(self, event: str, timeout: float) -> bool:
        "Collect events until `event` arrives (True) or `timeout` seconds pass (False)."
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                msg = self._recv(deadline)
            except Exception:  # websocket timeout
                return False
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == event:
                    return True
        return False

    def evaluate(self, expression: str):
        r = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"evaluate: {r['exceptionDetails'].get('text')} {r['exceptionDetails']}")
        return r["result"].get("value")

    def close(self):
        try:
            if getattr(self, "ws", None):
                self.ws.close()
        finally:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.kill_group()
            shutil.rmtree(self.profile, ignore_errors=True)

    def kill_group(self):
        "End every process left in the browser's group (orphaned renderers and the zygote)."
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# Run in each page after its load event: every image loads eagerly (lazy ones are below the fold), then report
# images that did not decode, API signatures wider than their box, the page column's width and each figure's size.
PAGE_PROBE = r"""
(async () => {
  const imgs = [...document.images];
  imgs.forEach(i => { if (i.loading === 'lazy') i.loading = 'eager'; });
  await Promise.race([
    Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; }))),
    new Promise(r => setTimeout(r, 10000))]);
  const short = s => s.length > 120 ? s.slice(0, 117) + '...' : s;
  const broken = imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => short(i.currentSrc || i.src));
  const sigs = [...document.querySelectorAll('.doc-signature pre, .jp-OutputArea-output.jp-RenderedMarkdown .highlight pre')];
  const wide = el => el && el.scrollWidth > el.clientWidth + 1;  // the box scrolls: its pre, or the code inside it
  const overflow = sigs.filter(p => wide(p) || wide(p.querySelector(':scope > code')))
                       .map(p => { const el = wide(p) ? p : p.querySelector(':scope > code');
                                   return [short(p.textContent.trim().split('\n')[0]), el.scrollWidth, el.clientWidth]; });
  const column = document.querySelector('.md-content__inner');
  const figures = imgs.filter(i => i.src.startsWith('data:image/png') || /\.png$/.test(i.src)).map(i => {
    const cell = i.closest('[id^="cell-id="]');
    return {cell: cell ? cell.id.replace('cell-id=', '') : '', natural: [i.naturalWidth, i.naturalHeight],
            box: i.parentElement.clientWidth,
            rendered: [Math.round(i.getBoundingClientRect().width), Math.round(i.getBoundingClientRect().height)]};
  });
  return {broken, overflow, figures, signatures: sigs.length,
          column: column ? Math.round(column.getBoundingClientRect().width) : null,
          height: document.documentElement.scrollHeight};
})()
"""


def _is_error_log(entry: dict) -> bool:
    # failed resources are reported from the Network events (with their URL and status), not twice
    return entry.get("level") == "error" and entry.get("source") != "network"


def load_page(browser: Chromium, url: str, timeout: float = 60) -> dict:
    """Load `url` in `browser`; return its problems (`http` statuses ≥ 400 and failed requests, `images` that did not
    decode, `console` errors and exceptions, `overflow` signatures) and measurements (`column`, `figures`, `height`)."""
    browser.events.clear()
    browser.call("Page.navigate", url=url)
    if not browser.wait_for("Page.loadEventFired", timeout):
        return dict(url=url, http=[], images=[], console=[f"no load event within {timeout} s"], overflow=[],
                    figures=[], column=None, height=None)
    probe = browser.evaluate(PAGE_PROBE)
    browser.wait_for("__settle__", 0.2)  # let late requests (lazy images, search index) report
    urls, http, console = {}, [], []
    for ev in browser.events:
        m, p = ev["method"], ev["params"]
        if m == "Network.requestWillBeSent":
            urls[p["requestId"]] = p["request"]["url"]
        elif m == "Network.responseReceived" and p["response"]["status"] >= 400:
            http.append(f"{p['response']['status']} {p['response']['url']}")
        elif m == "Network.loadingFailed" and not p.get("canceled"):
            http.append(f"{p.get('errorText', 'failed')} {urls.get(p['requestId'], '?')}")
        elif m == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            console.append("exception: " + (d.get("exception", {}).get("description") or d.get("text", "")).split("\n")[0])
        elif m == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
            console.append(f"console.{p['type']}: " + " ".join(str(a.get("value", a.get("description", "")))
                                                              for a in p.get("args", [])))
        elif m == "Log.entryAdded" and _is_error_log(p["entry"]):
            console.append(f"{p['entry']['source']}: {p['entry']['text']}")
    return dict(url=url, http=sorted(set(http)), images=probe["broken"], console=console, overflow=probe["overflow"],
                figures=probe["figures"], column=probe["column"], height=probe["height"],
                signatures=probe["signatures"])


def browser_check(base: str, pages: list[str], binary: str | None = None) -> list[dict]:
    "`load_page` of every page of `pages` (relative to `base`) in one headless Chromium."
    with Chromium(binary) as browser:
        return [dict(load_page(browser, urljoin(base, page)), page=page) for page in pages]


def problems(reports: list[dict]) -> list[str]:
    "One line per problem of `browser_check`'s reports."
    lines = []
    for r in reports:
        lines += [f"{r['page']}: HTTP {x}" for x in r["http"]]
        lines += [f"{r['page']}: broken image {x}" for x in r["images"]]
        lines += [f"{r['page']}: console {x}" for x in r["console"]]
        lines += [f"{r['page']}: signature {w} px wide in a {c}-px box: {s}" for s, w, c in r["overflow"]]
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("site", nargs="?", default=str(ROOT / "_site"))
    p.add_argument("--measure", nargs="*", default=[], help="pages whose column and figure sizes to print")
    p.add_argument("--json", help="write the full report here")
    a = p.parse_args(argv)
    site = Path(a.site)
    pages = site_pages(site)
    start = time.time()
    with serve(site) as base:
        links = http_link_check(base, pages)
        t_links = time.time() - start
        reports = browser_check(base, pages)
    found = problems(reports)
    for page in a.measure:
        r = next(r for r in reports if r["page"] == page)
        print(f"{page}: page column {r['column']} px wide, page {r['height']} px tall at a {VIEWPORT[0]}-px window")
        for f in r["figures"]:
            print(f"  figure in cell {f['cell']}: {f['natural'][0]}×{f['natural'][1]} px PNG, "
                  f"shown {f['rendered'][0]}×{f['rendered'][1]} px in a {f['box']}-px output box")
    tall = max(reports, key=lambda r: r["height"] or 0)
    print(f"{len(pages)} pages: {len(links)} broken links over HTTP ({t_links:.0f} s); in Chromium "
          f"{sum(len(r['http']) for r in reports)} failed requests, {sum(len(r['images']) for r in reports)} broken "
          f"images, {sum(len(r['console']) for r in reports)} console errors, "
          f"{sum(len(r['overflow']) for r in reports)} of {sum(r['signatures'] for r in reports)} signatures overflow; "
          f"tallest page {tall['page']} {tall['height']} px ({time.time() - start:.0f} s)")
    for line in [f"{p}: {why} {link}" for p, link, why in links][:40] + found[:60]:
        print("  " + line)
    if a.json:
        Path(a.json).write_text(json.dumps(dict(links=links, pages=reports), indent=1), encoding="utf-8")
    sys.exit(1 if links or found else 0)


if __name__ == "__main__":
    main()
