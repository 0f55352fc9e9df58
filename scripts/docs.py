"""Build doppelnb's documentation without quarto, and keep README.md in sync with nbs/index.ipynb.

    python scripts/docs.py site [--out _site]   # static HTML site from the notebooks (mkdocs-material + mkdocs-jupyter)
    python scripts/docs.py readme [--check]     # README.md (+ its figures) from nbs/index.ipynb

nbdev's own `nbdev_docs` needs quarto, which cannot be installed from the package registries. Its notebook
processing does not: `nbdev.serve.proc_nbs` turns exported cells into API docs (`show_doc`), drops `#| hide`
cells and writes the processed notebooks to `_proc/`. We render those with a PyPI renderer instead of quarto.
On a machine with quarto, `nbdev_docs` uses nbs/_quarto.yml and nbs/nbdev.yml as usual.

The site holds up on any web server: one API page per module (`api/<module>.html`: signatures that wrap, a
parameter table per entry with docments comments), the package's files under `source/` (each entry's "source" links
its line there, or at settings.ini's `source_url` when set), relative links only. `python scripts/site_check.py`
serves it and checks every link over HTTP and every page in headless Chromium (tests/test_docs.py does the same).
"""
from __future__ import annotations

import argparse
import base64
import configparser
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / "nbs"
README = ROOT / "README.md"
README_ASSETS = ROOT / "assets" / "readme"
DIRECTIVE = re.compile(r"^\s*#\s*\|\s*(.*)$")
QUARTO_ATTRS = re.compile(r"\{target=[^}]*\}")


def settings() -> configparser.SectionProxy:
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini", encoding="utf-8")
    return cfg["DEFAULT"]


def notebooks() -> list[Path]:
    "Notebooks in reading order: index first, then by file name."
    nbs = sorted(p for p in NBS.glob("*.ipynb") if not p.name.startswith(("_", ".")))
    return sorted(nbs, key=lambda p: (p.name != "index.ipynb", p.name))


def split_directives(source: str) -> tuple[dict, str]:
    "Leading `#| key: value` directives of a cell, and the source without them."
    lines, directives = source.splitlines(), {}
    while lines and DIRECTIVE.match(lines[0]):
        body = DIRECTIVE.match(lines[0]).group(1)
        key, _, value = body.partition(":") if ":" in body else (body.split(" ")[0], "", body.partition(" ")[2])
        directives[key.strip()] = value.strip()
        lines.pop(0)
    return directives, "\n".join(lines)


def frontmatter(nb: dict) -> dict:
    "The title and description nbdev reads from a notebook's first `# Title` / `> description` markdown cell."
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            text = "".join(cell["source"])
            title = re.search(r"^#\s+(.+)$", text, re.M)
            desc = re.search(r"^>\s*(.+)$", text, re.M)
            return dict(title=title.group(1).strip() if title else "", description=desc.group(1).strip() if desc else "")
    return dict(title="", description="")


