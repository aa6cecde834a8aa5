"""GitLab's pagination: ``page``/``per_page`` with ``X-Next-Page``, or keyset ``Link`` headers.

Offset pagination answers every page with ``X-Next-Page`` (empty on the last page) and, below
10 000 items, ``X-Total``. Keyset pagination (``pagination=keyset``) sends no ``X-Next-Page`` but a
``Link: <...>; rel="next"``. Both reduce to the query of the next request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import httpx

from mosaic.errors import InvalidRequest
from mosaic.plugins.http_pagination import Pagination, decode_cursor, encode_cursor, query_of

T = TypeVar("T")


class GitLabPagination(Pagination):
    def __init__(self) -> None:
        super().__init__(size_param="per_page")
        self._keys = frozenset({"page", "per_page", "id_after", "cursor"})

    @property
    def cursor_keys(self) -> frozenset[str]:
        return self._keys

    def next_params(self, response: httpx.Response, body: Any, sent: Mapping[str, str],
                    count: int) -> dict[str, str] | None:
        if "x-next-page" in response.headers:
            following = response.headers["x-next-page"].strip()
            if not following.isdigit():
                return None  # present but empty: this is the last page
            params = {"page": following}
            if "per_page" in sent:
                params["per_page"] = sent["per_page"]
            return params
        link = response.links.get("next")
        if not link or not link.get("url"):
            return None
        return self._keep(query_of(link["url"]))


def slice_page(items: list[T], *, limit: int, cursor: str | None) -> tuple[list[T], str | None]:
    """One page of a list assembled from several calls; the cursor is an offset into it.

    (Vendor-neutral: a candidate for the shared ``http_pagination``.)
    """
    offset = 0
    if cursor:
        raw = decode_cursor(cursor, frozenset({"offset"}))["offset"]
        if not raw.isdigit():
            raise InvalidRequest("cursor is not valid: pass the next_cursor of a previous page unchanged",
                                 details={"field": "cursor"})
        offset = int(raw)
    end = offset + limit
    return items[offset:end], encode_cursor({"offset": str(end)}) if end < len(items) else None
