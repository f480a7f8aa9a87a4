"""The syncs endpoints: parse the request, call a selector or service, shape the answer."""

from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.viewsets import ViewSet

from api import examples as api_ex
from api.authentication import request_api_key
from api.query import parse_query
from api.schema import BODY_ERRORS, BODY_EXAMPLES, COMMON_EXAMPLES, ERRORS
from api.serializers import ErrorSerializer
from stores.models import ApiScope
from stores.selectors import store_get_for_key
from syncs.api import examples as ex
from syncs.api.serializers import (
    SyncListFilter,
    SyncListResponseSerializer,
    SyncTriggerResponseSerializer,
    SyncTriggerSerializer,
    store_sync_status_as_dict,
    sync_as_dict,
)
from syncs.models import CustomerSync
from syncs.selectors import store_sync_status_list
from syncs.services import sync_trigger


class SyncViewSet(ViewSet):
    """Customer syncs of the stores the API key reaches."""

    required_scope = ApiScope.SYNCS
    # For the schema only: drf-spectacular documents the list's query parameters from the filterset.
    filter_backends = [DjangoFilterBackend]
    filterset_class = SyncListFilter
    queryset = CustomerSync.objects.none()

    @extend_schema(
        operation_id="syncs_list",
        summary="Sync status per store",
        description="Each store the key reaches, with its latest sync (status, times, counts, error).",
        filters=True,
        responses={
            200: SyncListResponseSerializer,
            404: OpenApiResponse(ErrorSerializer, description="catalog_id is not one of the key's stores."),
            **ERRORS,
        },
        examples=[ex.SYNCS_OK, api_ex.STORE_NOT_FOUND, api_ex.BAD_PARAMS, *COMMON_EXAMPLES],
    )
    def list(self, request: Request) -> Response:
        params = parse_query(SyncListFilter, request.query_params)
        api_key = request_api_key(request)
        store = (
            store_get_for_key(api_key=api_key, catalog_id=params["catalog_id"]) if params.get("catalog_id") else None
        )
        statuses = store_sync_status_list(api_key=api_key, store=store)
        return Response({"syncs": [store_sync_status_as_dict(s) for s in statuses]})

    @extend_schema(
        operation_id="syncs_create",
        summary="Sync a store now",
        description="Queues a sync of the store; if one is already pending or running, answers with that one (200).",
        request=SyncTriggerSerializer,
        responses={
            202: SyncTriggerResponseSerializer,
            200: SyncTriggerResponseSerializer,
            404: OpenApiResponse(ErrorSerializer, description="catalog_id is not one of the key's stores."),
            **ERRORS,
            **BODY_ERRORS,
        },
        examples=[
            ex.SYNC_REQUEST,
            ex.SYNC_STARTED,
            ex.SYNC_RUNNING,
            ex.SYNC_INVALID,
            api_ex.STORE_NOT_FOUND,
            *BODY_EXAMPLES,
            *COMMON_EXAMPLES,
        ],
    )
    def create(self, request: Request) -> Response:
        serializer = SyncTriggerSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        store = store_get_for_key(api_key=request_api_key(request), catalog_id=serializer.validated_data["catalog_id"])
        sync, created = sync_trigger(store=store, kind=serializer.validated_data["kind"], trigger="api")
        return Response(
            {"catalog_id": store.catalog_id, "created": created, "sync": sync_as_dict(sync)},
            status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
        )
