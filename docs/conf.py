"""Sphinx configuration of the sublab site (see docs/README.md).

The pages that come from the registry, the saved records, README.md and the notebooks are written by
``build_pages.generate`` right here, before Sphinx reads any source; ``SUBLAB_DOCS_RESULTS`` chooses the results
folder (default ``<repo>/results``) and ``SUBLAB_REPO`` the repository (default: the folder above this one).
"""
from __future__ import annotations

import io
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = Path(os.environ.get("SUBLAB_REPO") or HERE.parent).resolve()
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))
os.environ.setdefault("MPLBACKEND", "Agg")

import build_pages  # noqa: E402

SITE = build_pages.generate(HERE, os.environ.get("SUBLAB_DOCS_RESULTS") or None, REPO)

project = "sublab"
author = "the sublab authors"
copyright = "sublab authors"
html_title = "sublab"

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.mathjax"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
exclude_patterns = ["_build", "README.md", "build_pages.py", "conf.py", "**/.ipynb_checkpoints", ".gitignore"]
root_doc = "index"

myst_enable_extensions = ["dollarmath", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"           # notebooks are shown as saved; the claims are never executed at build time
nb_merge_streams = True

autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
autodoc_member_order = "bysource"
add_module_names = True

html_theme = "furo"
html_static_path = ["_static"]
html_css_files = ["sublab.css"]
html_last_updated_fmt = None
html_show_sourcelink = False
html_copy_source = False

# Notebook markdown written for Jupyter may skip heading levels; that is no broken link or missing figure.
suppress_warnings = ["myst.header"]


# ---------------------------------------------------------------------------------------------- docstrings

def _rst_escape(text: str) -> str:
    """Plain text as RST inline text: ``double-backtick`` spans kept, other markup characters escaped."""
    parts = re.split(r"(``.+?``)", text)
    out = []
    for p in parts:
        if p.startswith("``") and p.endswith("``") and len(p) > 4:
            out.append(p)
        else:
            p = p.replace("\\", "\\\\")
            p = re.sub(r"([*`|])", r"\\\1", p)
            p = re.sub(r"(\w)_(?=\W|$)", r"\1\\_", p)
            out.append(p)
    return "".join(out)


def _clean_rst(lines: list[str]) -> bool:
    """Whether these lines parse as RST without a warning."""
    from docutils.frontend import get_default_settings
    from docutils.parsers.rst import Parser
    from docutils.utils import new_document
    stream = io.StringIO()
    settings = get_default_settings(Parser)
    settings.report_level, settings.halt_level, settings.warning_stream = 2, 5, stream
    doc = new_document("<docstring>", settings)
    try:
        Parser().parse("\n".join(lines), doc)
    except Exception:  # markup that needs Sphinx's environment (roles, directives): treat as not plain RST
        return False
    return not stream.getvalue().strip()


def _constructor_doc(lines: list[str]) -> list[str]:
    """A typed constructor's plain-text docstring (update, source, state, official differences, then an
    'Arguments' list of ``name: text``) as a literal block and a field list."""
    try:
        k = lines.index("Arguments")
    except ValueError:
        return _literal(lines)
    head, rest = lines[:k], lines[k + 1:]
    args, tail, cur = [], [], None
    for line in rest:
        m = re.match(r"^(\*\*)?([A-Za-z_][A-Za-z0-9_]*): (.*)$", line)
        if m and not line.startswith(" "):
            cur = [("**" if m.group(1) else "") + m.group(2), m.group(3)]
            args.append(cur)
        elif line.startswith(" ") and cur is not None:
            cur[1] += " " + line.strip()
        elif line.strip():
            cur = None
            tail.append(line)
    out = _literal(head) + [""]
    for name, text in args:
        out.append(f":param {_rst_escape(name)}: {_rst_escape(' '.join(text.split()))}")
    if tail:
        out += [""] + [_rst_escape(" ".join(" ".join(tail).split()))]
    return out


def _literal(lines: list[str]) -> list[str]:
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    if not lines:
        return []
    return [".. code-block:: text", ""] + ["   " + line if line.strip() else "" for line in lines]


def process_docstring(app, what, name, obj, options, lines):
    """The core's docstrings are plain text: the constructors' become a literal block and a parameter list;
    any other that is not clean RST is shown verbatim as a literal block (the text, never reworded)."""
    if not name.startswith("subspace.") or not lines:
        return
    try:
        import subspace
        constructors = set(getattr(subspace, "CONSTRUCTORS", {}).values())
    except Exception:
        constructors = set()
    if what == "class" and obj in constructors:
        new = _constructor_doc(list(lines))
    elif _clean_rst(list(lines)):
        return
    else:
        first, *rest = "\n".join(lines).split("\n\n", 1)
        new = [_rst_escape(" ".join(first.split()))]
        if rest:
            new += [""] + _literal(rest[0].splitlines())
    lines[:] = new


# ---------------------------------------------------------------------------------------------- verdict badges

def verdict_role(name, rawtext, text, lineno, inliner, options=None, content=()):
    """``{verdict}`holds``` -> <span class="verdict verdict-holds">holds</span>."""
    from docutils import nodes
    slug = re.sub(r"[^a-z]+", "-", text.lower()).strip("-")
    return [nodes.inline(rawtext, text, classes=["verdict", f"verdict-{slug}"])], []


def _report_site_warnings(app):
    from sphinx.util import logging
    log = logging.getLogger("sublab.docs")
    for w in SITE.warnings:
        log.warning(w)


def setup(app):
    app.add_role("verdict", verdict_role)
    app.connect("autodoc-process-docstring", process_docstring)
    app.connect("builder-inited", _report_site_warnings)
    return {"parallel_read_safe": True}