# ---------------------------------------------------------------- README
def build_readme(check: bool = False) -> bool:
    """Write README.md from nbs/index.ipynb: markdown cells as they are, code cells as ```python blocks (unless
    `#| echo: false`), text outputs as ``` blocks, PNG outputs as files under assets/readme/. With `check`, compare only."""
    nb = json.loads((NBS / "index.ipynb").read_text(encoding="utf-8"))
    parts, images = [], {}
    for cell in nb["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            parts.append(source.strip())
            continue
        if cell["cell_type"] != "code":
            continue
        directives, code = split_directives(source)
        if "hide" in directives or "export" in directives or "default_exp" in directives:
            continue
        if directives.get("echo") != "false" and code.strip():
            parts.append(f"```python\n{code.strip()}\n```")
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "image/png" in data:
                png = base64.b64decode("".join(data["image/png"]))
                name = f"figure-{hashlib.sha256(png).hexdigest()[:12]}.png"
                images[name] = png
                parts.append(f"![](assets/readme/{name})")
            elif out.get("output_type") == "stream" and out.get("name") == "stdout":
                parts.append("```\n" + "".join(out["text"]).rstrip() + "\n```")
            elif "text/markdown" in data:
                parts.append("".join(data["text/markdown"]).strip())
            elif "text/plain" in data and "text/html" not in data:
                parts.append("```\n" + "".join(data["text/plain"]).rstrip() + "\n```")
    text = "<!-- Generated from nbs/index.ipynb by `python scripts/docs.py readme`: edit the notebook, not this file. -->\n\n"
    text += "\n\n".join(p for p in parts if p) + "\n"
    old_images = {p.name: p.read_bytes() for p in README_ASSETS.glob("*.png")} if README_ASSETS.exists() else {}
    in_sync = README.exists() and README.read_text(encoding="utf-8") == text and old_images == images
    if check:
        return in_sync
    README.write_text(text, encoding="utf-8")
    README_ASSETS.mkdir(parents=True, exist_ok=True)
    for name in set(old_images) - set(images):
        (README_ASSETS / name).unlink()
    for name, png in images.items():
        (README_ASSETS / name).write_bytes(png)
    return True


# ---------------------------------------------------------------- site
SHOW_DOC = re.compile(r"^\s*---\s*\n+\[source\]\(([^)]*)\)\s*\n+(#+)\s+(\S+)")
MODULE_FILE = re.compile(r"(?:^|/)(doppelnb/\w+\.py)(?:#L(\d+))?$")
SIGNATURE_WIDTH = 76  # characters: a longer signature is written one parameter per line


def process_notebooks(proc: Path, source_url: str = "") -> list[Path]:
    """Run nbdev's notebook processors (API docs from exported cells, hidden cells dropped) into `proc`; each
    `show_doc` output is written again by `doc_entry` (source link to the line, signature, parameter table)."""
    from nbdev.serve import proc_nbs
    shutil.rmtree(ROOT / "_proc", ignore_errors=True)
    proc_nbs(str(NBS), n_workers=0, force=True)
    shutil.rmtree(proc, ignore_errors=True)
    proc.mkdir(parents=True)
    pages = []
    for src in notebooks():
        processed = ROOT / "_proc" / src.name
        nb = json.loads(processed.read_text(encoding="utf-8"))
        meta = frontmatter(json.loads(src.read_text(encoding="utf-8")))
        cells = []
        for cell in nb["cells"]:
            source = "".join(cell["source"])
            if cell["cell_type"] == "raw" and source.startswith("---"):
                continue  # quarto front matter: replaced by the heading below
            if cell["cell_type"] == "code":
                directives, code = split_directives(source)
                cell["source"] = code
                tags = cell.setdefault("metadata", {}).setdefault("tags", [])
                if directives.get("echo") == "false":
                    tags.append("remove_input")
                if not code.strip() and not cell.get("outputs"):
                    continue
                for out in cell.get("outputs", []):  # show_doc writes quarto link attributes: {target="_blank" ...}
                    if "text/markdown" in out.get("data", {}):
                        md = QUARTO_ATTRS.sub("", "".join(out["data"]["text/markdown"]))
                        out["data"]["text/markdown"] = rewrite_show_doc(md, source_url)
            cells.append(cell)
        header = f"# {meta['title']}\n\n" + (f"> {meta['description']}\n" if meta["description"] else "")
        cells.insert(0, dict(cell_type="markdown", metadata={}, source=header))
        # drop nbdev's "autogenerated" warning cell
        cells = [c for c in cells if not (c["cell_type"] == "markdown" and "AUTOGENERATED" in "".join(c["source"]))]
        nb["cells"] = cells
        out = proc / src.name
        out.write_text(json.dumps(nb), encoding="utf-8")
        pages.append(out)
    return pages


def rewrite_show_doc(md: str, source_url: str = "") -> str:
    "A `show_doc` output (`---`, `[source](…)`, `### name`, …) written by `doc_entry`; other markdown as it is."
    m = SHOW_DOC.match(md)
    f = MODULE_FILE.search(m.group(1)) if m else None
    if not f:
        return md
    name = m.group(3).replace("\\", "")
    obj = resolve(f.group(1)[:-3].replace("/", "."), name)
    return md if obj is None else "---\n\n" + doc_entry(obj, name, len(m.group(2)), "", source_url)


def resolve(module_name: str, name: str):
    "`module.name` (`name` may be `Class.method`), or None."
    import importlib
    try:
        obj = importlib.import_module(module_name)
        for part in name.split("."):
            obj = getattr(obj, part)
        return obj
    except (ImportError, AttributeError):
        return None


def where(obj) -> tuple[str, int] | None:
    "`(path in the repository, first line)` of `obj`'s definition when it is a file of the clone, else None."
    import inspect
    try:
        obj = inspect.unwrap(obj)  # a decorated function (contextmanager, cache): where its own code is
        file = Path(inspect.getsourcefile(obj)).resolve()
        line = inspect.getsourcelines(obj)[1]
        return file.relative_to(ROOT).as_posix(), line
    except (TypeError, OSError, ValueError):
        return None


def source_href(path: str, line: int | None, prefix: str, source_url: str = "") -> str:
    """Link to `path` (e.g. `doppelnb/synth.py`) at `line`: at `source_url` (settings.ini) if set, else its highlighted
    page under the site's `source/` (`prefix` leads from the linking page to the site root)."""
    anchor = f"#L{line}" if line else ""
    return f"{source_url}/{path}{anchor}" if source_url else f"{prefix}source/{path}.html{anchor}"


def _annotation(a) -> str:
    import inspect
    if a is inspect.Parameter.empty or a is inspect.Signature.empty:
        return ""
    text = a if isinstance(a, str) else inspect.formatannotation(a)  # strings: as written (postponed annotations)
    return text.replace("torch._C.", "torch.").replace("NoneType", "None")


def _source_defaults(obj) -> dict:
    "`{parameter: its default as written in the source}` of a function, a class's `__init__` or a dataclass's fields."
    import ast
    import inspect
    import textwrap
    try:
        src = textwrap.dedent(inspect.getsource(obj))
        node = ast.parse(src).body[0]
    except (TypeError, OSError, SyntaxError, IndexError):
        return {}
    found = {}
    if isinstance(node, ast.ClassDef):
        init = next((n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                     and n.name == "__init__"), None)
        if init is None:  # a dataclass: its fields (`field(...)` and the like: their value, from `dataclass_fields`)
            for n in node.body:
                if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) and n.value is not None \
                        and not isinstance(n.value, ast.Call):
                    found[n.target.id] = ast.get_source_segment(src, n.value)
        node = init
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        a = node.args
        positional = a.posonlyargs + a.args
        for arg, d in zip(positional[len(positional) - len(a.defaults):], a.defaults):
            found[arg.arg] = ast.get_source_segment(src, d)
        for arg, d in zip(a.kwonlyargs, a.kw_defaults):
            if d is not None:
                found[arg.arg] = ast.get_source_segment(src, d)
    return {k: " ".join(v.split()) if "\n" in v else v for k, v in found.items() if v}


