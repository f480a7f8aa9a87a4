"""The vendors' published specifications (../shared/vendor-specs) and a check of our clients' requests against them.

openapi-core validates each request — method, path, path and query parameters, JSON body — against the
operation it matches. It reads OpenAPI 3.x only, so Blaze's Swagger 2.0 is converted with swagger2openapi
(Node; `scripts/setup.sh dev` installs it from this folder's lock file) when first needed.

Where a spec contradicts itself we follow its words, and say so here:
- Treez's listing `date_time` is typed `format: date`, but described (`YYYY-MM-DDThh:mm:ss.sss±hh:mm`) and
  enforced (its 400 example: "does not match the expected format i.e. yyyy-MM-dd'T'HH:mm:ss.SSSXXX") as a full
  timestamp with offset: we check the description.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import requests
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
SPECS = Path(os.environ.get("VENDOR_SPECS_DIR") or ROOT.parent / "shared" / "vendor-specs")
CONVERTER = HERE / "node_modules" / ".bin" / "swagger2openapi"
TREEZ_SPEC = "treez-customer-v3.yml"
BLAZE_SPEC = "blaze-partner-members-swagger.json"
# The description of Treez's `date_time`, as a pattern (see the module docstring).
TREEZ_DATE_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2}$"


class ContractViolation(AssertionError):
    """A request our client sent is not one the vendor's specification allows."""


def read_spec(name: str) -> str:
    """One spec file's text; a clear failure (not a skip) when ../shared/vendor-specs is missing."""
    path = SPECS / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the contract tests read the vendors' specs from ../shared/vendor-specs "
            "(or VENDOR_SPECS_DIR)"
        )
    return path.read_text(encoding="utf-8")


def treez_spec() -> dict[str, Any]:
    """Treez v3 customer API (OpenAPI 3.1) as published, with `date_time` checked as its description says."""
    spec = yaml.safe_load(read_spec(TREEZ_SPEC))
    listing = spec["paths"][
        "/{dispensary}/customer/lastUpdated/after/{date_time}/page/{page_number}/pagesize/{page_size}"
    ]
    for parameter in listing["get"]["parameters"]:
        if parameter.get("name") == "date_time":
            assert parameter["schema"] == {"type": "string", "format": "date"}, "the spec changed: review this note"
            parameter["schema"] = {"type": "string", "format": "date-time", "pattern": TREEZ_DATE_TIME}
    return spec


def blaze_spec() -> dict[str, Any]:
    """Blaze's members swagger 2.0, converted to OpenAPI 3.0 by swagger2openapi."""
    if not CONVERTER.exists():
        raise FileNotFoundError(f"{CONVERTER} is missing: run scripts/setup.sh dev (needs Node.js and npm)")
    done = subprocess.run(
        [str(CONVERTER), str(SPECS / BLAZE_SPEC)], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"swagger2openapi failed: {done.stderr.strip()[:2000]}")
    converted: dict[str, Any] = json.loads(done.stdout)
    return converted


@dataclass(frozen=True)
class Contract:
    """One vendor's spec, the server URL it names, and where our tests and clients send that vendor's requests."""

    vendor: str
    server: str
    bases: tuple[str, ...]
    exempt: tuple[re.Pattern[str], ...] = field(default=())  # paths deliberately outside the spec

    @property
    def spec(self) -> dict[str, Any]:
        return copy.deepcopy(_raw_spec(self.vendor))

    @property
    def openapi(self) -> OpenAPI:
        return _openapi(self.vendor)

    def base_of(self, url: str) -> str | None:
        return next((base for base in self.bases if url.startswith(base + "/")), None)


CONTRACTS: dict[str, Contract] = {
    "treez": Contract(
        "treez",
        server="https://api-prod.treez.io/dispensary/v3",
        # v3 production, and the v2 roots our tests use: the customer paths are the same in both.
        bases=("https://api-prod.treez.io/dispensary/v3", "https://treez.test/v2.0/dispensary"),
        # The legacy v2 token call is not part of the v3 customer API (v3 signs every request instead).
        exempt=(re.compile(r"^/[^/]+/config/api/gettokens$"),),
    ),
    "blaze": Contract(
        "blaze",
        server="https://api.partners.blaze.me",
        bases=("https://api.partners.blaze.me", "https://blaze.test"),
    ),
}


@cache
def _raw_spec(vendor: str) -> dict[str, Any]:
    return treez_spec() if vendor == "treez" else blaze_spec()


@cache
def _openapi(vendor: str) -> OpenAPI:
    # "forbid": a body property the schema does not name is an error (nothing the create schema lacks is sent).
    return OpenAPI.from_dict(
        copy.deepcopy(_raw_spec(vendor)), config=Config(additional_properties_default_policy="forbid")
    )


