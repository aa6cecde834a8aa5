"""schemathesis hooks (SCHEMATHESIS_HOOKS=tests.tenancy.st_hooks) for the admin API fuzzing."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.check
def refused_without_credentials(ctx: Any, response: Any, case: Any) -> None:
    """Sent without a valid credential, every admin request must be refused with 401."""
    if response.status_code != 401:
        raise AssertionError(f"{case.method} {case.path} answered {response.status_code} to a request "
                             f"without a valid credential (Authorization: {case.headers and case.headers.get('Authorization')!r})")
