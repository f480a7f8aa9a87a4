"""Reads for stores and API keys."""

from __future__ import annotations

from django.db.models import QuerySet

from stores.models import ApiKey, Store, hash_api_key

# Keys look like cf_<prefix>_<secret>; anything much longer is not one of ours and is not worth hashing.
MAX_RAW_KEY_LENGTH = 200


class StoreNotReachable(LookupError):
    """No store with this catalog id that the key reaches (unknown and out-of-scope look the same)."""

    def __init__(self, catalog_id: str) -> None:
        super().__init__(catalog_id)
        self.catalog_id = catalog_id


def api_key_get_by_raw(*, raw_key: str) -> ApiKey | None:
    """The key whose secret is `raw_key`, revoked or not; None when no key has that secret."""
    raw_key = raw_key.strip()
    if not raw_key or len(raw_key) > MAX_RAW_KEY_LENGTH:
        return None
    return ApiKey.objects.filter(hashed_key=hash_api_key(raw_key)).first()


def api_key_store_ids(*, api_key: ApiKey) -> frozenset[int] | None:
    """The ids of the stores a key reaches, or None when it reaches every store (read once per key object)."""
    if api_key.all_stores:
        return None
    cached: frozenset[int] | None = getattr(api_key, "_store_ids", None)
    if cached is None:
        cached = frozenset(api_key.stores.values_list("id", flat=True))
        api_key._store_ids = cached  # type: ignore[attr-defined]
    return cached


def store_list_for_key(*, api_key: ApiKey) -> QuerySet[Store]:
    """The stores a key reaches."""
    store_ids = api_key_store_ids(api_key=api_key)
    stores = Store.objects.all()
    return stores if store_ids is None else stores.filter(id__in=store_ids)


def store_get_for_key(*, api_key: ApiKey, catalog_id: str) -> Store:
    """The store with this catalog id if the key reaches it; StoreNotReachable for unknown and out-of-scope alike."""
    store = store_list_for_key(api_key=api_key).filter(catalog_id=catalog_id).first()
    if store is None:
        raise StoreNotReachable(catalog_id)
    return store