def _short_repr(value, width: int = 60) -> str:
    text = repr(value).replace("torch._C.", "torch.")
    return text if len(text) <= width else text[:width - 1] + "…"


def dataclass_fields(obj) -> dict:
    "`{field: (default, help)}` of a dataclass: the value a default factory makes, the `help` of the field's metadata."
    import dataclasses
    if not (isinstance(obj, type) and dataclasses.is_dataclass(obj)):
        return {}
    found = {}
    for f in dataclasses.fields(obj):
        default = f.default if f.default is not dataclasses.MISSING else \
            f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING
        found[f.name] = (default, str(f.metadata.get("help", "")))
    return found


def parameters(obj) -> tuple[list[dict], dict | None] | None:
    """`obj`'s parameters as table rows (`name` with its `*`/`**`; `type` and `default` as written in the source,
    `shown_type` the type or else that of a plain default (as nbdev infers it); `comment`: the docments comment, or a
    dataclass field's `help`) and its return row (`type`, `comment`; None if neither); None without a signature."""
    import inspect
    from fastcore.docments import docments
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    defaults, fields = _source_defaults(obj), dataclass_fields(obj)
    try:
        comments = {k: (v or {}).get("docment") or "" for k, v in docments(obj, full=True).items()}
    except Exception:  # no source to read comments from
        comments = {}
    rows, params = [], list(sig.parameters.values())
    if params and params[0].name in ("self", "cls") and not inspect.isclass(obj):
        params = params[1:]  # a method read from its class
    for p in params:
        star = {p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "")
        value, help_text = fields.get(p.name, (p.default, ""))
        default = "" if p.default is p.empty else defaults.get(p.name) or _short_repr(value)
        anno = _annotation(p.annotation)
        inferred = type(p.default).__name__ if not anno and type(p.default) in (int, float, str, bool) else ""
        rows.append(dict(name=star + p.name, kind=p.kind, type=anno, shown_type=anno or inferred, default=default,
                         comment=comments.get(p.name) or help_text, required=p.default is p.empty and not star))
    if inspect.isclass(obj):  # a class's signature is its __init__'s: its `-> None` says nothing
        return rows, None
    ret = dict(type=_annotation(sig.return_annotation), comment=comments.get("return", ""))
    return rows, (ret if ret["type"] or ret["comment"] else None)


