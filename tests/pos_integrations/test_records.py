"""The dataclasses that cross the package boundary."""

from __future__ import annotations

from dataclasses import fields
from datetime import date

from pos_integrations import CustomerInput


def test_a_create_input_as_a_record_keeps_everything_that_was_sent() -> None:
    # A value of its own in every field a create sends (a date where it takes one): none may go missing from
    # what the API shows of a customer the POS created but answered unreadably.
    sent = {
        f.name: date(2000, 1, 1 + i) if "date" in str(f.type) else f"{f.name}-{i}"
        for i, f in enumerate(fields(CustomerInput))
    }
    record = CustomerInput(**sent).as_record("T-88", raw={"id": "T-88"})
    assert (record.customer_id, record.raw) == ("T-88", {"id": "T-88"})
    assert {name: getattr(record, name) for name in sent} == sent
    assert CustomerInput(first_name="A", last_name="B").as_record("1").raw == {}
