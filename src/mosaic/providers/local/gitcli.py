"""Run the ``git`` executable asynchronously, with an environment nothing outside can change.

Every command gets a fresh environment: no system or global config, ``HOME`` inside the
data dir, literal pathspecs (so a file named ``:(glob)*`` is just a file name), the C
locale (stable messages), and a fixed identity. Arguments go straight to ``exec``: no
shell ever sees them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mosaic.errors import InvalidRequest, MosaicError, Timeout

DEFAULT_NAME = "MosAIc"
DEFAULT_EMAIL = "mosaic@localhost"

# Variables of the parent process worth keeping: how to find git and where temp files go.
_INHERITED = ("PATH", "TMPDIR", "SYSTEMROOT")


class GitFailed(MosaicError):
    """A git command failed in a way its caller did not anticipate (disk full, corrupt repo...)."""


@dataclass(frozen=True, slots=True)
class GitResult:
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "surrogateescape")

    @property
    def error(self) -> str:
        return self.stderr.decode("utf-8", "replace").strip()


@dataclass(frozen=True, slots=True)
class Identity:
    name: str = DEFAULT_NAME
    email: str = DEFAULT_EMAIL


class GitCli:
    """Spawns ``git`` with a clean environment rooted at ``home``."""

    def __init__(self, home: Path, *, executable: str = "git", timeout: float = 60.0) -> None:
        self.home = home
        self.executable = executable
        self.timeout = timeout
        env = {k: v for k, v in os.environ.items() if k in _INHERITED}
        env.update({
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_LITERAL_PATHSPECS": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_OPTIONAL_LOCKS": "0",
            # No hook ever runs, even in a repository someone dropped into the data dir by hand.
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "core.hooksPath",
            "GIT_CONFIG_VALUE_0": os.devnull,
            "LC_ALL": "C",
            "LANG": "C",
            "GIT_AUTHOR_NAME": DEFAULT_NAME,
            "GIT_AUTHOR_EMAIL": DEFAULT_EMAIL,
            "GIT_COMMITTER_NAME": DEFAULT_NAME,
            "GIT_COMMITTER_EMAIL": DEFAULT_EMAIL,
        })
        self._env = env

    def environment(self, git_dir: Path | None = None,
                    extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(self._env)
        if git_dir is not None:
            env["GIT_DIR"] = str(git_dir)
        if extra:
            env.update(extra)
        return env

    async def run(self, args: Sequence[str], *, git_dir: Path | None = None, stdin: bytes | None = None,
                  env: Mapping[str, str] | None = None, ok: Collection[int] = (0,)) -> GitResult:
        """Run ``git ARGS``; a return code outside ``ok`` raises :class:`GitFailed`."""
        if any("\x00" in a for a in args):
            # exec() cannot carry a NUL byte; a commit message or name holding one is bad input.
            raise InvalidRequest("text passed to git must not contain NUL characters")
        proc = await asyncio.create_subprocess_exec(
            self.executable, *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=self.environment(git_dir, env),
            cwd=str(self.home),
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), self.timeout)
        except TimeoutError:
            await _kill(proc)
            raise Timeout(f"git {args[0]} took longer than {self.timeout:g}s",
                          details={"command": args[0]}) from None
        except BaseException:
            # Cancelled: never leave a git process behind holding a ref lock.
            await _kill(proc)
            raise
        assert proc.returncode is not None
        result = GitResult(proc.returncode, out, err)
        if result.returncode not in ok:
            raise GitFailed(f"git {args[0]} failed ({result.returncode}): {result.error[:500]}",
                            details={"command": args[0], "returncode": result.returncode})
        return result

    async def version(self) -> str:
        return (await self.run(["--version"])).text.strip()


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        with contextlib.suppress(Exception):
            await proc.wait()
