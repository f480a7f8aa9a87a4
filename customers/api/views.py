"""The customers endpoints: parse the request, call a selector or service, shape the answer (errors: api.errors)."""

from __future__ import annotations

import re
from typing import Any

import django_filters
from django.http import QueryDict
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.viewsets import ViewSet

from api import examples as api_ex
from api.authentication import request_api_key
from api.errors import ApiError, InvalidParameters
from api.pagination import (
    MAX_ID,
    PAGE_PARAMS,
    PageRequest,
    encode_cursor,
    next_link,
    page_request,
    pagination_parameters,
)
from api.query import all_parameters, body_errors, parse_query, query_from_body
from api.schema import BODY_ERRORS, BODY_EXAMPLES, COMMON_EXAMPLES, ERRORS
from api.serializers import ErrorSerializer
from customers.api import examples as ex
from customers.api.errors import CUSTOMER_ERRORS
from customers.api.filters import CustomerFilter, LegacySearchFilter
from customers.api.pii import PiiMaskingMixin
from customers.api.serializers import (
    CustomerCreatedResponseSerializer,
    CustomerCreateSerializer,
    CustomerListResponseSerializer,
    CustomerResponseSerializer,
    CustomerSearchResponseSerializer,
    DuplicateErrorSerializer,
    LegacySearchResponseSerializer,
    NewCustomerSerializer,
    required_by_pos,
)
from customers.filters import FILTERS, CustomerFilters
from customers.models import Customer
from customers.selectors import customer_get, customer_list, customer_peak_list
from customers.services import IdempotencyKey, customer_create, customer_search, request_fingerprint
from pos_integrations import VENDOR_LABELS
from stores.models import ApiKey, ApiScope
from stores.selectors import store_get_for_key

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY_LENGTH = 255
# 1 to 255 visible ASCII characters, spaces only between them (a UUID, say).
IDEMPOTENCY_KEY_PATTERN = rf"^[!-~](?:[ -~]{{0,{MAX_IDEMPOTENCY_KEY_LENGTH - 2}}}[!-~])?$"
LEGACY_MAX_RESULTS = 100


def _required_text() -> str:
    """What each POS needs to create a customer, where it is more than the body requires."""
    needs = "; ".join(
        f"{VENDOR_LABELS[vendor]} needs {', '.join(fields)}" for vendor, fields in required_by_pos().items() if fields
    )
    return f"Per POS (`x-required-by-pos`, by `pos_vendor`, lists them all): {needs}."


def choice_parameters() -> list[OpenApiParameter]:
    """The list's true/false filters as the strings they are (drf-spectacular would type them boolean with a string
    enum, which no value satisfies)."""
    return [
        OpenApiParameter(
            name, str, enum=[v for v, _ in spec.query.extra["choices"]], description=spec.query.extra["help_text"]
        )
        for name, spec in FILTERS.items()
        if isinstance(spec.query, django_filters.TypedChoiceFilter)
    ]


