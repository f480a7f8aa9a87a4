import pytest
from django.db import IntegrityError, transaction

from syncs.models import CustomerSync, SyncStatus
from tests.factories import CustomerSyncFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("first", [SyncStatus.PENDING, SyncStatus.IN_PROGRESS])
@pytest.mark.parametrize("second", [SyncStatus.PENDING, SyncStatus.IN_PROGRESS])
def test_second_active_sync_for_a_store_is_rejected(store, first, second):
    CustomerSyncFactory(store=store, status=first)
    with pytest.raises(IntegrityError), transaction.atomic():
        CustomerSyncFactory(store=store, status=second)
    assert CustomerSync.objects.filter(store=store).count() == 1


def test_finished_and_failed_syncs_do_not_block_a_new_one(store):
    CustomerSyncFactory(store=store, status=SyncStatus.FINISHED)
    CustomerSyncFactory(store=store, status=SyncStatus.FAILED)
    CustomerSyncFactory(store=store, status=SyncStatus.PENDING)
    assert CustomerSync.objects.running().count() == 1


def test_other_stores_can_sync_at_the_same_time():
    CustomerSyncFactory(status=SyncStatus.IN_PROGRESS)
    CustomerSyncFactory(status=SyncStatus.IN_PROGRESS)
    assert CustomerSync.objects.running().count() == 2