def signature_text(name: str, kind: str, params) -> str:
    """`def name(a: int = 1, *, b=None) -> str`, with one parameter per line when longer than `SIGNATURE_WIDTH`."""
    import inspect
    head = f"{kind} {name}".strip()
    if params is None:
        return head
    rows, ret = params
    parts, pos_only, kw_sep = [], False, True
    for r in rows:
        if r["kind"] == inspect.Parameter.POSITIONAL_ONLY:
            pos_only = True
        elif pos_only:
            parts.append("/")
            pos_only = False
        if r["kind"] == inspect.Parameter.VAR_POSITIONAL:
            kw_sep = False
        elif r["kind"] == inspect.Parameter.KEYWORD_ONLY and kw_sep:
            parts.append("*")
            kw_sep = False
        text = r["name"] + (f": {r['type']}" if r["type"] else "")
        parts.append(text + ((" = " if r["type"] else "=") + r["default"] if r["default"] else ""))
    if pos_only:
        parts.append("/")
    tail = f" -> {ret['type']}" if ret and ret["type"] else ""
    line = f"{head}({', '.join(parts)}){tail}"
    if len(line) <= SIGNATURE_WIDTH or not parts:
        return line
    return f"{head}(\n" + "".join(f"    {p},\n" for p in parts) + f"){tail}"


def highlight(code: str) -> str:
    "Python `code` as HTML with pygments' token classes (the themes colour them), without a wrapper."
    from pygments import highlight as pyg
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer
    return pyg(code, PythonLexer(), HtmlFormatter(nowrap=True)).rstrip("\n")


def _inline(text: str) -> str:
    "A docments comment as HTML: escaped, with `code` spans."
    import html
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text, quote=False))


def params_table(params) -> str:
    "The parameter table of an entry (one HTML block), or '' when it has no parameters and no return annotation."
    import html
    if not params or not (params[0] or params[1]):
        return ""
    rows, ret = params
    code = lambda s: f"<code>{html.escape(s, quote=False)}</code>" if s else ""
    body = [f"<tr><td>{code(r['name'])}</td><td>{code(r['shown_type'])}</td>"
            f"<td>{'<em>required</em>' if r['required'] else code(r['default'])}</td><td>{_inline(r['comment'])}</td></tr>"
            for r in rows]
    if ret:
        body.append(f'<tr class="doc-return"><td><em>returns</em></td><td>{code(ret["type"])}</td><td></td>'
                    f"<td>{_inline(ret['comment'])}</td></tr>")
    return ('<table class="doc-params"><thead><tr><th>parameter</th><th>type</th><th>default</th><th>details</th>'
            "</tr></thead><tbody>" + "".join(body) + "</tbody></table>")


def _own_doc(obj) -> str:
    "`obj`'s own docstring (none inherited; not the signature a dataclass writes when it has none)."
    import dataclasses
    import inspect
    doc = inspect.cleandoc(obj.__doc__ or "") if isinstance(getattr(obj, "__doc__", None), str) else ""
    if inspect.isclass(obj) and dataclasses.is_dataclass(obj) and doc.startswith(obj.__name__ + "("):
        return ""
    return doc.strip()


def _base_names(cls) -> list[str]:
    names = []
    for b in cls.__bases__:
        if b is object:
            continue
        module = b.__module__
        if module.startswith("torch.nn.modules"):
            module = "torch.nn"
        names.append(b.__qualname__ if module in ("builtins", cls.__module__) else f"{module}.{b.__qualname__}")
    return names


