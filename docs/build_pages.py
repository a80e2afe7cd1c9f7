"""Generate the documentation site's pages from the claim registry, the saved records and README.md.

Nothing is re-run: every number comes from ``results/<scale>/claims/<id>.json`` (written by ``sublab verify``),
every figure from ``results/<scale>/figures/``, every statement and rule from the registry
(``claims.registry.default_registry()``), the tables and recipes from README's own sections, and the notebooks
from their jupytext sources (``notebooks/*.py``, shown without execution, or an executed copy saved under
``results/notebooks/<name>.ipynb`` when one exists).

``docs/conf.py`` calls :func:`generate` before Sphinx reads the sources, so ``sphinx-build docs docs/_build/html``
(or ``make docs``) is the whole build. Run it alone to look at the generated Markdown::

    python docs/build_pages.py [--results results] [--src docs]

Generated (and git-ignored, see ``docs/.gitignore``): ``index.md``, ``api.md``, ``performance.md``, ``scaling.md``,
``claims/``, ``notebooks/``, ``_readme/``. Hand-written: ``conf.py``, ``about.md``, ``README.md``, ``_static/``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any, Iterable

DOCS = Path(__file__).resolve().parent
REPO = Path(os.environ.get("SUBLAB_REPO") or DOCS.parent).resolve()
SCALES = ("quick", "full")
GENERATED = ("index.md", "api.md", "performance.md", "scaling.md", "claims", "notebooks", "_readme")

#: What each kind means (claims.registry.KINDS).
KIND_TEXT = {
    "paper": "the paper's statement under its own hypotheses (a violation is a counterexample meeting every "
             "hypothesis)",
    "reading": "one reading of an ambiguous statement, of its proof, or of an empirical statement at the scale "
               "this workbench runs",
    "corrected": "a statement the project derived or reconstructed",
    "auxiliary": "an experiment outside the hypotheses (is an assumption necessary, does a method meet a "
                 "precondition)",
}
VERDICT_TEXT = {"holds": "the measured numbers meet the rule", "violated": "a counterexample was found",
                "inconclusive": "the numbers decide neither way (or the claim raised)", "not run yet": "no record"}

# The public functions of the core documented after the typed constructors (absent names are skipped).
API_FUNCTIONS = {
    "Building optimizers and parameter groups": ["make", "available", "param_groups", "as_groups", "state_numel"],
    "Orthogonalization and bases": ["polar", "newton_schulz", "stiefel", "svd_basis", "randomized_svd_basis"],
}


# ---------------------------------------------------------------------------------------------- Markdown helpers

_PUNCT = set("\\`*_{}[]<>()#+-.!|~$:&=\"'^")


def esc(text: Any) -> str:
    """Plain text as inline Markdown: every ASCII punctuation character that could start markup is escaped."""
    s = " ".join(str(text).split())
    return "".join("\\" + ch if ch in _PUNCT else ch for ch in s)


def prose(text: Any) -> str:
    """Docstring prose as inline Markdown: its ````code```` spans become code, the rest is escaped text."""
    parts = re.split(r"``(.+?)``", " ".join(str(text).split()))
    return "".join(code(p) if k % 2 else esc(p) for k, p in enumerate(parts))


def code(text: Any, in_table: bool = False) -> str:
    """An inline code span holding ``text`` exactly (fence longer than any backtick run inside)."""
    s = str(text).replace("\n", " ")
    runs = [len(m) for m in re.findall(r"`+", s)]
    fence = "`" * (max(runs) + 1 if runs else 1)
    pad = " " if s.startswith("`") or s.endswith("`") or not s.strip() else ""
    out = f"{fence}{pad}{s}{pad}{fence}"
    return out.replace("|", "\\|") if in_table else out


def literal_block(text: str, lang: str = "text") -> list[str]:
    runs = [len(m) for m in re.findall(r"^\s*(~{3,}|`{3,})", text, flags=re.M)]
    fence = "~" * max([3] + [r + 1 for r in runs])
    return [f"{fence}{lang}", text.rstrip("\n"), fence]


def fmt(v: Any) -> str:
    """A number or scalar exactly as stored (floats in full: repr)."""
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    return str(v)


def _scalar(v: Any) -> bool:
    return not isinstance(v, (dict, list, tuple))


def _flat_list(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and all(_scalar(e) for e in v)


def _inline(v: Any) -> str:
    if _scalar(v):
        return fmt(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_inline(e) for e in v) + "]"
    return "{" + ", ".join(f"{k}: {_inline(e)}" for k, e in v.items()) + "}"


def _table(head: list[str], rows: list[list[str]], indent: str = "") -> list[str]:
    lines = [indent + "| " + " | ".join(head) + " |", indent + "|" + "---|" * len(head)]
    lines += [indent + "| " + " | ".join(r) + " |" for r in rows]
    return lines


def _table_of_dicts(items: list, indent: str) -> list[str] | None:
    """A list of flat dicts as one table (columns: the union of their keys, in first-seen order)."""
    if not items or not all(isinstance(e, dict) and all(_scalar(x) or _flat_list(x) for x in e.values())
                            for e in items):
        return None
    cols: list[str] = []
    for e in items:
        cols += [k for k in e if k not in cols]
    rows = [[code(_inline(e[c]), True) if c in e else "" for c in cols] for e in items]
    return _table(["#"] + [code(c, True) for c in cols], [[str(i)] + r for i, r in enumerate(rows)], indent)


def render_value(v: Any, indent: str = "") -> list[str]:
    """Markdown lines for a nested value: flat dicts and lists of flat dicts become tables, deeper nesting becomes
    nested lists. Every number is written in full."""
    if _scalar(v) or _flat_list(v):
        return [indent + code(_inline(v))]
    if isinstance(v, dict):
        if not v:
            return [indent + code("{}")]
        if all(_scalar(e) or _flat_list(e) for e in v.values()):
            return _table(["key", "value"], [[code(k, True), code(_inline(e), True)] for k, e in v.items()], indent)
        return _bullets(((f"{code(k)}:", e) for k, e in v.items()), indent)
    # a list holding dicts or lists
    table = _table_of_dicts(list(v), indent)
    if table is not None:
        return table
    return _bullets(((f"[{i}]", e) for i, e in enumerate(v)), indent)


def _bullets(items, indent: str) -> list[str]:
    """One bullet per (label, value): a short value inline after its label, a nested one rendered below it."""
    lines = []
    for label, e in items:
        if _scalar(e) or _flat_list(e):
            lines.append(f"{indent}- {label} {code(_inline(e))}")
        else:
            lines += [f"{indent}- {label}", "", *render_value(e, indent + "  "), ""]
    return lines


def render_numbers(d: dict | None) -> list[str]:
    """A measured/predicted dict: a table of its scalar entries, then each nested entry under its key."""
    if not d:
        return ["*(none)*"]
    flat = {k: v for k, v in d.items() if _scalar(v) or _flat_list(v)}
    lines: list[str] = []
    if flat:
        lines += _table(["key", "value"], [[code(k, True), code(_inline(v), True)] for k, v in flat.items()])
        lines.append("")
    for k, v in d.items():
        if k in flat:
            continue
        lines += [f"{code(k)}:", ""] + render_value(v) + [""]
    return lines


def verdict_role(v: str | None) -> str:
    return "{verdict}`" + (v or "not run yet") + "`"


# ---------------------------------------------------------------------------------------------- inputs

def load_scale(results: Path, scale: str) -> tuple[dict[str, dict], dict]:
    """(records by id, environment) of ``results/<scale>``; empty when it has not run."""
    folder = results / scale
    if not (folder / "claims").is_dir():
        return {}, {}
    from claims.runner import load_records
    recs = {cid: r for cid, r in load_records(folder).items() if r.get("scale", scale) == scale}
    env = {}
    if (folder / "environment.json").is_file():
        try:
            env = json.loads((folder / "environment.json").read_text(encoding="utf-8"))
        except ValueError:
            env = {}
    return recs, env


def extract_rule(doc: str) -> str | None:
    """The paragraph of a claim's docstring that states its verdict rule (from 'Rule' to the paragraph's end, cut
    before a following 'Note:' / 'Known ...:' / 'Recorded:' sentence)."""
    paras = re.split(r"\n\s*\n", doc)
    for pattern in (r"\bRule\b", r"\b[A-Z][a-z]+ and rule\b", r"\brule\b"):
        for para in paras:
            m = re.search(pattern + r"(?=[^\n]{0,120}?[:.])", para)
            if m and not para[:m.start()].strip().endswith("the"):
                return _rule_text(para[m.start():])
    return None


def _rule_text(text: str) -> str:
    cut = re.search(r"(?:\n|(?<=[.;])\s)\s*(?:Note|Known [a-z]+|Recorded|Discrepancy|Caveat)\b[^\n:]{0,30}:", text)
    return " ".join((text[:cut.start()] if cut else text).split())


# ---------------------------------------------------------------------------------------------- README sections

_HEAD = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def readme_sections(text: str) -> list[tuple[int, str, int, int]]:
    """(level, title, start line, end line) of every heading outside code fences; end is exclusive and covers
    the subsections."""
    lines = text.splitlines()
    heads, fence = [], None
    for i, line in enumerate(lines):
        m = re.match(r"^\s*(`{3,}|~{3,})", line)
        if m:
            fence = None if fence and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) else (fence or m.group(1))
            continue
        if fence is None:
            h = _HEAD.match(line)
            if h:
                heads.append((len(h.group(1)), h.group(2), i))
    out = []
    for j, (lvl, title, i) in enumerate(heads):
        end = next((k for (l2, _, k) in heads[j + 1:] if l2 <= lvl), len(lines))
        out.append((lvl, title, i, end))
    return out


class Readme:
    def __init__(self, path: Path, out_dir: Path, warnings: list[str]):
        self.path, self.out_dir, self.warnings = path, out_dir, warnings
        self.text = path.read_text(encoding="utf-8") if path.is_file() else ""
        if not self.text:
            warnings.append(f"{path} not found: the overview, performance and scaling pages are empty")
        self.lines = self.text.splitlines()
        self.sections = readme_sections(self.text)

    def intro(self) -> str:
        first = next((s for s in self.sections if s[0] >= 2), None)
        top = next((s for s in self.sections if s[0] == 1), None)
        start = top[2] + 1 if top else 0
        return self._clean(self.lines[start:first[2] if first else len(self.lines)], level=2)

    def title(self) -> str:
        top = next((s for s in self.sections if s[0] == 1), None)
        return top[1] if top else "sublab"

    def section(self, *prefixes: str, level: int = 2, body_only: bool = False) -> str:
        """The README section whose title starts with one of ``prefixes`` (case-insensitive), re-levelled so its
        heading is ``level``; a warning (which fails the -W build) when there is none."""
        for lvl, title, i, end in self.sections:
            if any(title.lower().startswith(p.lower()) for p in prefixes):
                if body_only:  # the page's own title replaces the heading; subsections start at ``level``
                    return self._clean(self.lines[i + 1:end], level - lvl - 1)
                return self._clean(self.lines[i:end], level - lvl)
        self.warnings.append(f"README.md has no section titled {' / '.join(repr(p) for p in prefixes)}: "
                             "update docs/build_pages.py")
        return f"*README.md has no section {esc(prefixes[0])}.*"

    def _clean(self, lines: list[str], shift: int = 0, level: int | None = None) -> str:
        text = "\n".join(lines)
        text = re.sub(r"<!-- claims-table:start -->.*?<!-- claims-table:end -->",
                      "The full claims table, with every number, is the [claims index](claims/index.md).",
                      text, flags=re.S)
        text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
        out, fence = [], None
        for line in text.splitlines():
            m = re.match(r"^\s*(`{3,}|~{3,})", line)
            if m:
                fence = None if fence else m.group(1)
            elif fence is None:
                h = _HEAD.match(line)
                if h and shift:
                    line = "#" * max(1, min(6, len(h.group(1)) + shift)) + " " + h.group(2)
                line = self._links(line)
            out.append(line)
        return "\n".join(out).strip() + "\n"

    def _links(self, line: str) -> str:
        def image(m):
            alt, target = m.group(1), m.group(2)
            if re.match(r"^[a-z]+://", target):
                return m.group(0)
            src = (self.path.parent / target).resolve()
            if not src.is_file():
                self.warnings.append(f"README.md: image {target} not found")
                return esc(alt)
            dest = self.out_dir / "_readme" / target.replace("/", "_")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            return f"![{alt}](_readme/{dest.name})"

        def link(m):
            text, target = m.group(1), m.group(2)
            if re.match(r"^[a-z]+://", target) or target.startswith("claims/index.md"):
                return m.group(0)
            return f"{text} ({code(target)})" if not target.startswith("#") else text

        line = re.sub(r"!\[([^\]]*)\]\(([^)\s]+)\)", image, line)
        return re.sub(r"(?<!!)\[([^\]]+)\]\(([^)\s]+)\)", link, line)


# ---------------------------------------------------------------------------------------------- pages

class Site:
    def __init__(self, src: Path, results: Path, repo: Path = REPO, registry=None):
        self.src, self.results, self.repo = Path(src), Path(results), Path(repo)
        self.warnings: list[str] = []
        self.notes: list[str] = []
        if registry is None:
            from claims.registry import default_registry
            registry = default_registry()
        self.registry = registry
        for mod, tb in getattr(registry, "import_errors", {}).items():
            last = tb.strip().splitlines()[-1] if tb.strip() else ""
            self.warnings.append(f"claims module {mod} failed to import ({last}): its claims have no page")
        self.records: dict[str, dict[str, dict]] = {}
        self.envs: dict[str, dict] = {}
        for scale in SCALES:
            recs, env = load_scale(self.results, scale)
            if recs:
                self.records[scale], self.envs[scale] = recs, env
        if "quick" not in self.records:
            self.notes.append(f"{self.results / 'quick'} has no records (run `make verify`): the claim pages say "
                              "'not run yet'")
        ids = [c.id for c in registry]
        extra = sorted({cid for recs in self.records.values() for cid in recs} - set(ids))
        self.ids = ids + extra
        self.claims = {c.id: c for c in registry}
        self.readme = Readme(self.repo / "README.md", self.src, self.warnings)

    # -- helpers
    def write(self, rel: str, text: str) -> None:
        path = self.src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")

    def clean(self) -> None:
        for name in GENERATED:
            p = self.src / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()

    def info(self, cid: str) -> dict:
        c = self.claims.get(cid)
        rec = next((self.records[s][cid] for s in SCALES if cid in self.records.get(s, {})), {})
        return {"paper": c.paper if c else rec.get("paper", ""), "kind": (rec.get("kind") or (c.kind if c else "")),
                "statement": c.statement if c else rec.get("statement", ""),
                "source": c.source if c else rec.get("source", ""), "doc": c.doc if c else "", "registered": c is not None}

    def scales_run(self) -> list[str]:
        return [s for s in SCALES if s in self.records]

    def counts(self, scale: str) -> dict[str, int]:
        out = {"holds": 0, "violated": 0, "inconclusive": 0}
        for r in self.records.get(scale, {}).values():
            out[r["verdict"]] = out.get(r["verdict"], 0) + 1
        return out

    # -- pages
    def build(self) -> None:
        self.clean()
        self.index_page()
        self.claims_index()
        for cid in self.ids:
            self.claim_page(cid)
        self.api_page()
        self.notebook_pages()
        self.performance_page()
        self.scaling_page()

    def run_summary(self) -> list[str]:
        lines = []
        for scale in SCALES:
            if scale in self.records:
                c, env = self.counts(scale), self.envs.get(scale, {})
                lines.append(f"- **{scale} scale**: {len(self.records[scale])} claims: "
                             + ", ".join(f"{n} {verdict_role(v)}" for v, n in c.items())
                             + f" ({esc(env.get('date', '?'))}, code {code(env.get('code_version', '?'))}, "
                               f"{esc(env.get('device', '?'))})")
            else:
                lines.append(f"- **{scale} scale**: not run yet (`sublab verify --scale {scale}`)")
        return lines

    def index_page(self) -> None:
        r = self.readme
        lines = [f"# {esc(r.title())}", "", r.intro(), "",
                 "This site is built from the repository by `make docs`, from saved results only: no claim is "
                 "re-run to build it.", "",
                 "## Results on this site", ""] + self.run_summary() + [
                 "", "Every claim has its own page with its statement, source, kind, rule, every measured and "
                 "predicted number, its figure and its verdict at each scale that has run: start at the "
                 "[claims index](claims/index.md).", "",
                 r.section("Two commands"), "",
                 r.section("What the quick run finds", "Findings", level=2), "",
                 "```{toctree}", ":maxdepth: 1", ":caption: Contents", "", "claims/index", "notebooks/index",
                 "api", "performance", "scaling", "about", "```", ""]
        self.write("index.md", "\n".join(lines))

    def claims_index(self) -> None:
        scales = list(SCALES)
        lines = ["# Claims", "",
                 "Every lemma, theorem, remark and headline figure of the papers is a runnable claim. The verdict "
                 "follows from the claim's numbers by the rule its docstring states. Verdicts: "
                 + "; ".join(f"{verdict_role(v)} {esc(t)}" for v, t in VERDICT_TEXT.items()) + ".", "",
                 "Kinds: " + "; ".join(f"**{k}**: {esc(t)}" for k, t in KIND_TEXT.items()) + ".", ""]
        lines += self.run_summary() + [""]
        head = ["id", "paper", "kind"] + [f"{s}" for s in scales] + ["statement"]
        rows = []
        for cid in self.ids:
            i = self.info(cid)
            cells = [f"[{code(cid, True)}]({cid}.md)", esc(i["paper"]), esc(i["kind"] or "?")]
            for s in scales:
                rec = self.records.get(s, {}).get(cid)
                cells.append(verdict_role(rec["verdict"] if rec else None) + (" (raised)" if rec and rec.get("error") else ""))
            st = i["statement"]
            cells.append(esc(st if len(st) <= 110 else st[:107].rsplit(" ", 1)[0] + " ..."))
            rows.append(cells)
        lines += _table(head, rows)
        lines += ["", "```{toctree}", ":hidden:", ""] + list(self.ids) + ["```", ""]
        self.write("claims/index.md", "\n".join(lines))

    def claim_page(self, cid: str) -> None:
        i = self.info(cid)
        lines = [f"# {esc(cid)}", "",
                 f"**{esc(i['paper'])}** · kind **{esc(i['kind'] or '?')}** · source: {esc(i['source'])}", ""]
        if not i["registered"]:
            lines += ["```{note}", "This id is not in the registry any more; the page shows its saved records.",
                      "```", ""]
        lines += ["**Statement.** " + esc(i["statement"]), ""]
        # verdicts at each scale
        lines += ["## Verdict", ""]
        rows = []
        for s in SCALES:
            rec = self.records.get(s, {}).get(cid)
            if rec is None:
                rows.append([s, verdict_role(None), "", ""])
            else:
                rows.append([s, verdict_role(rec["verdict"]) + (" (the claim raised)" if rec.get("error") else ""),
                             code(rec.get("rule") or "", True),
                             esc(f"{str(rec.get('date', ''))[:10]}, {rec.get('device', '')}, "
                                 f"{rec.get('elapsed_s', '')} s")
                             + f" ([numbers](#numbers-at-{s}-scale))"])
        lines += _table(["scale", "verdict", "rule applied", "run"], rows) + [""]
        rule = extract_rule(i["doc"]) if i["doc"] else None
        lines += ["## Rule", ""]
        lines += [prose(rule) if rule else "*The docstring below states the rule.*", ""]
        # figures
        figs = []
        for s in SCALES:
            rec = self.records.get(s, {}).get(cid)
            if rec and rec.get("figure"):
                src = self.results / s / rec["figure"]
                dest = self.src / "claims" / "figures" / s / Path(rec["figure"]).name
                if src.is_file():
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(src, dest)
                else:
                    self.warnings.append(f"{cid}: figure {src} of the {s} record is missing")
                figs.append((s, f"figures/{s}/{Path(rec['figure']).name}"))
        if figs:
            lines += ["## Figure", ""]
            for s, rel in figs:
                lines += [f"```{{figure}} {rel}", f":alt: {cid} figure ({s} scale)", ":class: claim-figure", "",
                          f"{esc(cid)}, {s} scale: drawn from the saved rows of that run.", "```", ""]
        # numbers
        for s in SCALES:
            rec = self.records.get(s, {}).get(cid)
            if rec is None:
                continue
            lines += [f"## Numbers at {s} scale", "", f"{verdict_role(rec['verdict'])} {esc(rec.get('detail', ''))}", ""]
            if "margin" in rec and rec["margin"] is not None:
                lines += ["### Margin", ""] + (render_numbers(rec["margin"]) if isinstance(rec["margin"], dict)
                                                else render_value(rec["margin"])) + [""]
            lines += ["### Measured", ""] + render_numbers(rec.get("measured")) + [""]
            lines += ["### Predicted", ""] + render_numbers(rec.get("predicted")) + [""]
            if rec.get("rule_inputs"):
                lines += [f"### Inputs of the rule {code(rec.get('rule', ''))}", ""] + render_numbers(rec["rule_inputs"]) + [""]
            if rec.get("config"):
                lines += ["### Configuration", ""] + render_numbers(rec["config"]) + [""]
            lines += [f"{rec.get('n_rows', 0)} long-format rows in {code('results/' + s + '/' + str(rec.get('rows', '')))}; "
                      f"code version {code(rec.get('code_version', ''))}.", ""]
            if rec.get("traceback"):
                lines += ["### Traceback", ""] + literal_block(rec["traceback"]) + [""]
        if not any(cid in self.records.get(s, {}) for s in SCALES):
            lines += ["## Numbers", "", "Not run yet: `sublab verify --only '" + cid + "'` writes its record.", ""]
        if i["doc"]:
            lines += ["## The claim's docstring", ""] + literal_block(i["doc"]) + [""]
        self.write(f"claims/{cid}.md", "\n".join(lines))

    def api_page(self) -> None:
        lines = ["# API of the optimizer core", "",
                 "Generated by Sphinx autodoc from the live objects: each typed constructor's signature and "
                 "docstring come from the preset table (`subspace/presets.py`).", ""]
        lines += [self.readme.section("The optimizer core", level=2, body_only=True), ""]
        try:
            import subspace
            constructors = list(getattr(subspace, "CONSTRUCTORS", {}).items())
        except Exception as exc:  # the page says so, and the build warns
            self.warnings.append(f"cannot import subspace for the API page: {type(exc).__name__}: {exc}")
            subspace, constructors = None, []
        lines += ["## Typed constructors", "",
                  "| preset | constructor |", "|---|---|"]
        lines += [f"| {code(name, True)} | {{py:class}}`subspace.{cls.__name__}` |" for name, cls in constructors]
        lines.append("")
        for name, cls in constructors:
            lines += ["```{eval-rst}", f".. autoclass:: subspace.{cls.__name__}", "   :no-members:", "```", ""]
        for title, names in API_FUNCTIONS.items():
            present = [n for n in names if subspace is not None and callable(getattr(subspace, n, None))]
            if not present:
                continue
            lines += [f"## {title}", ""]
            for n in present:
                lines += ["```{eval-rst}", f".. autofunction:: subspace.{n}", "```", ""]
        self.write("api.md", "\n".join(lines))

    def notebook_pages(self) -> None:
        import jupytext
        import nbformat
        sources = sorted((self.repo / "notebooks").glob("*.py"))
        lines = ["# Notebooks", "",
                 "One notebook per paper, kept as jupytext py:percent sources in `notebooks/`. They are shown here "
                 "as their sources, without running them (a copy executed and saved as "
                 "`results/notebooks/<name>.ipynb` is shown with its outputs instead); each claim's numbers and "
                 "figure are on its page in the [claims index](../claims/index.md).", "",
                 "To run them yourself:", "", "```bash",
                 '.venv/bin/pip install -e ".[lab]" -c constraints.txt',
                 "jupytext --to notebook notebooks/*.py   # or open the .py files with the jupytext extension",
                 ".venv/bin/jupyter lab notebooks/", "```", ""]
        names = []
        for path in sources:
            executed = self.results / "notebooks" / f"{path.stem}.ipynb"
            try:
                nb = nbformat.read(executed, as_version=4) if executed.is_file() else jupytext.read(path)
            except Exception as exc:
                self.warnings.append(f"notebook {path.name} could not be read: {type(exc).__name__}: {exc}")
                continue
            nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
            cells = []
            for cell in nb.cells:  # after a cell that runs claims, a link to each claim's page (its saved numbers)
                cells.append(cell)
                used = [] if cell.cell_type != "code" else [
                    cid for cid in dict.fromkeys(re.findall(r"""["']([a-z0-9][a-z0-9_.\-]*)["']""", cell.source))
                    if cid in self.claims]
                if used:
                    cells.append(nbformat.v4.new_markdown_cell(
                        "Saved numbers, figure and verdict: " + ", ".join(f"[{code(c)}](../claims/{c}.md)" for c in used)))
            nb.cells = cells
            if not any(c.cell_type == "markdown" and c.source.lstrip().startswith("# ") for c in nb.cells[:3]):
                nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"# {path.stem}"))
            out = self.src / "notebooks" / f"{path.stem}.ipynb"
            out.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, out)
            names.append(path.stem)
        if not names:
            lines += ["*No notebook found in `notebooks/`.*", ""]
        lines += ["```{toctree}", ":maxdepth: 1", ""] + names + ["```", ""]
        self.write("notebooks/index.md", "\n".join(lines))

    def performance_page(self) -> None:
        lines = ["# Speed and memory", "", self.readme.section("Speed and memory", level=2, body_only=True)]
        bench = self.results / "bench"
        files = sorted(bench.glob("*.jsonl")) if bench.is_dir() else []
        if files:
            lines += ["", "## From the saved rows in `results/bench`", ""]
            try:
                from analysis import benchmarks as B
                from records import read_jsonl
                for p in files:
                    rows = read_jsonl(p)
                    for fn_name in ("format_step_table", "format_projector_table", "format_state_table"):
                        fn = getattr(B, fn_name, None)
                        if fn is None:
                            continue
                        try:
                            table = fn(rows)
                        except Exception:
                            continue
                        if table and table.strip():
                            lines += [f"{code(p.name)} ({len(rows)} rows):", ""] + literal_block(table) + [""]
                            break
            except Exception as exc:
                lines += [f"*The rows could not be formatted here ({esc(type(exc).__name__)}).*", ""]
        self.write("performance.md", "\n".join(lines))

    def scaling_page(self) -> None:
        lines = ["# GPUs and several machines", "",
                 self.readme.section("Paper scale", "GPUs", level=2), "",
                 self.readme.section("Probes", level=2), ""]
        self.write("scaling.md", "\n".join(lines))


def generate(src: str | Path = DOCS, results: str | Path | None = None, repo: str | Path = REPO,
             registry=None, stream=sys.stderr) -> Site:
    """Write every generated page under ``src``; returns the Site (its ``warnings`` fail a -W build)."""
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    results = Path(results if results is not None else os.environ.get("SUBLAB_DOCS_RESULTS") or Path(repo) / "results")
    site = Site(Path(src), results, Path(repo), registry)
    site.build()
    for note in site.notes:
        print(f"docs: {note}", file=stream)
    return site


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default=None, help="results folder (default: $SUBLAB_DOCS_RESULTS or results/)")
    ap.add_argument("--src", default=str(DOCS), help="docs source folder to write into")
    args = ap.parse_args(list(argv) if argv is not None else None)
    site = generate(args.src, args.results)
    for w in site.warnings:
        print(f"docs: warning: {w}", file=sys.stderr)
    print(f"docs: wrote {len(site.ids)} claim pages under {Path(args.src) / 'claims'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
