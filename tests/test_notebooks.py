"""Every notebook (jupytext py:percent source) executes top to bottom at quick scale; a failing cell, an error
output (e.g. a figure that failed to render) or a notebook without an inline figure fails the test.
The claims a notebook shows are read from the session's claim cache (tests/conftest.py): an injected cell after
the ``parameters`` cell sets ``RESULTS`` to the cache's folder, so no claim runs twice in the suite."""
import re
from pathlib import Path

import jupytext
import nbclient
import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.py"))
SHOWN = re.compile(r"""show\(\s*["']([\w.\-]+)["']""")


def test_there_is_a_notebook_per_paper():
    stems = {p.stem for p in NOTEBOOKS}
    assert {"golore", "sumo", "osd", "snsm", "galore", "muon"} <= stems, stems


def _with_results(nb, folder: Path):
    """``nb`` with a cell setting RESULTS = folder right after its ``parameters`` cell (as papermill injects)."""
    where = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(where) == 1, "needs exactly one cell tagged 'parameters'"
    assert "RESULTS" in nb.cells[where[0]].source, "the parameters cell names RESULTS"
    cell = nbformat.v4.new_code_cell(f"RESULTS = {str(folder)!r}", metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(where[0] + 1, cell)
    return nb


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, claim_cache):
    source = path.read_text(encoding="utf-8")
    shown = sorted(set(SHOWN.findall(source)))
    assert shown, "a notebook shows its paper's claims"
    claim_cache.outcomes(shown)
    nb = _with_results(jupytext.reads(source, fmt="py:percent"), claim_cache.folder)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.get("output_type") == "error"
              or (o.get("output_type") == "stream" and o.get("name") == "stderr" and "Traceback" in o.get("text", ""))]
    assert not errors, [e.get("ename", "") + ": " + e.get("evalue", e.get("text", ""))[:300] for e in errors]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 1, "figures are displayed inline"
    printed = "".join(o.get("text", "") for o in outputs)
    assert printed.count("(saved record from") >= len(shown), "every shown claim is read from the cache"