def doc_entry(obj, name: str, level: int, prefix: str, source_url: str = "", anchor: bool = False) -> str:
    """Markdown (with HTML blocks) documenting `obj`: a heading, the link to its source line, its signature (wrapping),
    its docstring and its parameter table. `prefix` leads from the page to the site root; `anchor` gives the heading
    the id `name` (Python-Markdown's attr_list)."""
    import html
    import inspect
    kind = "class" if inspect.isclass(obj) else "def" if inspect.isfunction(obj) or inspect.ismethod(obj) else ""
    params = parameters(obj)
    heading = "#" * level + (f" `{name}` {{ #{name} }}" if anchor else f" {name}")
    parts = [heading]
    loc = where(obj)
    if loc and loc[0].startswith("doppelnb/"):
        parts.insert(0, f'<p class="doc-source"><a href="{html.escape(source_href(*loc, prefix, source_url))}">'
                        "source</a></p>")
    parts.append(f'<div class="doc-signature highlight"><pre><code>{highlight(signature_text(name.split(".")[-1], kind, params))}'
                 "</code></pre></div>")
    if inspect.isclass(obj) and _base_names(obj):
        parts.append("Subclass of " + ", ".join(f"`{b}`" for b in _base_names(obj)) + ".")
    doc = _own_doc(obj)
    if doc:
        parts.append(doc)
    table = params_table(params)
    if table:
        parts.append(table)
    return "\n\n".join(parts) + "\n"


def constant_entry(module, name: str, level: int, prefix: str, source_url: str = "", max_lines: int = 24) -> str:
    "Markdown for an exported value: its assignment as written in the module (first `max_lines` lines) and source link."
    import ast
    import html
    import inspect
    import pprint
    text, line = None, None
    try:
        src = inspect.getsource(module)
        for node in ast.parse(src).body:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
            targets = [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]  # A, B = …
            if any(isinstance(t, ast.Name) and t.id == name for t in targets) and node.value is not None:
                text, line = ast.get_source_segment(src, node), node.lineno
    except (OSError, TypeError, SyntaxError):
        pass
    if text is None:
        text = f"{name} = " + pprint.pformat(getattr(module, name), width=SIGNATURE_WIDTH, sort_dicts=False)
    lines = text.splitlines()
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"# … {len(lines) - max_lines} more lines in the source"]
    parts = ["#" * level + f" `{name}` {{ #{name} }}"]
    path = Path(inspect.getsourcefile(module)).resolve().relative_to(ROOT).as_posix()
    parts.insert(0, f'<p class="doc-source"><a href="{html.escape(source_href(path, line, prefix, source_url))}">'
                    "source</a></p>")
    parts.append(f'<div class="doc-signature highlight"><pre><code>{highlight(chr(10).join(lines))}</code></pre></div>')
    return "\n\n".join(parts) + "\n"


def _torch_module_method(name: str) -> bool:
    import torch.nn
    return hasattr(torch.nn.Module, name)


