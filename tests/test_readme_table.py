"""The README claims table is generated from saved records, between markers, atomically."""
import pytest

from claims import runner


def test_readme_table_replaces_only_the_marked_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{runner.README_START}\nold table\n{runner.README_END}\noutro\n")
    records = [{"id": "b.two", "paper": "P", "kind": "paper", "statement": "x <= 1", "verdict": "violated",
                "margin": {"value": 1.0, "unit": "of the bound"}, "measured": {"x": 2.0}, "predicted": {"x": 1.0}},
               {"id": "a.one", "paper": "P", "kind": "reading", "statement": "x <= 1", "verdict": "holds",
                "margin": {"value": 0.5, "unit": "of the bound"}, "measured": {"x": 0.5}, "predicted": {"x": 1.0}}]
    runner.update_readme(readme, runner.readme_table(records, {"scale": "quick", "date": "2026-11-26T00:00",
                                                               "code_version": "abc", "device": "cpu"}))
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("\noutro\n") and "old table" not in text
    assert text.index("`a.one`") < text.index("`b.two`") and "**violated**" in text
    assert "| reading | **holds** | 0.5 of the bound |" in text


def test_readme_without_markers_is_an_error(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="markers"):
        runner.update_readme(readme, "table")
