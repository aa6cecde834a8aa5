"""A small Gitea-shaped HTTP upstream whose faults are scripted per test.

It speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies) over a raw asyncio server
on a free 127.0.0.1 port, so that a fault can be exactly what the test needs:

* ``Fault.ok(latency=0.05)``          — answer normally after a delay;
* ``Fault.error(503)``                — an error response (any status, extra headers, body);
* ``Fault.too_many(retry_after=0.2)`` — 429 with ``Retry-After``;
* ``Fault.reset_before()``            — read the request, then abort the connection (nothing applied);
* ``Fault.reset_after()``             — apply the request (e.g. create the repository), then abort
  the connection without answering: the client cannot know that it worked;
* ``Fault.hang()``                    — never answer;
* ``Fault.hang_after()``              — apply the request, then never answer.

Faults are queued with :meth:`FakeGitea.script` (optionally only for some method/path) and
consumed one per matching request; without a scripted fault a request is answered normally
(after ``latency``). Every request is logged with its arrival time.

Endpoints (Gitea's ``/api/v1``): ``GET /user``, ``GET /repos/{owner}/{repo}``,
``PATCH /repos/{owner}/{repo}``, ``DELETE /repos/{owner}/{repo}``, ``POST /user/repos``,
``POST /orgs/{org}/repos``, ``GET /user/repos``.

Run standalone (benchmarks): ``python -m tests.faults.upstream --port 0`` prints its port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

LOGIN = "alice"
API = "/api/v1"
REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 404: "Not Found",
           409: "Conflict", 422: "Unprocessable Entity", 429: "Too Many Requests",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


@dataclass
class Fault:
    kind: str = "ok"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    latency: float = 0.0

    @classmethod
    def ok(cls, latency: float = 0.0) -> Fault:
        return cls("ok", latency=latency)

    @classmethod
    def error(cls, status: int, *, headers: dict[str, str] | None = None, body: bytes | None = None,
                latency: float = 0.0) -> Fault:
        return cls("status", status=status, headers=headers or {}, latency=latency,
                   body=body if body is not None else orjson.dumps({"message": f"injected {status}"}))

    @classmethod
    def too_many(cls, retry_after: float) -> Fault:
        return cls.error(429, headers={"Retry-After": f"{retry_after:g}"})

    @classmethod
    def reset_before(cls) -> Fault:
        return cls("reset_before")

    @classmethod
    def reset_after(cls, latency: float = 0.0) -> Fault:
        return cls("reset_after", latency=latency)

    @classmethod
    def hang(cls) -> Fault:
        return cls("hang")

    @classmethod
    def hang_after(cls) -> Fault:
        """Apply the request, then never answer (the client dies or times out waiting)."""
        return cls("hang_after")


Matcher = Callable[[str, str], bool]


@dataclass
class Request:
    method: str
    path: str
    body: bytes
    at: float  # time.monotonic()


class FakeGitea:
    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency
        self.repos: dict[str, dict[str, Any]] = {}
        self.log: list[Request] = []
        self._faults: deque[tuple[Matcher | None, Fault]] = deque()
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.StreamWriter] = set()
        self._stopping = asyncio.Event()
        self._next_id = 1
        # Extra headers on every answer (e.g. X-RateLimit-*), or a function of the request.
        self.extra_headers: Callable[[Request], dict[str, str]] | None = None
        # Answer GET /repos/{owner}/{name} for any name (benchmarks: every read a cache miss).
        self.serve_any = False
        # Keep no request log (benchmarks: a million requests).
        self.keep_log = True
        self.port = 0
        self._template: dict[str, Any] = {
            "id": 0, "description": "", "private": False, "default_branch": "main", "archived": False,
            "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"}

    # -- control ---------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *faults: Fault, method: str | None = None, path: str | None = None) -> None:
        """Queue faults for the next matching requests (``path`` matches a prefix under /api/v1)."""
        matcher: Matcher | None = None
        if method is not None or path is not None:
            def matcher(m: str, p: str) -> bool:
                return (method is None or m == method) and (path is None or p.startswith(API + path))
        for f in faults:
            self._faults.append((matcher, f))

    def clear_faults(self) -> None:
        self._faults.clear()

    def add_repo(self, owner: str, name: str, **fields: Any) -> dict[str, Any]:
        full = f"{owner}/{name}"
        rid = self._next_id
        self._next_id += 1
        repo = {"id": rid, "name": name, "full_name": full, "owner": {"login": owner, "id": 1},
                "description": "", "private": False, "default_branch": "main", "archived": False,
                "html_url": f"{self.base_url}/{full}", "clone_url": f"{self.base_url}/{full}.git",
                "created_at": "2024-01-01T00:00:00Z", "updated_at": "2024-01-01T00:00:00Z"}
        repo.update(fields)
        self.repos[full] = repo
        return repo

    def count(self, method: str | None = None, path: str | None = None) -> int:
        return sum(1 for r in self.log if (method is None or r.method == method)
                   and (path is None or r.path.startswith(API + path)))

    def times(self, method: str | None = None, path: str | None = None) -> list[float]:
        return [r.at for r in self.log if (method is None or r.method == method)
                and (path is None or r.path.startswith(API + path))]

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self, port: int = 0) -> FakeGitea:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port, backlog=4096)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.close()
        for w in list(self._conns):
            w.transport.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def __aenter__(self) -> FakeGitea:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- HTTP ------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        try:
            while not self._stopping.is_set():
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length", "0") or 0)
                body = await reader.readexactly(length) if length else b""
                path = target.split("?", 1)[0]
                req = Request(method, path, body, time.monotonic())
                if self.keep_log:
                    self.log.append(req)
                if not await self._answer(req, writer):
                    return
        finally:
            self._conns.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    def _next_fault(self, req: Request) -> Fault | None:
        for i, (matcher, fault) in enumerate(self._faults):
            if matcher is None or matcher(req.method, req.path):
                del self._faults[i]
                return fault
        return None

    async def _answer(self, req: Request, writer: asyncio.StreamWriter) -> bool:
        fault = self._next_fault(req) or Fault.ok(self.latency)
        if fault.latency:
            await asyncio.sleep(fault.latency)
        if fault.kind == "hang":
            await self._stopping.wait()
            return False
        if fault.kind == "reset_before":
            writer.transport.abort()
            return False
        if fault.kind == "status":
            await self._send(writer, req, fault.status, fault.body or b"", fault.headers)
            return True
        status, payload = self._route(req)
        if fault.kind == "hang_after":
            await self._stopping.wait()
            return False
        if fault.kind == "reset_after":
            writer.transport.abort()
            return False
        await self._send(writer, req, status, payload, {})
        return True

    async def _send(self, writer: asyncio.StreamWriter, req: Request, status: int, body: bytes,
                    headers: dict[str, str]) -> None:
        extra = self.extra_headers(req) if self.extra_headers is not None else {}
        all_headers = {"Content-Type": "application/json", "Content-Length": str(len(body)), **extra,
                       **headers}
        head = f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in all_headers.items()) + "\r\n"
        writer.write(head.encode("latin-1") + body)
        with contextlib.suppress(ConnectionError):
            await writer.drain()

    # -- the Gitea API -------------------------------------------------------------------------
    def _route(self, req: Request) -> tuple[int, bytes]:
        path = req.path[len(API):] if req.path.startswith(API) else req.path
        parts = [p for p in path.split("/") if p]
        if req.method == "GET" and parts == ["user"]:
            return 200, orjson.dumps({"login": LOGIN, "id": 1})
        if req.method == "GET" and parts == ["user", "repos"]:
            return 200, orjson.dumps(sorted(self.repos.values(), key=lambda r: r["id"]))
        if req.method == "POST" and (parts == ["user", "repos"] or (len(parts) == 3 and parts[0] == "orgs")):
            owner = LOGIN if parts[0] == "user" else parts[1]
            data = orjson.loads(req.body or b"{}")
            name = data.get("name", "")
            if f"{owner}/{name}" in self.repos:
                return 409, orjson.dumps({"message": "The repository with the same name already exists."})
            repo = self.add_repo(owner, name, description=data.get("description", ""),
                                 private=bool(data.get("private", False)))
            return 201, orjson.dumps(repo)
        if len(parts) == 3 and parts[0] == "repos":
            full = f"{parts[1]}/{parts[2]}"
            repo = self.repos.get(full)
            if repo is None and self.serve_any and req.method == "GET":
                repo = {**self._template, "name": parts[2], "full_name": full, "owner": {"login": parts[1]}}
            if repo is None:
                return 404, orjson.dumps({"message": "The target couldn't be found."})
            if req.method == "GET":
                return 200, orjson.dumps(repo)
            if req.method == "PATCH":
                data = orjson.loads(req.body or b"{}")
                for key in ("description", "private", "archived", "default_branch"):
                    if key in data:
                        repo[key] = data[key]
                return 200, orjson.dumps(repo)
            if req.method == "DELETE":
                del self.repos[full]
                return 204, b""
        return 404, orjson.dumps({"message": "not found"})


async def _main(port: int, latency: float, repos: int) -> None:
    server = FakeGitea(latency=latency)
    server.serve_any = True
    server.keep_log = False
    await server.start(port)
    for i in range(repos):
        server.add_repo("acme", f"repo{i}")
    print(server.port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--repos", type=int, default=100)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.port, args.latency, args.repos))