def api_pages(proc: Path, source_url: str = "") -> list:
    """One page per module of doppelnb under `proc/api/` (every exported name: source link, signature, docstring,
    parameter table; a class's own public methods below it) and `api/index.md` listing them; returns the nav entries."""
    import importlib
    import inspect
    from doppelnb._modidx import d  # the modules nbdev exported
    api = proc / "api"
    api.mkdir(parents=True, exist_ok=True)
    nbs = {re.sub(r"^\d+[a-z]?_", "", p.stem): p for p in notebooks()}
    index = ["# API reference", "", "Everything `doppelnb` exports, one page per module. Each module is generated from "
             "one notebook: follow its link for the prose, examples and tests.", "",
             "| module | notebook | names | what it does |", "|---|---|---|---|"]
    nav = ["api/index.md"]
    for module_name in sorted(d["syms"]):
        module = importlib.import_module(module_name)
        short = module_name.split(".", 1)[1]
        nb = nbs.get(Path(inspect.getsourcefile(module)).stem)
        names = list(getattr(module, "__all__", []))
        summary = (module.__doc__ or "").strip().split("\n")[0]
        lines = [f"# `{module_name}`", ""]
        if summary:
            lines += [f"> {summary}", ""]
        src_path = Path(inspect.getsourcefile(module)).resolve().relative_to(ROOT).as_posix()
        lines += [("Exported from " + (f"[nbs/{nb.name}](../{nb.name}) (prose, examples, tests) · " if nb else "")
                   + f'<a href="{source_href(src_path, None, "../", source_url)}">source file</a>.'), ""]
        for name in names:
            obj = getattr(module, name)
            if not callable(obj):
                lines.append(constant_entry(module, name, 2, "../", source_url))
                continue
            lines.append(doc_entry(obj, name, 2, "../", source_url, anchor=True))
            if inspect.isclass(obj):
                for meth_name, meth in inspect.getmembers(obj, inspect.isfunction):
                    if meth_name.startswith("_") or meth.__qualname__.split(".")[0] != obj.__name__:
                        continue
                    if not _own_doc(meth) and _torch_module_method(meth_name):
                        continue  # an undocumented override of a torch method (forward, extra_repr): nothing to add
                    lines.append(doc_entry(meth, f"{name}.{meth_name}", 3, "../", source_url, anchor=True))
        (api / f"{short}.md").write_text("\n".join(lines), encoding="utf-8")
        nb_link = f"[{nb.stem}](../{nb.name})" if nb else ""
        index.append(f"| [`{module_name}`]({short}.md) | {nb_link} | {len(names)} | {summary.replace('|', '/')} |")
        nav.append({module_name: f"api/{short}.md"})
    (api / "index.md").write_text("\n".join(index) + "\n", encoding="utf-8")
    return nav


def source_pages(out: Path, cfg) -> list[Path]:
    """The exported modules in the site: `source/doppelnb/<module>.py` (the file) and `<module>.py.html` (highlighted,
    line `n` at the anchor `#Ln`), and `source/index.html` listing them. The API entries link their lines here."""
    import html
    from pygments.formatters import HtmlFormatter
    folder = out / "source" / "doppelnb"
    folder.mkdir(parents=True, exist_ok=True)
    nb_of = {}
    for nb in notebooks():
        m = re.search(r"#\s*\|\s*default_exp\s+([\w.]+)", nb.read_text(encoding="utf-8"))
        if m:
            nb_of[m.group(1)] = nb
    style = HtmlFormatter().get_style_defs(".highlight") + """
body{margin:0;font:14px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",Helvetica,Arial,sans-serif;color:#222}
header{position:sticky;top:0;background:#f5f5f5;border-bottom:1px solid #ddd;padding:.5em 1em}
a{color:#3f51b5} pre{margin:0;padding:.5em 0;font:13px/1.4 "DejaVu Sans Mono",Menlo,Consolas,monospace}
.line{display:block;scroll-margin-top:4em;padding-right:1em;white-space:pre-wrap;overflow-wrap:anywhere;padding-left:6.5ch;text-indent:-6.5ch}
.line:target{background:#fff3b0} .ln{display:inline-block;width:5ch;margin-right:1.5ch;text-align:right;color:#999;
text-indent:0;text-decoration:none;user-select:none}"""
    written = []
    files = sorted(p for p in (ROOT / "doppelnb").glob("*.py") if p.name != "_modidx.py")
    for py in files:
        text = py.read_text(encoding="utf-8")
        shutil.copyfile(py, folder / py.name)
        rows = [f'<span class="line" id="L{i}"><a class="ln" href="#L{i}">{i}</a>{line}</span>'
                for i, line in enumerate(highlight(text).split("\n"), 1)]
        nb = nb_of.get(py.stem)
        where_from = (f' · exported from <a href="../../{nb.stem}.html">nbs/{nb.name}</a> (edit the notebook, not this '
                      "file)" if nb else "")
        api = f' · <a href="../../api/{py.stem}.html">API reference</a>' if nb else ""
        page = (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">'
                f"<title>doppelnb/{py.name} · {html.escape(cfg['title'])}</title><style>{style}</style></head>\n"
                f'<body><header><a href="../../index.html">{html.escape(cfg["title"])}</a> / '
                f'<a href="../index.html">source</a> / <b>doppelnb/{py.name}</b>{where_from}{api}'
                f' · <a href="{py.name}">raw file</a></header>\n'
                f'<pre class="highlight"><code>' + "".join(rows) + "</code></pre></body></html>\n")
        (folder / f"{py.name}.html").write_text(page, encoding="utf-8")
        written.append(folder / f"{py.name}.html")
    items = "".join(f'<li><a href="doppelnb/{p.name}.html">doppelnb/{p.name}</a> (<a href="doppelnb/{p.name}">raw</a>)</li>'
                    for p in files)
    (out / "source" / "index.html").write_text(
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>source · {html.escape(cfg["title"])}</title>'
        f'<style>body{{font:15px/1.5 sans-serif;margin:2em}}</style></head><body><p><a href="../index.html">'
        f'{html.escape(cfg["title"])}</a> / source</p><h1>The package\'s source</h1><p>Exported from the notebooks by nbdev '
        f"(edit the notebooks, not these files).</p><ul>{items}</ul></body></html>\n", encoding="utf-8")
    return written