class CustomerViewSet(PiiMaskingMixin, ViewSet):
    """Customers of the stores the API key reaches."""

    domain_errors = CUSTOMER_ERRORS  # how api.errors.exception_handler answers this app's errors
    required_scopes = {
        "list": ApiScope.CUSTOMERS_READ,
        "search": ApiScope.CUSTOMERS_READ,
        "retrieve": ApiScope.CUSTOMERS_READ,
        "create": ApiScope.CUSTOMERS_WRITE,
    }

    # For the schema only: drf-spectacular documents the query parameters from the filterset.
    filter_backends = [DjangoFilterBackend]
    filterset_class = CustomerFilter
    queryset = Customer.objects.none()

    @extend_schema(
        operation_id="customers_list",
        summary="List and search customers",
        description=(
            "Customers from the local mirror, oldest first (by id), a page at a time: follow `next`. "
            "A lookup by phone, email or driver_license that the mirror cannot answer asks the store's POS live "
            "(where it can search; needs catalog_id unless the key reaches one store), keeps what it finds and "
            'answers with `"source": "pos"`. An empty or blank phone, email, driver_license or medical_card_number '
            "is a 400 naming it, never every customer; an empty name, search or catalog_id is no filter."
        ),
        parameters=[
            *pagination_parameters(items="Customers"),
            *choice_parameters(),
        ],
        filters=True,
        responses={
            200: CustomerListResponseSerializer,
            404: OpenApiResponse(ErrorSerializer, description="catalog_id is not one of the key's stores."),
            **ERRORS,
        },
        examples=[ex.LIST_OK, ex.LIST_LIVE, api_ex.BAD_PARAMS, api_ex.STORE_NOT_FOUND, *COMMON_EXAMPLES],
    )
    def list(self, request: Request) -> Response:
        filters, page = _parameters(request.query_params)
        result = customer_search(api_key=request_api_key(request), filters=filters, after=page.after, size=page.size)
        body: dict[str, Any] = {
            "customers": result.customers,
            "next": next_link(request, result.next_after),
            "source": result.source,
        }
        if result.warning:
            body["warning"] = result.warning
        return Response(body)

    @extend_schema(
        operation_id="customers_search",
        summary="Search customers, the lookup in the body",
        description=(
            "The list's search with its parameters in a JSON body instead of the URL: the way for lookups by "
            "phone, email, driver_license, medical_card_number or birthday, which a URL would put in access logs "
            "and proxies. Takes "
            "the list's parameters (the same names and values; `page_size` a number) and answers as the list, "
            "except that the next page is `next_cursor`, sent back as `cursor` in the next body."
        ),
        request={"application/json": {"type": "object"}},  # the list's parameters: api.schema.body_from_query
        extensions={"x-body-from-query": "customers_list"},
        responses={
            200: CustomerSearchResponseSerializer,
            404: OpenApiResponse(ErrorSerializer, description="catalog_id is not one of the key's stores."),
            **ERRORS,
            **BODY_ERRORS,
        },
        examples=[
            ex.SEARCH_REQUEST,
            ex.SEARCH_OK,
            ex.SEARCH_INVALID,
            api_ex.STORE_NOT_FOUND,
            *BODY_EXAMPLES,
            *COMMON_EXAMPLES,
        ],
    )
    @action(detail=False, methods=["post"], url_path="search")
    def search(self, request: Request) -> Response:
        query, errors = query_from_body(request.data, numbers=frozenset({"page_size"}))
        try:
            filters, page = _parameters(query)
        except InvalidParameters as exc:  # named as the body's fields, with those of the wrong type
            errors = {**(exc.fields or {}), **errors}
        if errors:
            raise body_errors(errors)
        result = customer_search(api_key=request_api_key(request), filters=filters, after=page.after, size=page.size)
        body: dict[str, Any] = {
            "customers": result.customers,
            "next_cursor": None if result.next_after is None else encode_cursor(result.next_after),
            "source": result.source,
        }
        if result.warning:
            body["warning"] = result.warning
        return Response(body)

    @extend_schema(
        operation_id="customers_retrieve",
        summary="Fetch one customer",
        parameters=[OpenApiParameter("id", int, OpenApiParameter.PATH, description="Our id (`id` in the answers).")],
        responses={
            200: CustomerResponseSerializer,
            404: OpenApiResponse(ErrorSerializer, description="No such customer in the key's stores."),
            **{code: response for code, response in ERRORS.items() if code != 400},
        },
        examples=[ex.CUSTOMER_OK, ex.CUSTOMER_NOT_FOUND, *COMMON_EXAMPLES],
    )
    def retrieve(self, request: Request, pk: str) -> Response:
        if not pk.isdigit() or int(pk) > MAX_ID:
            raise Customer.DoesNotExist()
        return Response({"customer": customer_get(api_key=request_api_key(request), pk=int(pk))})

    @extend_schema(
        operation_id="customers_create",
        summary="Create a customer at the store's POS",
        description=(
            "Validates, creates the customer at the store's POS, then in the mirror. Send an `Idempotency-Key` "
            "header to make retries safe: the same key and body replay the first answer without asking the POS "
            "again; the same key with another body gets 422; while the first request runs, 409. Some POS need "
            "more than the body requires; without it the answer is 400 naming each field (`customer.birthday`) and "
            "the POS is not asked. " + _required_text()
        ),
        extensions={"x-required-by-pos": required_by_pos()},
        parameters=[
            OpenApiParameter(
                IDEMPOTENCY_HEADER,
                {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN, "maxLength": MAX_IDEMPOTENCY_KEY_LENGTH},
                OpenApiParameter.HEADER,
                description="Any unique string of visible ASCII up to 255 characters (a UUID), kept for 24 hours.",
            )
        ],
        request=CustomerCreateSerializer,
        responses={
            201: CustomerCreatedResponseSerializer,
            404: OpenApiResponse(ErrorSerializer, description="catalog_id is not one of the key's stores."),
            405: OpenApiResponse(ErrorSerializer, description="The store's POS cannot create customers."),
            409: OpenApiResponse(
                DuplicateErrorSerializer,
                description="The POS already has this customer (the existing one is in `customer`), or a request "
                "with the same Idempotency-Key is in progress.",
            ),
            422: OpenApiResponse(ErrorSerializer, description="The Idempotency-Key was used with another body."),
            502: OpenApiResponse(ErrorSerializer, description="The POS failed; retry after `retry_after` seconds."),
            503: OpenApiResponse(
                ErrorSerializer, description="The POS is unavailable or rate-limiting; see Retry-After."
            ),
            **ERRORS,
            **BODY_ERRORS,
        },
        examples=[
            ex.CREATE_REQUEST,
            ex.CREATED,
            ex.CREATE_INVALID,
            ex.CREATE_NEEDS_MORE,
            api_ex.STORE_NOT_FOUND,
            ex.CREATE_NOT_SUPPORTED,
            ex.CREATE_DUPLICATE,
            ex.CREATE_IN_PROGRESS,
            ex.CREATE_KEY_REUSED,
            ex.POS_BAD_GATEWAY,
            ex.POS_UNAVAILABLE,
            *BODY_EXAMPLES,
            *COMMON_EXAMPLES,
        ],
    )
    def create(self, request: Request) -> Response:
        api_key = request_api_key(request)
        serializer = CustomerCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        store = store_get_for_key(api_key=api_key, catalog_id=serializer.validated_data["catalog_id"])
        result = customer_create(
            store=store,
            data=NewCustomerSerializer.to_input(serializer.validated_data["customer"]),
            idempotency_key=_idempotency_key(request, api_key),
        )
        headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
        body: dict[str, Any] = {"customer": result.customer}
        if result.warning:
            body["warning"] = result.warning
        return Response(body, status=status.HTTP_201_CREATED, headers=headers)


