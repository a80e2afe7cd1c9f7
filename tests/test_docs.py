"""The documentation site (docs/): built by Sphinx from a small records folder written here with the runner's own
writer, then checked for warnings, broken internal links, missing figures and full numbers, and opened in
headless Chromium (the claims index and one claim page: the figure and the verdict must be visible).

No claim is run: the records come from throwaway claims that reuse three registered ids."""
from __future__ import annotations

import html.parser
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CHROMIUM = Path("/usr/bin/chromium")
MAGENTA = (255, 0, 255)          # the fake figures' colour: seen in a screenshot means the figure is visible
VIOLATED_RED = (0xcf, 0x22, 0x2e)  # .verdict-violated in docs/_static/sublab.css
STATIC_SOURCES = ("conf.py", "build_pages.py", "about.md", "README.md", "_static")

NESTED = {"by_kappa": {"1.01": {"err": 0.341298765432109, "bound": 0.0341}, "10": {"err": 1e-17, "bound": 2.5}},
          "arms": [{"name": "constant", "R_T_over_R0": 7.0131234567e-10}, {"name": "wdep", "R_T_over_R0": 0.781}],
          "series": list(range(12)), "note": "a | pipe and *stars* and `ticks`", "missing": float("nan")}


def _fake_claims(real):
    """Throwaway claims with the ids, papers and statements of three registered ones: one violated with a nested
    measurement and a figure, one that holds (quick and full), one that raises."""
    from claims import verdicts as V
    from claims.registry import Outcome, Registry, claim

    def draw(rows):
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle
        fig = Figure(figsize=(1.6, 0.8))
        ax = fig.add_axes([0, 0, 1, 1])
        ax.set_axis_off()
        ax.add_patch(Rectangle((0, 0), 1, 1, color="#ff00ff"))
        return fig

    a, b, c = real

    @claim(id=a.id, paper=a.paper, statement=a.statement, source=a.source, kind=a.kind, figure=draw)
    def violated(ctx):
        return Outcome(measured={"max_ratio": 1.2345678901234567, "instances": 840, **NESTED},
                       predicted={"max_ratio_at_most": 1.0, "rtol": 7.577e-08},
                       verdict=V.upper_bound(1.2345678901234567, 1.0, name="max_ratio"),
                       detail="smallest counterexample: kappa=1.01", rows=[{"method": "m", "step": 0, "err": 1.0}])

    @claim(id=b.id, paper=b.paper, statement=b.statement, source=b.source, kind=b.kind, figure=draw)
    def holds(ctx):
        return Outcome(measured={"slope": -0.8970123456789, "ci": [-0.9037, -0.8907]}, predicted={"exponent": -1},
                       verdict=V.ci_at_most(-0.9037, -0.8907, -0.75, name="slope"),
                       rows=[{"method": "m", "step": 1, "err": 0.5}])

    @claim(id=c.id, paper=c.paper, statement=c.statement, source=c.source, kind=c.kind)
    def raises(ctx):
        raise RuntimeError("fake failure inside the claim")

    return Registry([violated, holds, raises]), Registry([holds])


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from claims.registry import default_registry
    from claims.runner import load_record, run
    from records import atomic_write_text, dumps

    tmp = tmp_path_factory.mktemp("docs")
    real = list(default_registry())[:3]
    quick, full = _fake_claims(real)
    results = tmp / "results"
    run(quick, scale="quick", out=results / "quick", stream=None)
    run(full, scale="full", out=results / "full", stream=None)
    # a record with the margin field of the claims-trust work
    path = results / "quick" / "claims" / f"{real[0].id}.json"
    rec = load_record(path)
    rec["margin"] = {"relative": -0.2345678901234568, "worst_at": "kappa=1.01"}
    atomic_write_text(path, dumps(rec, indent=1) + "\n")

    src = tmp / "src"
    src.mkdir()
    for name in STATIC_SOURCES:
        (shutil.copytree if (DOCS / name).is_dir() else shutil.copyfile)(DOCS / name, src / name)
    out = tmp / "html"
    env = dict(os.environ, SUBLAB_DOCS_RESULTS=str(results), SUBLAB_REPO=str(ROOT), MPLBACKEND="Agg")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(src), str(out)],
                          env=env, capture_output=True, text=True, timeout=240)
    return {"proc": proc, "out": out, "src": src, "results": results, "ids": [c.id for c in real],
            "seconds": time.perf_counter() - t0}


def test_build_has_no_warning(site):
    proc = site["proc"]
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    assert "WARNING" not in proc.stderr and "ERROR" not in proc.stderr, proc.stderr[-4000:]
    assert (site["out"] / "index.html").is_file()


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids, self.images = [], set(), []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag in ("img", "script") and a.get("src"):
            self.links.append(a["src"])
            if tag == "img":
                self.images.append(a["src"])
        if tag == "link" and a.get("href"):
            self.links.append(a["href"])


