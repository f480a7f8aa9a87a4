"""The README's field-mapping table agrees with the mapping the code declares and uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pos_integrations import CLIENTS, VENDOR_LABELS
from pos_integrations.records import CANONICAL_FIELDS

from .conftest import DIALECTS

ROOT = Path(__file__).resolve().parents[2]
START, END = "<!-- field-mapping:start -->", "<!-- field-mapping:end -->"
PLAIN_TEXT_FIELDS = {
    "first_name",
    "last_name",
    "email",
    "notes",
    "city",
    "state",
    "postal_code",
    "drivers_license",
    "medical_card_number",
}


def documented_table() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text.split(START, 1)[1].split(END, 1)[0]


def parse_table(text: str) -> tuple[list[str], dict[str, list[str]]]:
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    header, rows = cells[0], [row for row in cells[1:] if not set("".join(row)) <= set("-: ")]
    return header, {row[0].strip("`"): row[1:] for row in rows}


def test_table_matches_the_declared_sources() -> None:
    header, rows = parse_table(documented_table())
    assert header[1:] == [VENDOR_LABELS[v] for v in CLIENTS]
    assert list(rows) == list(CANONICAL_FIELDS)
    for field, cells in rows.items():
        for vendor, cell in zip(CLIENTS, cells, strict=True):
            assert cell == CLIENTS[vendor].FIELD_SOURCES[field].doc, (vendor, field)


@pytest.mark.parametrize("vendor", sorted(CLIENTS))
def test_the_parser_reads_the_documented_keys(vendor: str, make_client: Any) -> None:
    client = make_client(vendor)
    sample = DIALECTS[vendor].record(1)
    for field, source in client.FIELD_SOURCES.items():
        if field in PLAIN_TEXT_FIELDS and source.keys:
            raw = {**sample, **{k: None for k in source.keys}, source.keys[0]: "Zed Value"}
            assert getattr(client.parse_record(raw), field) == "Zed Value", (vendor, field)
