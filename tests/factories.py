"""Typed factories for test data."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

import factory
from django.utils import timezone

from customers.models import Customer, CustomerType
from pos_integrations.records import CustomerRecord
from stores.models import PosVendor, Store
from syncs.models import CustomerSync, SyncKind, SyncStatus, SyncTrigger

CREDENTIALS = {
    PosVendor.LEAFLOGIX: {"api_key": "ll-location-key"},
    PosVendor.TREEZ: {"dispensary": "partnersandbox2", "client_id": "treez-client", "api_key": "treez-secret"},
    PosVendor.FLOWHUB: {"client_id": "fh-client", "api_key": "fh-secret", "store_id": "fh-store"},
    PosVendor.COVASOFT: {
        "company_id": "14146",
        "username": "cova-user",
        "password": "cova-pass",
        "client_id": "cova-client",
        "client_secret": "cova-secret",
    },
    PosVendor.BLAZE: {"partner_key": "blaze-partner", "api_key": "blaze-dispensary"},
}


class StoreFactory(factory.django.DjangoModelFactory[Store]):
    class Meta:
        model = Store

    name = factory.Sequence(lambda n: f"Green Leaf {n}")
    catalog_id = factory.Sequence(lambda n: f"greenleaf-{n}")
    pos_vendor = PosVendor.TREEZ
    pos_credentials = factory.LazyAttribute(lambda o: dict(CREDENTIALS[PosVendor(o.pos_vendor)]))


class CustomerFactory(factory.django.DjangoModelFactory[Customer]):
    class Meta:
        model = Customer

    store = factory.SubFactory(StoreFactory)
    customer_id = factory.Sequence(lambda n: str(5000 + n))
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda o: f"{o.first_name}.{o.last_name}@example.com".lower())
    phone = factory.Sequence(lambda n: f"555{n:07d}")
    birthday = dt.date(1988, 9, 12)
    customer_type = CustomerType.RECREATIONAL
    loyalty_points = Decimal(0)
    pos_updated_at = factory.LazyFunction(timezone.now)


class CustomerSyncFactory(factory.django.DjangoModelFactory[CustomerSync]):
    class Meta:
        model = CustomerSync

    store = factory.SubFactory(StoreFactory)
    status = SyncStatus.FINISHED
    kind = SyncKind.INCREMENTAL
    trigger = SyncTrigger.SCHEDULE


BASE_TIME = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def make_record(index: int, *, updated: dt.datetime | None = None, **changes: Any) -> CustomerRecord:
    """A plausible POS record number `index`."""
    record = CustomerRecord(
        customer_id=str(1000 + index),
        first_name=f"First{index}",
        last_name=f"Last{index}",
        email=f"person{index}@example.com",
        phone=f"555{index:07d}",
        birthday=dt.date(1980, 1, 1) + dt.timedelta(days=index % 9000),
        gender="F" if index % 2 else "M",
        loyalty_points=Decimal(index % 50),
        pos_created_at=BASE_TIME - dt.timedelta(days=400),
        pos_updated_at=updated or BASE_TIME - dt.timedelta(days=300) + dt.timedelta(seconds=index),
        raw={"id": 1000 + index, "name": f"First{index} Last{index}", "v": 1},
    )
    return dataclasses.replace(record, **changes) if changes else record