def _text(path: Path) -> str:
    """A page's visible text (tags removed, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))


def _parse(path: Path) -> _Links:
    p = _Links()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def test_no_broken_internal_link_or_missing_figure(site):
    out = site["out"]
    pages = {p: _parse(p) for p in out.rglob("*.html")}
    broken = []
    for page, parsed in pages.items():
        for link in parsed.links:
            u = urlsplit(link)
            if u.scheme or u.netloc or link.startswith("mailto:"):
                continue
            target = (page.parent / unquote(u.path)).resolve() if u.path else page
            if not target.exists():
                broken.append(f"{page.relative_to(out)}: {link} (no file)")
            elif u.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(u.fragment) not in ids:
                    broken.append(f"{page.relative_to(out)}: {link} (no anchor)")
    assert not broken, "\n".join(broken[:30])
    for cid in site["ids"][:2]:
        imgs = pages[out / "claims" / f"{cid}.html"].images
        assert any(cid in src and src.endswith(".png") for src in imgs), (cid, imgs)


def test_every_registered_claim_has_a_page_and_an_index_row(site):
    from claims.registry import default_registry
    index = (site["out"] / "claims" / "index.html").read_text(encoding="utf-8")
    for c in default_registry():
        assert (site["out"] / "claims" / f"{c.id}.html").is_file(), c.id
        assert f'href="{c.id}.html"' in index, c.id
    assert "not run yet" in index


def test_claim_page_has_every_number_in_full(site):
    a, b, c = site["ids"]
    text = _text(site["out"] / "claims" / f"{a}.html")
    for needle in ("1.2345678901234567", "0.341298765432109", "7.0131234567e-10", "-0.2345678901234568",
                   "kappa=1.01", "R_T_over_R0", "a | pipe and *stars* and `ticks`", "nan", "[0, 1, 2, 3, 4, 5, 6, 7, "
                   "8, 9, 10, 11]", "violated", "not run yet", "upper_bound", "Margin", "Measured", "Predicted"):
        assert needle in text, needle
    both = _text(site["out"] / "claims" / f"{b}.html")
    assert "Numbers at quick scale" in both and "Numbers at full scale" in both
    assert "-0.8970123456789" in both and "holds" in both
    raised = _text(site["out"] / "claims" / f"{c}.html")
    assert "fake failure inside the claim" in raised and "inconclusive" in raised


def test_api_reference_from_the_typed_constructors(site):
    import subspace
    api = html.unescape((site["out"] / "api.html").read_text(encoding="utf-8"))
    for cls in subspace.CONSTRUCTORS.values():
        assert f'id="subspace.{cls.__name__}"' in api, cls.__name__
    assert 'id="subspace.newton_schulz"' in api and 'id="subspace.make"' in api
    assert "update_gap" in api and "rank" in api   # keyword parameters from the generated signatures


def test_notebooks_speed_tables_and_recipes_are_rendered(site):
    out = site["out"]
    for stem in {p.stem for p in (ROOT / "notebooks").glob("*.py")}:
        assert (out / "notebooks" / f"{stem}.html").is_file(), stem
    pages = [(out / "notebooks" / f"{p.stem}.html").read_text(encoding="utf-8") for p in (ROOT / "notebooks").glob("*.py")]
    assert any('href="../claims/' in page for page in pages), "no notebook links to a claim page"
    perf = (out / "performance.html").read_text(encoding="utf-8")
    assert "<table" in perf and "galore-torch" in perf
    scaling = _text(out / "scaling.html")
    assert "torchrun" in scaling and "--device cuda" in scaling


def test_pages_without_records_say_not_run_yet(tmp_path):
    sys.path.insert(0, str(DOCS))
    try:
        import build_pages
    finally:
        sys.path.remove(str(DOCS))
    from claims.registry import default_registry
    import io
    stream = io.StringIO()
    src = tmp_path / "src"
    site = build_pages.generate(src, tmp_path / "no-results", ROOT, registry=default_registry(), stream=stream)
    assert "has no records" in stream.getvalue() and "make verify" in stream.getvalue()
    first = next(iter(default_registry())).id
    assert "{verdict}`not run yet`" in (src / "claims" / f"{first}.md").read_text()
    assert site.records == {}


# ---------------------------------------------------------------------------------------------- browser

def _chromium(args: list[str], timeout: int = 60) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="sublab-chromium-")
    try:
        return subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
                               "--disable-background-networking", "--disable-component-update", "--disable-sync",
                               "--no-first-run", "--disable-quic", "--hide-scrollbars", f"--user-data-dir={profile}",
                               *args], capture_output=True, text=True, timeout=timeout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (.ci/run installs Debian's chromium)")
def test_browser_shows_figure_and_verdict(site, tmp_path):
    from PIL import Image
    assert site["proc"].returncode == 0
    out = site["out"]
    violated = site["ids"][0]
    index_url = (out / "claims" / "index.html").as_uri()
    claim_url = (out / "claims" / f"{violated}.html").as_uri()

    dom = _chromium(["--dump-dom", index_url]).stdout
    assert 'class="verdict verdict-violated"' in dom and 'class="verdict verdict-holds"' in dom, dom[:2000]
    assert f'href="{violated}.html"' in dom
    dom = _chromium(["--dump-dom", claim_url]).stdout
    assert 'class="verdict verdict-violated"' in dom and "<img" in dom and f"{violated}.png" in dom

    shot = tmp_path / "claim.png"
    proc = _chromium([f"--screenshot={shot}", "--window-size=1280,2400", claim_url])
    assert shot.is_file(), proc.stderr[-2000:]
    im = Image.open(shot).convert("RGB")
    colours = im.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50, "the screenshot is blank"
    counts = {c: n for n, c in colours}
    assert counts.get(MAGENTA, 0) > 500, "the claim's figure is not visible in the page"
    assert counts.get(VIOLATED_RED, 0) > 50, "the 'violated' verdict badge is not visible in the page"
