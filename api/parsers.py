"""JSON in: request bodies parsed by orjson, with a bound on nesting, so whatever a client sends is a clear 400
(malformed_body), never a server error.

The stdlib decoder DRF uses recurses once per level and raises RecursionError on a body nested ~1,000 deep (2 KB
of brackets), which DRF does not catch; and a deep value that does parse can still overflow whatever walks it
later (an error message quoting it, a log line). No endpoint takes more than two levels, so MAX_DEPTH is generous.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser as DRFJSONParser

# DRF 3.18's charset check (text codecs only); its stubs predate it.
from rest_framework.parsers import get_encoding  # type: ignore[attr-defined]

MAX_DEPTH = 32
_OPENERS = (b"[", b"{")


class JSONParser(DRFJSONParser):
    """DRF's JSONParser (same media type, same charset rules), decoding with orjson: strict JSON (no NaN or
    Infinity, no lone surrogates, UTF-8 or the declared charset), at most MAX_DEPTH arrays and objects deep."""

    def parse(
        self, stream: IO[bytes] | None, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        encoding = get_encoding(parser_context or {})
        raw = stream.read() if stream is not None else b""
        try:
            text: bytes | str = raw if encoding.lower().replace("-", "") == "utf8" else raw.decode(encoding)
            data = orjson.loads(text)
        except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ParseError(f"The body is not valid JSON: {exc}") from None
        # Counting brackets (in C) settles nearly every body; only one with many of them is walked.
        if sum(raw.count(opener) for opener in _OPENERS) > MAX_DEPTH and depth(data) > MAX_DEPTH:
            raise ParseError(f"The body is nested more than {MAX_DEPTH} arrays or objects deep.")
        return data


def depth(value: Any) -> int:
    """How many arrays and objects deep a parsed JSON value is (a scalar: 0), without recursing."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        level += 1
        deepest = max(deepest, level)
        stack.extend((child, level) for child in item if isinstance(child, dict | list))
    return deepest
