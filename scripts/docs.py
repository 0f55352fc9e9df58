"""Build doppelnb's documentation without quarto, and keep README.md in sync with nbs/index.ipynb.

    python scripts/docs.py site [--out _site]   # static HTML site from the notebooks (mkdocs-material + mkdocs-jupyter)
    python scripts/docs.py readme [--check]     # README.md (+ its figures) from nbs/index.ipynb

nbdev's own `nbdev_docs` needs quarto, which cannot be installed from the package registries. Its notebook
processing does not: `nbdev.serve.proc_nbs` turns exported cells into API docs (`show_doc`), drops `#| hide`
cells and writes the processed notebooks to `_proc/`. We render those with a PyPI renderer instead of quarto.
On a machine with quarto, `nbdev_docs` uses nbs/_quarto.yml and nbs/nbdev.yml as usual.
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
def process_notebooks(proc: Path) -> list[Path]:
    "Run nbdev's notebook processors (API docs from exported cells, hidden cells dropped) into `proc`."
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
                        md = "".join(out["data"]["text/markdown"])
                        out["data"]["text/markdown"] = QUARTO_ATTRS.sub("", md)
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


def signature(obj) -> str:
    "`obj`'s signature with annotations evaluated where possible (the modules use `from __future__ import annotations`)."
    import inspect
    for kw in (dict(eval_str=True), {}):
        try:
            return str(inspect.signature(obj, **kw)).replace("'", "").replace("torch._C.", "torch.")
        except Exception:
            continue
    return ""


def torch_module():
    import torch.nn
    return torch.nn


def api_page(proc: Path) -> Path:
    "A page listing every exported name of doppelnb with its signature, docstring and the notebook that defines it."
    import importlib
    import inspect
    from doppelnb._modidx import d  # the modules nbdev exported
    lines = ["# API reference", "", "Everything `doppelnb` exports, module by module. Each module is generated from one notebook; "
             "follow the link for the prose, examples and tests.", ""]
    for module_name in sorted(d["syms"]):
        module = importlib.import_module(module_name)
        nb_name = Path(inspect.getsourcefile(module)).stem
        source_nb = next((p for p in notebooks() if re.sub(r"^\d+_", "", p.stem) == nb_name), None)
        link = f" — from [{source_nb.stem}]({source_nb.stem}.ipynb)" if source_nb else ""
        lines += [f"## `{module_name}`{link}", ""]
        if module.__doc__:
            lines += [module.__doc__.strip(), ""]
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if not callable(obj):
                lines += [f"### `{name}`", "", f"```python\n{name} = {obj!r}\n```", ""]
                continue
            sig = signature(obj)
            kind = "class" if inspect.isclass(obj) else "def"
            own_doc = inspect.cleandoc(obj.__doc__ or "")  # not inspect.getdoc: no docstrings inherited from torch
            lines += [f"### `{name}`", "", f"```python\n{kind} {name}{sig}\n```", "", own_doc.strip(), ""]
            if inspect.isclass(obj):
                for meth_name, meth in inspect.getmembers(obj, inspect.isfunction):
                    if meth_name.startswith("_") or meth.__qualname__.split(".")[0] != obj.__name__:
                        continue
                    doc = inspect.cleandoc(meth.__doc__ or "").strip().splitlines()
                    if not doc and getattr(torch_module(), "Module", None) and hasattr(torch_module().Module, meth_name):
                        continue  # an undocumented override of a torch method (forward, extra_repr): nothing to add
                    lines += [f"- `{meth_name}{signature(meth)}`" + (f": {doc[0]}" if doc else "")]
                lines.append("")
    page = proc / "api.md"
    page.write_text("\n".join(lines), encoding="utf-8")
    return page


def build_site(out: Path) -> Path:
    "Render the processed notebooks and the API page into a static site at `out`."
    cfg = settings()
    proc = ROOT / "_proc" / "site"
    pages = process_notebooks(proc)
    api = api_page(proc)
    nav = []
    for page in pages:
        meta = frontmatter(json.loads((NBS / page.name).read_text(encoding="utf-8")))
        nav.append({("Home" if page.stem == "index" else meta["title"] or page.stem): page.name})
    nav.append({"API reference": api.name})
    mkdocs_yml = {
        "site_name": cfg["title"], "site_description": cfg["description"], "repo_url": cfg["git_url"],
        "docs_dir": str(proc), "site_dir": str(out.resolve()), "use_directory_urls": False,
        "theme": {"name": "material", "font": False, "features": ["navigation.sections", "content.code.copy"]},
        "plugins": [{"search": {}}, {"mkdocs-jupyter": {"include": ["*.ipynb"], "execute": False, "include_source": False,
                                                         "remove_tag_config": {"remove_input_tags": ["remove_input"]},
                                                         "include_requirejs": False, "ignore_h1_titles": False,
                                                         "no_prompt": True}}],
        "markdown_extensions": ["admonition", "tables", "fenced_code", "toc"],
        "nav": nav,
    }
    if cfg.get("source_url", "").strip():
        mkdocs_yml["repo_url"] = cfg["source_url"].strip()
    else:
        mkdocs_yml.pop("repo_url")  # no confirmed public address: the site links the files of the clone instead
    config = ROOT / "_proc" / "mkdocs.yml"
    config.write_text(json.dumps(mkdocs_yml, indent=1), encoding="utf-8")  # JSON is valid YAML
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--quiet", "--clean", "-f", str(config)], check=True, cwd=ROOT)
    fix_links(out, cfg)
    return out


def page_of_module() -> dict:
    "`{module name: local page}`, e.g. `{'synth': '00_synth.html'}`, from each notebook's `#| default_exp`."
    pages = {}
    for nb in notebooks():
        m = re.search(r"#\s*\|\s*default_exp\s+([\w.]+)", nb.read_text(encoding="utf-8"))
        if m:
            pages[m.group(1)] = f"{nb.stem}.html"
    return pages


def fix_links(out: Path, cfg) -> None:
    """Make the built site self-contained: nbdev's cross-references to `doc_host` point at the local pages, source links
    at `source_url` (settings.ini) or else at the files of this clone, the 404 page uses relative paths, table-of-contents
    anchors match the ids of headings that contain code, and annotations nbdev could not read show no `NoneType`."""
    import os
    out = out.resolve()
    host = (cfg["doc_host"].rstrip("/") + "/" + cfg["doc_baseurl"].strip("/")).rstrip("/")
    pages = page_of_module()
    source = cfg.get("source_url", "").strip().rstrip("/")
    blob = re.escape(cfg["git_url"].rstrip("/")) + r"/(?:blob|tree)/" + re.escape(cfg.get("branch", "main")) + "/"
    cross = re.compile(re.escape(host) + r"/([\w.]+)\.html")
    texts = {}
    for page in out.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        html = cross.sub(lambda m: pages.get(m.group(1), "api.html"), html)
        base = source or Path(os.path.relpath(ROOT, page.parent)).as_posix()
        html = re.sub(blob, lambda m: base + "/", html)
        html = html.replace(cfg["git_url"].rstrip("/") + '"', (source or base) + '"')
        if page.name == "404.html":
            html = re.sub(r'(href|src)="/(?!/)', r'\1="./', html)
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
            return f'href="{target}#{close[0]}"' if close else m.group(0)
        page.write_text(re.sub(r'href="([\w.-]*?\.html|)#([^"]+)"', anchor, html), encoding="utf-8")


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