class SpecRequest:
    """A request as openapi-core reads it, moved from the base URL it was sent to onto the spec's server."""

    def __init__(self, request: requests.PreparedRequest, *, server: str, path: str) -> None:
        split = urlsplit(server)
        self.host_url = f"{split.scheme}://{split.netloc}"
        # Path parameters are compared decoded (openapi-core does not decode them); an encoded "/" stays one.
        self.path = split.path.rstrip("/") + unquote(path.replace("%2F", "%252F").replace("%2f", "%252F"))
        self.method = (request.method or "").lower()
        query = parse_qs(urlsplit(request.url or "").query, keep_blank_values=True)
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(query), header=Headers(dict(request.headers)), cookie=ImmutableMultiDict()
        )
        self.query_names = set(query)
        body = request.body
        self.body: bytes | None = body.encode() if isinstance(body, str) else body
        self.content_type = request.headers.get("Content-Type", "") if body else ""


def contract_for(url: str) -> tuple[Contract, str] | None:
    """The contract a request URL falls under, and the part of its path after the base."""
    for contract in CONTRACTS.values():
        base = contract.base_of(url)
        if base is not None:
            return contract, urlsplit(url).path[len(urlsplit(base).path.rstrip("/")) :]
    return None


def _reasons(error: BaseException) -> Iterator[str]:
    """What openapi-core found: the error, then the schema errors (or plain causes) under it."""
    yield f"{type(error).__name__}: {error}".split(": (<ValidationError")[0]
    seen = {id(error)}
    current = error.__cause__ or error.__context__
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        schema_errors = getattr(current, "schema_errors", None)
        if schema_errors:
            for schema_error in schema_errors:
                where = "/".join(str(p) for p in schema_error.absolute_path) or "(value)"
                yield f"  at {where}: {schema_error.message}"
        else:
            yield f"  {type(current).__name__}: {current}"
        current = current.__cause__ or current.__context__


def check_request(request: requests.PreparedRequest) -> None:
    """Raise ContractViolation unless the vendor's spec allows this request; other vendors' requests pass."""
    found = contract_for(request.url or "")
    if found is None:
        return
    contract, path = found
    if any(pattern.match(path) for pattern in contract.exempt):
        return
    spec_request = SpecRequest(request, server=contract.server, path=path)
    result = contract.openapi.unmarshal_request(spec_request)
    problems = [reason for error in result.errors for reason in _reasons(error)]
    if not result.errors:
        declared = set(result.parameters.query) if result.parameters is not None else set()
        problems += [
            f"query parameter {name!r} is not in the spec" for name in sorted(spec_request.query_names - declared)
        ]
    if problems:
        raise ContractViolation(
            f"{contract.vendor} {spec_request.method.upper()} {spec_request.path} breaks {contract.vendor}'s spec:\n"
            + "\n".join(problems)
        )


@dataclass(frozen=True)
class SpecResponse:
    """An answer as openapi-core reads it."""

    status_code: int
    data: bytes
    content_type: str = "application/json"
    headers: Headers = field(default_factory=Headers)


def answer_problems(vendor: str, method: str, target: str, status: int, body: Any) -> list[str]:
    """Where an answer to `method target` (a path and query under the spec's server) departs from the spec's
    schema for it: one `where: what` line per schema error (where is the JSON path into the body)."""
    contract = CONTRACTS[vendor]
    request = requests.Request(method.upper(), contract.server + target).prepare()
    spec_request = SpecRequest(request, server=contract.server, path=urlsplit(target).path)
    result = contract.openapi.unmarshal_response(spec_request, SpecResponse(status, json.dumps(body).encode()))
    problems: list[str] = []
    for error in result.errors:
        schema_errors = getattr(error.__cause__, "schema_errors", None)
        if not schema_errors:
            problems.append(f"{type(error).__name__}: {error}")
        for schema_error in schema_errors or ():
            problems.append("/".join(str(p) for p in schema_error.absolute_path) + ": " + schema_error.message)
    return problems


def checked(response: requests.Response) -> requests.Response:
    """A `responses` response_callback: check the request that produced this mocked response."""
    if response.request is not None:
        check_request(response.request)  # type: ignore[arg-type]
    return response


def examples(spec: Mapping[str, Any], operation_id: str, status: str) -> dict[str, Any]:
    """The example bodies (resolved) the spec gives for one operation's answer with this status."""
    for item in spec["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and operation.get("operationId") == operation_id:
                response = _resolve(spec, operation["responses"][status])
                content = response["content"]["application/json"]
                return {name: _resolve(spec, example)["value"] for name, example in content["examples"].items()}
    raise KeyError(operation_id)


def _resolve(spec: Mapping[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec
        for step in node["$ref"].removeprefix("#/").split("/"):
            target = target[step]
        node = target
    return node
