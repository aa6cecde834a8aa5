"""The checked-in snapshot of every MCP tool's schema, and how to regenerate it.

    python -m mosaic.interfaces.mcp.snapshot --write tests/interfaces/snapshots/mcp_tools.json

(or run the snapshot test with ``MOSAIC_UPDATE_SNAPSHOTS=1``). A diff in this file is an
interface change for every MCP client: review it as such.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from mosaic.catalog.registry import CATALOG
from mosaic.interfaces.mcp.tools import build_tools


def snapshot() -> dict[str, Any]:
    tools = build_tools(CATALOG.values())
    out: dict[str, Any] = {}
    for name in sorted(tools):
        out[name] = tools[name].definition(compact=True)
    return out


def render() -> bytes:
    return orjson.dumps(snapshot(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "--write":
        Path(args[1]).write_bytes(render())
        return 0
    if args:
        print("usage: python -m mosaic.interfaces.mcp.snapshot [--write PATH]", file=sys.stderr)
        return 2
    sys.stdout.buffer.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
