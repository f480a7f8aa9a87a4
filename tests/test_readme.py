"""The README points only at what a clone has."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_readme_names_no_file_outside_the_repository():
    assert re.findall(r"\.\./[\w./-]+", README) == []


def test_every_link_of_the_readme_is_in_the_repository():
    targets = re.findall(r"\]\(([^)#\s]+)\)", README)
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert "docs/DESIGN.md" in local
    assert [t for t in local if not (ROOT / t).exists()] == []


def test_the_design_in_the_repository_is_the_contract():
    design = (ROOT / "docs" / "DESIGN.md").read_text()
    assert "# Customer Flow — design" in design
    assert "`manage.py demo`" in design
