"""Route tables: (method, path pattern) -> handler, matched on the path's unquoted segments.

A pattern is a path below the vendor's prefix, e.g. "customer/{customer_id}" or
"v1/Companies({company})/CustomerFull": a `{name}` that is a whole segment matches any non-empty segment,
one inside a segment matches any text there; the values reach the handler as keyword arguments. Empty
segments (double or trailing slashes) are ignored, as the vendors' web frameworks do. Routes are tried in
the order given, so a literal path ("members/search") goes before the pattern that would also match it
("members/{member_id}"). A path some route matches with another method is a 405 with their methods in Allow.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NamedTuple

ANY = "*"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")

Handler = Callable[..., Any]
Segment = str | tuple[str] | re.Pattern[str]  # a literal, a whole-segment capture (its name), or a regex


def _compile(segment: str) -> Segment:
    whole = _PLACEHOLDER.fullmatch(segment)
    if whole:
        return (whole.group(1),)
    if "{" not in segment:
        return segment
    pieces, last = [], 0
    for m in _PLACEHOLDER.finditer(segment):
        pieces.append(re.escape(segment[last : m.start()]))
        pieces.append(f"(?P<{m.group(1)}>.*?)")
        last = m.end()
    pieces.append(re.escape(segment[last:]))
    return re.compile("".join(pieces) + r"\Z")


class Route:
    """One entry of a route table; `public` routes (token endpoints) are served without authentication."""

    __slots__ = ("_captures", "_literals", "_regexes", "handler", "method", "pattern", "public", "size")

    def __init__(self, method: str, pattern: str, handler: Handler, public: bool = False) -> None:
        self.method = method  # GET, POST, ... or ANY
        self.pattern = pattern
        self.handler = handler
        self.public = public
        segments = [_compile(s) for s in pattern.split("/") if s]
        self.size = len(segments)
        # Checked cheapest first: literal segments, then whole-segment captures, then regexes.
        self._literals = tuple((i, s) for i, s in enumerate(segments) if isinstance(s, str))
        self._captures = tuple((i, s[0]) for i, s in enumerate(segments) if isinstance(s, tuple))
        self._regexes = tuple((i, s) for i, s in enumerate(segments) if isinstance(s, re.Pattern))

    def __repr__(self) -> str:
        return f"Route({self.method!r}, {self.pattern!r}, {getattr(self.handler, '__name__', self.handler)})"

    def params(self, segs: list[str]) -> dict[str, str] | None:
        """The pattern's values when it matches these segments (as many as the pattern has), else None."""
        for i, literal in self._literals:
            if segs[i] != literal:
                return None
        out = {name: segs[i] for i, name in self._captures}
        for i, regex in self._regexes:
            m = regex.fullmatch(segs[i])
            if m is None:
                return None
            out.update(m.groupdict())
        return out


class Match(NamedTuple):
    """What a route table says about a request: the route and its values, or the methods the path allows."""

    route: Route | None
    params: dict[str, str]
    allowed: tuple[str, ...] = ()
    public: bool = False


class Router:
    """An ordered route table; `prefix` is put before every pattern (e.g. "api/v1/partner/members")."""

    def __init__(self, *routes: Route, prefix: str = "") -> None:
        if prefix:
            routes = tuple(Route(r.method, f"{prefix}/{r.pattern}".rstrip("/"), r.handler, r.public) for r in routes)
        self.routes = routes
        self._by_length: dict[int, list[Route]] = {}
        for route in routes:
            self._by_length.setdefault(route.size, []).append(route)

    def match(self, method: str, segs: list[str]) -> Match:
        """The first route for this method and path, or the methods other routes on the path allow."""
        if "" in segs:
            segs = [s for s in segs if s]
        allowed: list[str] = []
        public = False
        for route in self._by_length.get(len(segs), ()):
            params = route.params(segs)
            if params is None:
                continue
            public = public or route.public
            if route.method == method or route.method == ANY:
                return Match(route, params, (), route.public)
            if route.method not in allowed:
                allowed.append(route.method)
        return Match(None, {}, tuple(allowed), public)
