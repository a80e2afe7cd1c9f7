"""Every notebook (jupytext py:percent source) executes top to bottom at quick scale; a failing cell or a failed
verdict assertion inside a notebook fails the test."""
from pathlib import Path

import jupytext
import nbclient
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.py"))


def test_there_is_a_notebook_per_paper():
    stems = {p.stem for p in NOTEBOOKS}
    assert {"golore", "sumo", "osd", "snsm", "galore", "muon"} <= stems, stems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path):
    nb = jupytext.read(path)
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), "needs a cell tagged 'parameters'"
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
