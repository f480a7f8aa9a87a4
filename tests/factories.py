"""Typed factories for test data."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import factory
from django.utils import timezone

from customers.models import Customer, CustomerType
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
