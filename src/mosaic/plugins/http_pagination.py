"""Pagination styles of HTTP APIs, behind one opaque ``cursor`` string.

Every style reduces to "the query parameters of the next request": a page number, a vendor
cursor token, or the query of a ``Link: <...>; rel="next"`` / Bitbucket ``next`` URL. The cursor we
hand out is those parameters, base64url-encoded JSON. On the way back a cursor may only set the
parameters its style owns (``cursor_keys``) on the *same* endpoint the provider method builds:
a client can neither point a cursor at another path or host nor smuggle other query parameters.
"""

from __future__ import annotations

import base64
import binascii
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson

from mosaic.errors import InvalidRequest

_CURSOR_HINT = "pass the next_cursor of a previous page unchanged"


def encode_cursor(params: Mapping[str, str]) -> str:
    raw = orjson.dumps(dict(sorted(params.items())))
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str, allowed: frozenset[str]) -> dict[str, str]:
    """The query parameters a cursor stands for; InvalidRequest if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise InvalidRequest(f"cursor is not valid: {_CURSOR_HINT}", details={"field": "cursor"}) from None
    if (not isinstance(data, dict) or not data
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items())):
        raise InvalidRequest(f"cursor is not valid: {_CURSOR_HINT}", details={"field": "cursor"})
    stray = sorted(set(data) - allowed)
    if stray:
        raise InvalidRequest(f"cursor is not valid for this listing: {_CURSOR_HINT}",
                             details={"field": "cursor"})
    return data


def query_of(url: str) -> dict[str, str]:
    """Query parameters of a URL (last value wins for repeated keys)."""
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


class Pagination(ABC):
    """One vendor pagination style: how to ask for a page, find its items and the next page."""

    def __init__(self, *, size_param: str, items_key: str | None = None) -> None:
        self.size_param = size_param
        self.items_key = items_key

    @property
    @abstractmethod
    def cursor_keys(self) -> frozenset[str]:
        """Query parameters a cursor may set."""

    def first_params(self, limit: int) -> dict[str, str]:
        return {self.size_param: str(limit)}

    def items(self, body: Any) -> list[Any]:
        found = body.get(self.items_key) if self.items_key and isinstance(body, dict) else body
        if not isinstance(found, list):
            where = f"'{self.items_key}'" if self.items_key else "the body"
            raise ValueError(f"expected a list in {where} of a listing response")
        return found

    @abstractmethod
    def next_params(self, response: httpx.Response, body: Any, sent: Mapping[str, str],
                    count: int) -> dict[str, str] | None:
        """Query parameters of the next page, or None on the last page."""

    def _keep(self, params: Mapping[str, str]) -> dict[str, str] | None:
        kept = {k: v for k, v in params.items() if k in self.cursor_keys}
        return kept or None


class LinkHeaderPagination(Pagination):
    """RFC 8288 ``Link: <url>; rel="next"`` (GitHub, Gitea/Forgejo, GitLab keyset)."""

    def __init__(self, *, page_param: str = "page", size_param: str = "per_page",
                 extra_keys: tuple[str, ...] = ("after", "before", "cursor", "id_after", "page_token"),
                 items_key: str | None = None) -> None:
        super().__init__(size_param=size_param, items_key=items_key)
        self.page_param = page_param
        self._keys = frozenset({page_param, size_param, *extra_keys})

    @property
    def cursor_keys(self) -> frozenset[str]:
        return self._keys

    def next_params(self, response: httpx.Response, body: Any, sent: Mapping[str, str],
                    count: int) -> dict[str, str] | None:
        link = response.links.get("next")
        if not link or not link.get("url"):
            return None
        return self._keep(query_of(link["url"]))


class PageNumberPagination(Pagination):
    """``page`` + page size, with the total from a header (``X-Total-Count``) when there is one.

    Without a total, a full page means there may be another one.
    """

    def __init__(self, *, page_param: str = "page", size_param: str = "per_page",
                 total_header: str | None = "x-total-count", first_page: int = 1,
                 items_key: str | None = None) -> None:
        super().__init__(size_param=size_param, items_key=items_key)
        self.page_param = page_param
        self.total_header = total_header
        self.first_page = first_page

    @property
    def cursor_keys(self) -> frozenset[str]:
        return frozenset({self.page_param, self.size_param})

    def next_params(self, response: httpx.Response, body: Any, sent: Mapping[str, str],
                    count: int) -> dict[str, str] | None:
        try:
            page = int(sent.get(self.page_param, self.first_page))
            size = int(sent[self.size_param])
        except (KeyError, ValueError):
            return None
        total_raw = response.headers.get(self.total_header) if self.total_header else None
        if total_raw is not None and total_raw.strip().isdigit():
            seen = (page - self.first_page + 1) * size
            has_next = seen < int(total_raw)
        else:
            has_next = count >= size > 0
        if not has_next or count == 0:
            return None
        return {self.page_param: str(page + 1), self.size_param: str(size)}


class CursorPagination(Pagination):
    """A vendor's opaque cursor token, found in the body or headers by ``next_token``."""

    def __init__(self, *, cursor_param: str, size_param: str,
                 next_token: Callable[[httpx.Response, Any], str | None],
                 items_key: str | None = None) -> None:
        super().__init__(size_param=size_param, items_key=items_key)
        self.cursor_param = cursor_param
        self.next_token = next_token

    @property
    def cursor_keys(self) -> frozenset[str]:
        return frozenset({self.cursor_param, self.size_param})

    def next_params(self, response: httpx.Response, body: Any, sent: Mapping[str, str],
                    count: int) -> dict[str, str] | None:
        token = self.next_token(response, body)
        if not token:
            return None
        params = {self.cursor_param: token}
        if self.size_param in sent:
            params[self.size_param] = sent[self.size_param]
        return params


class NextUrlPagination(Pagination):
    """A ``next`` URL in the body (Bitbucket Cloud: ``{"values": [...], "next": "https://..."}``)."""

    def __init__(self, *, size_param: str = "pagelen", next_key: str = "next",
                 items_key: str | None = "values", page_keys: tuple[str, ...] = ("page",)) -> None:
        super().__init__(size_param=size_param, items_key=items_key)
        self.next_key = next_key
        self._keys = frozenset({size_param, *page_keys})

    @property
    def cursor_keys(self) -> frozenset[str]:
        return self._keys

    def next_params(self, response: httpx.Response, body: Any, sent: Mapping[str, str],
                    count: int) -> dict[str, str] | None:
        url = body.get(self.next_key) if isinstance(body, dict) else None
        if not isinstance(url, str) or not url:
            return None
        return self._keep(query_of(url))
