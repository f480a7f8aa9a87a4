# ruff: noqa: S608 -- table and column names are this migration's constants; values are bound.
"""Licence and medical card numbers, the vendor JSON, quarantined payloads and idempotency records' stored answers
encrypted at rest (issue 18; customers.crypto, customers.fields), with blind indexes for the exact lookups.

The columns become text holding ciphertexts; existing rows are encrypted in batches (`encrypt_rows`), their blind
indexes, digest and index key id computed, then the indexes are built (the old UPPER(drivers_license) one goes).
Backwards, the rows are decrypted again before the columns take their old types. Run with the keys the service
will use (PII_ENCRYPTION_KEYS, PII_BLIND_INDEX_KEYS). The whole migration is one transaction: about a minute per
100,000 customers.

On SQLite, altering the columns rebuilds the table, which drops the name indexes 0004 made by hand (they are not in
the model's state); they are made again at the end (and, backwards, at the start), as in 0008.
"""

import importlib
import json

from django.db import migrations, models

import customers.fields
from customers import crypto
from customers.fields import (
    CARD_PURPOSE,
    IDEMPOTENCY_RESPONSE_PURPOSE,
    LICENCE_PURPOSE,
    RAW_PURPOSE,
    REJECTED_PAYLOAD_PURPOSE,
    canonical_json,
    card_index,
    licence_index,
    pii_digest,
)

_names = importlib.import_module("customers.migrations.0004_name_indexes_per_database")

BATCH = 2000


def _batches(cursor, select: str):
    """Rows of `select` (id first; it ends with `WHERE id > %s ORDER BY id LIMIT %s`) in keyset batches."""
    last = 0
    while True:
        cursor.execute(select, [last, BATCH])
        rows = cursor.fetchall()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _json_text(value) -> str:
    """A stored JSON value (text; on PostgreSQL, jsonb cast to text) as canonical_json."""
    return canonical_json(json.loads(value) if isinstance(value, str) else value)


def encrypt_rows(apps, schema_editor):
    connection = schema_editor.connection
    key_id = crypto.index_keys().current_id
    with connection.cursor() as read, connection.cursor() as write:
        select = (
            'SELECT "id", "drivers_license", "medical_card_number", "raw" FROM "customers_customer" '
            'WHERE "id" > %s ORDER BY "id" LIMIT %s'
        )
        for rows in _batches(read, select):
            params = []
            for pk, licence, card, raw in rows:
                licence, card = licence or "", card or ""
                raw_json = _json_text(raw) if raw else "{}"
                params.append(
                    [
                        crypto.encrypt(licence, purpose=LICENCE_PURPOSE),
                        crypto.encrypt(card, purpose=CARD_PURPOSE),
                        crypto.encrypt(raw_json, purpose=RAW_PURPOSE),
                        licence_index(licence),
                        card_index(card),
                        pii_digest(licence, card, raw_json),
                        key_id,
                        pk,
                    ]
                )
            write.executemany(
                'UPDATE "customers_customer" SET "drivers_license" = %s, "medical_card_number" = %s, "raw" = %s, '
                '"drivers_license_index" = %s, "medical_card_number_index" = %s, "pii_digest" = %s, '
                '"pii_index_key" = %s WHERE "id" = %s',
                params,
            )
        for table, column, purpose in _JSON_COLUMNS:
            select = f'SELECT "id", "{column}" FROM "{table}" WHERE "id" > %s AND "{column}" IS NOT NULL ORDER BY "id" LIMIT %s'
            for rows in _batches(read, select):
                write.executemany(
                    f'UPDATE "{table}" SET "{column}" = %s WHERE "id" = %s',
                    [[crypto.encrypt(_json_text(value), purpose=purpose), pk] for pk, value in rows],
                )
    _fire_deferred_checks(schema_editor)