def _parameters(query: QueryDict) -> tuple[CustomerFilters, PageRequest]:
    """The list's filters and page from `query` (a query string, or a search's body made one); InvalidParameters
    naming every unknown or malformed one."""
    params, page = all_parameters(
        lambda: parse_query(CustomerFilter, query, also_allowed=PAGE_PARAMS),
        lambda: page_request(query),
    )
    return CustomerFilters.from_mapping(params), page


def _idempotency_key(request: Request, api_key: ApiKey) -> IdempotencyKey | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key):
        raise ApiError(
            f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters (spaces "
            "between them).",
            code="invalid_idempotency_key",
            fields={IDEMPOTENCY_HEADER: ["Invalid value."]},
        )
    return IdempotencyKey(api_key=api_key, key=key, request_hash=request_fingerprint(request.data))


class LegacyCustomerSearchView(PiiMaskingMixin, APIView):
    """GET /customers/search — the older endpoint, kept for its clients."""

    allow_query_api_key = True
    required_scope = ApiScope.CUSTOMERS_READ
    domain_errors = CUSTOMER_ERRORS  # how api.errors.exception_handler answers this app's errors

    @extend_schema(
        operation_id="legacy_customers_search",
        summary="Find customers by POS id (older endpoint)",
        description=(
            "Kept for older clients. Takes the API key as `?api_key=` as well as in the headers; "
            "answers the customers with that POS id in the key's stores."
        ),
        parameters=[OpenApiParameter("api_key", str, description="The API key (or send it in a header).")],
        filters=True,
        responses={
            200: LegacySearchResponseSerializer,
            404: OpenApiResponse(ErrorSerializer, description="catalog_id is not one of the key's stores."),
            **ERRORS,
        },
        examples=[ex.LEGACY_OK, ex.LEGACY_BAD, api_ex.STORE_NOT_FOUND, *COMMON_EXAMPLES],
    )
    def get(self, request: Request) -> Response:
        params = parse_query(LegacySearchFilter, request.query_params, also_allowed=frozenset({"api_key"}))
        filters = CustomerFilters(customer_id=params["customer_id"], catalog_id=params.get("catalog_id") or None)
        customers = customer_list(api_key=request_api_key(request), filters=filters)
        return Response({"customers": customer_peak_list(queryset=customers, limit=LEGACY_MAX_RESULTS)})

    # For the schema only: drf-spectacular documents the query parameters from the filterset.
    filter_backends = [DjangoFilterBackend]
    filterset_class = LegacySearchFilter
    queryset = Customer.objects.none()