def build_site(out: Path) -> Path:
    "Render the processed notebooks, the API pages and the source files into a static site at `out`."
    cfg = settings()
    source_url = cfg.get("source_url", "").strip().rstrip("/")
    proc = ROOT / "_proc" / "site"
    pages = process_notebooks(proc, source_url)
    api_nav = api_pages(proc, source_url)
    shutil.copyfile(NBS / "styles.css", proc / "styles.css")
    nav = []
    for page in pages:
        meta = frontmatter(json.loads((NBS / page.name).read_text(encoding="utf-8")))
        nav.append({("Home" if page.stem == "index" else meta["title"] or page.stem): page.name})
    nav.append({"API reference": api_nav})
    mkdocs_yml = {
        "site_name": cfg["title"], "site_description": cfg["description"], "use_directory_urls": False,
        "docs_dir": str(proc), "site_dir": str(out.resolve()), "extra_css": ["styles.css"],
        "theme": {"name": "material", "font": False,
                  "features": ["navigation.sections", "navigation.indexes", "content.code.copy"]},
        "plugins": [{"search": {}}, {"mkdocs-jupyter": {"include": ["*.ipynb"], "execute": False, "include_source": False,
                                                         "remove_tag_config": {"remove_input_tags": ["remove_input"]},
                                                         "include_requirejs": False, "ignore_h1_titles": False,
                                                         "no_prompt": True}}],
        "markdown_extensions": ["admonition", "tables", "fenced_code", "toc", "attr_list", "md_in_html"],
        "nav": nav,
    }
    if source_url:  # else no confirmed public address: the site carries the source files itself (source/)
        mkdocs_yml["repo_url"] = source_url
    config = ROOT / "_proc" / "mkdocs.yml"
    config.write_text(json.dumps(mkdocs_yml, indent=1), encoding="utf-8")  # JSON is valid YAML
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--quiet", "--clean", "-f", str(config)], check=True, cwd=ROOT)
    source_pages(out, cfg)
    fix_links(out, cfg)
    return out


def page_of_module() -> dict:
    """`{name in nbdev's links: local page}`: each notebook's `#| default_exp` module and its name without the number
    (nbdev links `06_eval` as `eval.html`), e.g. `{'evaluate': '06_eval.html', 'eval': '06_eval.html'}`."""
    pages = {}
    for nb in notebooks():
        pages[re.sub(r"^\d+[a-z]?_", "", nb.stem)] = f"{nb.stem}.html"
    for nb in notebooks():
        m = re.search(r"#\s*\|\s*default_exp\s+([\w.]+)", nb.read_text(encoding="utf-8"))
        if m:
            pages[m.group(1)] = f"{nb.stem}.html"
    return pages


def module_of_page() -> dict:
    "`{notebook page: the module it exports}`, e.g. `{'06_eval.html': 'evaluate'}`."
    found = {}
    for nb in notebooks():
        m = re.search(r"#\s*\|\s*default_exp\s+([\w.]+)", nb.read_text(encoding="utf-8"))
        if m:
            found[f"{nb.stem}.html"] = m.group(1)
    return found