def decrypt_rows(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as read, connection.cursor() as write:
        select = (
            'SELECT "id", "drivers_license", "medical_card_number", "raw" FROM "customers_customer" '
            'WHERE "id" > %s ORDER BY "id" LIMIT %s'
        )
        for rows in _batches(read, select):
            write.executemany(
                'UPDATE "customers_customer" SET "drivers_license" = %s, "medical_card_number" = %s, "raw" = %s '
                'WHERE "id" = %s',
                [
                    [
                        crypto.decrypt(licence or "", purpose=LICENCE_PURPOSE),
                        crypto.decrypt(card or "", purpose=CARD_PURPOSE),
                        crypto.decrypt(raw, purpose=RAW_PURPOSE) if raw else "{}",
                        pk,
                    ]
                    for pk, licence, card, raw in rows
                ],
            )
        for table, column, purpose in _JSON_COLUMNS:
            select = f'SELECT "id", "{column}" FROM "{table}" WHERE "id" > %s AND "{column}" IS NOT NULL ORDER BY "id" LIMIT %s'
            for rows in _batches(read, select):
                write.executemany(
                    f'UPDATE "{table}" SET "{column}" = %s WHERE "id" = %s',
                    [[crypto.decrypt(value, purpose=purpose), pk] for pk, value in rows],
                )
    _fire_deferred_checks(schema_editor)


def _fire_deferred_checks(schema_editor) -> None:
    """PostgreSQL will not build an index on a table with deferred (foreign key) checks pending from the UPDATEs."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")


_JSON_COLUMNS = (
    ("customers_rejectedrecord", "payload", REJECTED_PAYLOAD_PURPOSE),
    ("customers_idempotencyrecord", "response", IDEMPOTENCY_RESPONSE_PURPOSE),
)


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0010_access_events_and_reveal"),
        ("stores", "0003_apikey_scopes"),
    ]

    operations = [
        # Backwards, the columns' old types rebuild the table again on SQLite: this, run last then, remakes the
        # name indexes.
        migrations.RunPython(migrations.RunPython.noop, _names.create_sqlite_indexes),
        migrations.RemoveIndex(
            model_name="customer",
            name="customer_licence_ci",
        ),
        migrations.AddField(
            model_name="customer",
            name="drivers_license_index",
            field=customers.fields.BlindIndexField(purpose="customers.drivers_license", source="drivers_license"),
        ),
        migrations.AddField(
            model_name="customer",
            name="medical_card_number_index",
            field=customers.fields.BlindIndexField(
                purpose="customers.medical_card_number", source="medical_card_number"
            ),
        ),
        migrations.AddField(
            model_name="customer",
            name="pii_digest",
            field=customers.fields.PiiDigestField(),
        ),
        migrations.AddField(
            model_name="customer",
            name="pii_index_key",
            field=customers.fields.IndexKeyIdField(),
        ),
        migrations.AlterField(
            model_name="customer",
            name="drivers_license",
            field=customers.fields.EncryptedTextField(blank=True, max_length=64, purpose="customers.drivers_license"),
        ),
        migrations.AlterField(
            model_name="customer",
            name="medical_card_number",
            field=customers.fields.EncryptedTextField(
                blank=True, max_length=64, purpose="customers.medical_card_number"
            ),
        ),
        migrations.AlterField(
            model_name="customer",
            name="raw",
            field=customers.fields.EncryptedJSONField(
                blank=True,
                default=dict,
                help_text="The vendor's JSON, as received (encrypted at rest).",
                purpose="customers.raw",
            ),
        ),
        migrations.AlterField(
            model_name="idempotencyrecord",
            name="response",
            field=customers.fields.EncryptedJSONField(
                blank=True,
                help_text="The outcome to replay, once completed (encrypted at rest: the customer as created).",
                null=True,
                purpose="customers.idempotency_response",
            ),
        ),
        migrations.AlterField(
            model_name="rejectedrecord",
            name="payload",
            field=customers.fields.EncryptedJSONField(
                blank=True,
                help_text="The record as the POS sent it (encrypted at rest: it holds licence and card numbers).",
                null=True,
                purpose="customers.rejected_payload",
            ),
        ),
        migrations.RunPython(encrypt_rows, decrypt_rows),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(fields=["drivers_license_index"], name="customer_licence_index"),
        ),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(fields=["medical_card_number_index"], name="customer_card_index"),
        ),
        migrations.RunPython(_names.create_sqlite_indexes, migrations.RunPython.noop),
    ]
