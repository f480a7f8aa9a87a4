"""Changes, faults, state and ground truth: the control API under /_control and SandboxServer's methods."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from .data import Dataset, Person
from .dialect import Dialect
from .faults import ALL, Faults, FaultSpecError, coerce_settings
from .protocol import BadRequest, Request, Response, int_param, json_response
from .routing import Route, Router

MAX_COUNT = 1_000_000
MAX_RECORDS = 10_000  # per GET /_control/records call


class Control:
    """What a test, benchmark or demo does to the sandbox, over HTTP (JSON, no auth: loopback) or from Python."""

    def __init__(self, dataset: Dataset, faults: Faults, dialects: dict[str, Dialect], requests: dict[str, int]):
        self.dataset = dataset
        self.faults = faults
        self.dialects = dialects
        self.requests = requests  # per vendor, counted by the server
        self.started = time.time()

    def handle(self, req: Request, segs: list[str]) -> Response:
        found = self.routes.match(req.method, segs)
        if found.route is None:
            route = "/".join(s for s in segs if s)
            raise BadRequest(f"unknown control call {req.method} /_control/{route}; see pos_sandbox/README.md", 404)
        response: Response = found.route.handler(self, req, **found.params)
        return response

    # --- operations ------------------------------------------------------------------------------------
    def change(self, action: str, vendor: str, *, count: int = 0, ids: list[str] | None = None) -> list[str]:
        """modify / create / delete `count` random customers (or these ids); returns the vendor ids affected."""
        dialect = self.dialects[self.vendor_name(vendor)]
        indexes: list[int] | None = None
        if ids is not None:
            indexes = []
            for text in ids:
                p = dialect.by_id(str(text))
                if p is None:
                    raise BadRequest(f"{vendor} has no customer {text!r}")
                indexes.append(p.index)
        if action == "modify":
            people = self.dataset.modify(vendor, count=count, indexes=indexes)
        elif action == "create":
            people = self.dataset.create(vendor, count=count)
        else:
            people = self.dataset.delete(vendor, count=count, indexes=indexes)
        return [dialect.id_of(p) for p in people]

    def reset(self) -> None:
        """Forget every change and fault since start."""
        self.dataset.reset()
        self.faults.clear()

    def state(self) -> dict[str, Any]:
        return {
            "seed": self.dataset.seed,
            "customers_per_vendor": self.dataset.customers,
            "uptime_seconds": round(time.time() - self.started, 1),
            "vendors": {
                v: {"customers": self.dataset.count(v), **self.dataset.changes(v), "requests": self.requests[v]}
                for v in self.dialects
            },
            "faults": self.faults.state(),
        }

    def truth(self, vendor: str, people: Iterator[Person] | list[Person]) -> Iterator[str]:
        """These customers as the vendor's JSON text, without faults."""
        dialect = self.dialects[vendor]
        record, gen = dialect.record, dialect.gen
        for p in people:
            yield record(gen, p, False)

    def select(self, vendor: str, offset: int, limit: int) -> tuple[list[int], int]:
        """A page of the vendor's full listing (no filters), in the order it lists: indexes and the total."""
        if self.dialects[vendor].listing_order == "newest":
            return self.dataset.select_newest_first(vendor, None, None, offset, limit)
        return self.dataset.select(vendor, None, None, offset, limit)

    def vendor_records(self, vendor: str) -> Iterator[dict[str, Any]]:
        """Every current customer as the vendor's JSON (without faults), in the order its full listing has."""
        vendor = self.vendor_name(vendor)
        offset = 0
        while True:
            indexes, _ = self.select(vendor, offset, MAX_RECORDS)
            if not indexes:
                return
            for text in self.truth(vendor, self.dataset.people(vendor, indexes)):
                yield json.loads(text)
            offset += len(indexes)

    def record(self, vendor: str, customer_id: str) -> dict[str, Any] | None:
        """One current customer as the vendor's JSON, or None."""
        p = self.dialects[self.vendor_name(vendor)].by_id(str(customer_id))
        return None if p is None else json.loads(next(self.truth(vendor, [p])))

    def malformed_ids(self, vendor: str) -> set[str]:
        """Ids of the customers served malformed under the current malformed_record rate."""
        dialect = self.dialects[self.vendor_name(vendor)]
        rate = self.faults.settings(vendor).malformed_record
        if not rate:
            return set()
        bad = dialect.gen.malformed_fraction
        return {dialect.id_of(p) for p in self.dataset.iter_people(vendor) if bad(p.h) < rate}

    def vendor_name(self, vendor: str) -> str:
        if vendor not in self.dialects:
            raise BadRequest(f"unknown vendor {vendor!r}; use one of {', '.join(self.dialects)}")
        return vendor

    def _vendors(self, vendor: Any) -> list[str]:
        if vendor in (None, "", ALL):
            return list(self.dialects)
        return [self.vendor_name(str(vendor))]

    # --- the control API -------------------------------------------------------------------------------
    def get_state(self, req: Request) -> Response:
        return json_response(200, self.state())

    def get_faults(self, req: Request) -> Response:
        return json_response(200, self.faults.state())

    def clear_faults(self, req: Request) -> Response:
        vendor = req.query.get("vendor")
        self.faults.clear(None if vendor in (None, "", ALL) else self.vendor_name(vendor))
        return json_response(200, self.faults.state())

    def set_faults(self, req: Request) -> Response:
        body = req.json_object()
        try:
            if "spec" in body:
                self.faults.apply(self.faults.parse(str(body["spec"])))
            else:
                values = {k: v for k, v in body.items() if k not in ("vendor", "clear")}
                vendor = str(body.get("vendor") or ALL)
                if vendor != ALL:
                    self.vendor_name(vendor)
                if body.get("clear"):
                    self.faults.clear(None if vendor == ALL else vendor)
                self.faults.apply({vendor: coerce_settings(values)})
        except FaultSpecError as exc:
            raise BadRequest(str(exc)) from None
        return json_response(200, self.faults.state())

    def post_change(self, req: Request, action: str) -> Response:
        body = req.json_object()
        vendors = self._vendors(body.get("vendor"))
        count = body.get("count", 0)
        ids = body.get("ids")
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_COUNT:
            raise BadRequest(f"count must be a whole number between 0 and {MAX_COUNT}")
        if ids is not None and (not isinstance(ids, list) or action == "create" or len(vendors) != 1):
            raise BadRequest("ids must be a list of one vendor's customer ids (modify and delete only)")
        result = {v: self.change(action, v, count=count, ids=ids) for v in vendors}
        return json_response(200, {action if action != "create" else "created": result})

    def post_reset(self, req: Request) -> Response:
        self.reset()
        return json_response(200, self.state())

    def get_records(self, req: Request, vendor: str) -> Response:
        vendor = self.vendor_name(vendor)
        offset = int_param(req.query.get("offset"), "offset", 0, 0, 10**12)
        limit = int_param(req.query.get("limit"), "limit", 100, 1, MAX_RECORDS)
        indexes, total = self.select(vendor, offset, limit)
        records = ",".join(self.truth(vendor, self.dataset.people(vendor, indexes)))
        return Response(200, f'{{"total":{total},"records":[{records}]}}'.encode())

    routes = Router(
        Route("GET", "state", get_state),
        Route("GET", "faults", get_faults),
        Route("DELETE", "faults", clear_faults),
        Route("POST", "faults", set_faults),
        Route("POST", "modify", lambda self, req: self.post_change(req, "modify")),
        Route("POST", "create", lambda self, req: self.post_change(req, "create")),
        Route("POST", "delete", lambda self, req: self.post_change(req, "delete")),
        Route("POST", "reset", post_reset),
        Route("GET", "records/{vendor}", get_records),
    )