def fix_links(out: Path, cfg) -> None:
    """Make the built site work from any web server: nbdev's cross-references to `doc_host` point at the local pages,
    links to the package's files at `source_url` (settings.ini) or else at the site's copy under `source/`, the 404
    page uses relative paths, table-of-contents anchors match the ids of headings that contain code, and annotations
    nbdev could not read show no `NoneType`."""
    import os
    out = out.resolve()
    host = (cfg["doc_host"].rstrip("/") + "/" + cfg["doc_baseurl"].strip("/")).rstrip("/")
    pages, modules = page_of_module(), module_of_page()
    source = cfg.get("source_url", "").strip().rstrip("/")
    git_url = cfg["git_url"].rstrip("/")
    blob = re.compile(re.escape(git_url) + r"/(?:blob|tree)/" + re.escape(cfg.get("branch", "main")) + r"/([^\"'#\s]*)(?:#L(\d+))?")
    cross = re.compile(re.escape(host) + r"/([\w.]+)\.html")
    texts = {}
    for page in out.rglob("*.html"):
        if page.is_relative_to(out / "source"):
            continue  # written by source_pages, links relative already
        html = page.read_text(encoding="utf-8")
        prefix = "" if page.parent == out else Path(os.path.relpath(out, page.parent)).as_posix() + "/"
        html = cross.sub(lambda m: prefix + pages.get(m.group(1), "api/index.html"), html)

        def to_source(m):
            path, line = m.group(1), m.group(2)
            if source:
                return f"{source}/{path}" + (f"#L{line}" if line else "")
            if MODULE_FILE.search(path):
                return source_href(path, line, prefix)
            return f"{prefix}source/index.html"  # no public address, and the site carries only the package
        html = blob.sub(to_source, html)
        html = html.replace(git_url + '"', (source or f"{prefix}source/index.html") + '"')
        if page.name == "404.html":  # served at any missing path: links relative to the site root, as it is
            html = re.sub(r'(href|src)="/(?!/)', r'\1="./', html)
            html = html.replace('"base": "/"', '"base": "."').replace('"search": "/', '"search": "')
        html = re.sub(r'<span class="p">:</span>\s*<span class="n">NoneType</span>', "", html)
        html = re.sub(r"<td[^>]*>\s*NoneType\s*</td>", "<td></td>", html)
        texts[page] = html.replace("torch._C.Generator", "torch.Generator")
    ids = {page: set(re.findall(r'\bid="([^"]+)"', html)) for page, html in texts.items()}
    for page, html in texts.items():
        def anchor(m):
            target, name = m.group(1), m.group(2)
            known = ids.get((page.parent / target).resolve() if target else page, set())
            if name in known:
                return m.group(0)
            close = sorted(i for i in known if i.endswith("-" + name) or i.startswith(name + "-"))
            if not close:  # a heading whose code was dropped from the slug: the id holding all its words
                close = sorted(i for i in known if len(name) > 8 and set(name.split("-")) <= set(i.split("-")))
            if not close and "." in name and name.split(".")[0] in known:  # a method: its class's entry
                close = [name.split(".")[0]]
            target_page = (page.parent / target).resolve() if target else page
            api = out / "api" / f"{modules.get(target_page.name, '')}.html"
            if not close and target_page.parent == out and name in ids.get(api, set()):
                # a name the notebook exports without showing it: its entry in the module's API page
                return f'href="{Path(os.path.relpath(api, page.parent)).as_posix()}#{name}"'
            return f'href="{target}#{close[0]}"' if close else m.group(0)
        page.write_text(re.sub(r'href="([\w./-]*?\.html|)#([^"]+)"', anchor, html), encoding="utf-8")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("site", help="build the static HTML site")
    s.add_argument("--out", default=str(ROOT / "_site"))
    r = sub.add_parser("readme", help="write README.md from nbs/index.ipynb")
    r.add_argument("--check", action="store_true", help="only check that README.md is in sync; exit 1 if not")
    a = p.parse_args(argv)
    if a.command == "site":
        out = build_site(Path(a.out))
        print(f"docs site written to {out}/index.html")
    elif a.check:
        if not build_readme(check=True):
            sys.exit("README.md is out of sync with nbs/index.ipynb: run `python scripts/docs.py readme` and commit the result")
        print("README.md is in sync with nbs/index.ipynb")
    else:
        build_readme()
        print("README.md written from nbs/index.ipynb")


if __name__ == "__main__":
    main()
