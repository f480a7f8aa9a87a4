"""The erasure command (customers.erasure, `manage.py erase_customer`) leaves no trace of the person in what it
prints, in the logs or in Sentry: neither when it erases, nor when it fails half-way with the person's record in its
frames (the real SDK with the service's options, as in tests/test_pii_capture.py; an error that ends a command
reaches Sentry through its excepthook integration, which captures as `capture_exception` does)."""

from __future__ import annotations

import sys
from io import StringIO
from typing import Any

import pytest
import sentry_sdk
from django.core.management import call_command
from django.db import DatabaseError

from customers.models import Customer
from tests.factories import CustomerFactory
from tests.test_pii_capture import (  # noqa: F401  (fixtures: sentry, logs)
    BIRTHDAY,
    CARD,
    EMAIL,
    LICENCE,
    PERSONAL,
    PHONE,
    KeptTransport,
    assert_free_of,
    errors,
    exception_types,
    log_text,
    logs,
    sentry,
)

pytestmark = pytest.mark.django_db
SURNAME = "Odegaard"
POS_ID = "T-58213"


def test_the_erasure_command_and_its_failure_name_nobody(store, sentry, logs, monkeypatch):  # noqa: F811
    person = CustomerFactory(
        store=store,
        customer_id=POS_ID,
        first_name="Sean",
        last_name=SURNAME,
        phone=PHONE,
        email=EMAIL,
        drivers_license=LICENCE,
        medical_card_number=CARD,
        birthday=BIRTHDAY,
        raw={"id": POS_ID, "license": LICENCE, "mmj_card": CARD, "dob": BIRTHDAY.isoformat(), "phone": PHONE},
    )
    argv = ["manage.py", "erase_customer", "--store", store.catalog_id, "--customer-id", person.customer_id]
    monkeypatch.setattr(sys, "argv", argv)  # what Sentry reports of the command line
    person_ids = (POS_ID, SURNAME)

    def refused(**_: Any) -> Any:
        raise DatabaseError("could not write the suppression")

    monkeypatch.setattr("customers.erasure._suppression_get_or_add", refused)
    out, err = StringIO(), StringIO()
    with pytest.raises(DatabaseError) as failure:
        call_command(
            "erase_customer", store=store.catalog_id, customer_id=person.customer_id, interactive=False, stdout=out
        )
    sentry_sdk.capture_exception(failure.value)
    [event] = errors(sentry)
    assert "DatabaseError" in exception_types(event)
    assert Customer.objects.filter(pk=person.pk).exists()  # rolled back: nothing erased

    monkeypatch.undo()
    monkeypatch.setattr(sys, "argv", argv)
    call_command(
        "erase_customer",
        store=store.catalog_id,
        customer_id=person.customer_id,
        interactive=False,
        stdout=out,
        stderr=err,
    )
    assert "Erasure #" in out.getvalue()
    assert not Customer.objects.filter(pk=person.pk).exists()
    assert_free_of(out.getvalue() + err.getvalue(), *PERSONAL, *person_ids)
    assert_free_of(log_text(logs), *PERSONAL, *person_ids)
    assert_free_of(sentry.text(), *PERSONAL, *person_ids)
