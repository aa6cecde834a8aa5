"""schemathesis against /openapi.json of a real server: no 5xx, no response that breaks the schema.

Bounded (few examples per operation, a fixed seed) so it stays fast and reproducible. The server
runs with an API key so that schemathesis also checks that unauthenticated requests are refused.

Deliberately not run:
- operations the configured (local) providers do not implement: they answer 501
  ``operation_not_supported`` by design, which schemathesis would count as a server error;
- the ``positive_data_acceptance`` check: several params models validate names and ids in
  Python (``check_name``, ``check_repo``) without a ``pattern`` in their JSON schema, so
  schema-valid random strings are rightly refused with 422 (see the note in the report);
- the ``coverage`` phase: it crashes inside schemathesis on the larger schemas
  ("AST constructor recursion depth mismatch"), which says nothing about this API.

One worker: with several, schemathesis compiles generated code from concurrent threads, which
CPython 3.11 does not support (the same "AST constructor recursion depth mismatch", at random).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tests.interfaces.iface_support import server_env, start_server

from mosaic.catalog.registry import CATALOG
from mosaic.plugins.loader import PluginResolver

KEY = "schemathesis-key"


def unsupported_by_local_providers() -> list[str]:
    resolver = PluginResolver()
    out = []
    for op in CATALOG.values():
        cls = resolver.load_entry_point(f"local.{op.service}")
        if not cls.supports(op):
            out.append(op.tool_name)
    return sorted(out)


@pytest.mark.timeout(300)
def test_schemathesis_finds_no_server_errors_or_schema_violations(tmp_path: Path) -> None:
    server = start_server(tmp_path, env=server_env(MOSAIC_API_KEYS=KEY))
    try:
        excluded = unsupported_by_local_providers()
        cmd = [sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json",
               "-H", f"Authorization: Bearer {KEY}",
               "--checks", "all", "--exclude-checks", "positive_data_acceptance",
               "--phases", "examples,fuzzing,stateful",
               "--max-examples", "4", "--seed", "20240601", "--workers", "1",
               "--no-shrink", "--max-failures", "20", "--request-timeout", "30"]
        for op_id in excluded:
            cmd += ["--exclude-operation-id", op_id]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=280, cwd=str(tmp_path))
        report = run.stdout[-6000:] + run.stderr[-2000:]
        assert run.returncode == 0, report
        assert "Server error" not in run.stdout and "Response violates schema" not in run.stdout, report
    finally:
        server.stop()
