"""Processes of the local CI/CD runner: git checkouts and step scripts in their own process group."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mosaic.errors import NotFound
from mosaic.providers.local.cicd_logs import LogSink

GIT_TIMEOUT_S = 120.0
# How long the output pipe may stay open after the step's process group is gone (a process
# that left the group with setsid can hold it open forever).
DRAIN_TIMEOUT_S = 2.0


class CheckoutError(Exception):
    """The commit could not be checked out into the workspace."""


def base_env(home: Path) -> dict[str, str]:
    """The minimal environment every child process starts from: nothing of the gateway leaks in."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "LANG": "C.UTF-8",
    }


def _git_env(home: Path) -> dict[str, str]:
    env = base_env(home)
    # Ignore the machine's and the user's git config (hooks, credential helpers, aliases).
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0",
               LC_ALL="C")
    return env


async def git(*args: str, cwd: Path | None = None, home: Path | None = None,
              time_limit: float = GIT_TIMEOUT_S) -> tuple[int, str, str]:
    """Run git; returns (exit code, stdout, stderr). A hung git is killed after `time_limit` s."""
    proc = await asyncio.create_subprocess_exec(
        "git", *args, cwd=cwd, env=_git_env(home or Path(tempfile.gettempdir())),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), time_limit)
    except BaseException:
        await terminate_group(proc, grace=0.0)
        raise
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


async def resolve_ref(bare: Path, repo: str, ref: str | None) -> tuple[str, str]:
    """(ref, sha) of a branch, tag or sha in a bare repository; the default branch when ref is None."""
    if ref is None:
        code, out, _ = await git("--git-dir", str(bare), "symbolic-ref", "--quiet", "--short", "HEAD")
        ref = out.strip() if code == 0 and out.strip() else "HEAD"
    code, out, _ = await git("--git-dir", str(bare), "rev-parse", "--verify", "--quiet",
                             "--end-of-options", f"{ref}^{{commit}}")
    if code != 0 or not out.strip():
        raise NotFound(f"ref {ref!r} not found in {repo} (no such branch, tag or commit, or the "
                       "repository has no commits yet)", details={"repo": repo, "ref": ref})
    return ref, out.strip()


async def checkout(bare: Path, sha: str, dest: Path) -> None:
    """Clone the bare repository into `dest` (a copy, never hard links) and check out `sha` detached."""
    home = dest.parent
    code, _, err = await git("clone", "--quiet", "--no-hardlinks", "--no-checkout", "--",
                             str(bare), str(dest), home=home)
    if code != 0:
        raise CheckoutError(f"git clone failed: {err.strip()[-2000:]}")
    code, _, _ = await git("cat-file", "-e", f"{sha}^{{commit}}", cwd=dest, home=home)
    if code != 0:
        # The commit is reachable only from refs a clone does not copy (e.g. pull request refs).
        code, _, err = await git("fetch", "--quiet", "--no-tags", "origin", "+refs/*:refs/mosaic/origin/*",
                                 cwd=dest, home=home)
        if code != 0:
            raise CheckoutError(f"git fetch failed: {err.strip()[-2000:]}")
    code, _, err = await git("-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", sha,
                             cwd=dest, home=home)
    if code != 0:
        raise CheckoutError(f"git checkout of {sha} failed: {err.strip()[-2000:]}")


def step_script(commands: list[str]) -> str:
    """One shell script for a step: echo each command, stop at the first that fails."""
    lines = ["set -e"]
    for command in commands:
        lines.append(f"printf '%s\\n' {shlex.quote('+ ' + command)}")
        lines.append(command)
    return "\n".join(lines) + "\n"


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def terminate_group(proc: asyncio.subprocess.Process, grace: float) -> None:
    """SIGTERM the whole process group, SIGKILL it after `grace` seconds, and reap the leader."""
    if proc.returncode is None:
        _signal_group(proc.pid, signal.SIGTERM)
        if grace > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), grace)
    # Whatever is left in the group (background children, or a leader that ignored SIGTERM).
    _signal_group(proc.pid, signal.SIGKILL)
    if proc.returncode is None:
        await proc.wait()


@dataclass(frozen=True, slots=True)
class StepResult:
    exit_code: int | None
    timed_out: bool


async def run_step(script: str, cwd: Path, env: dict[str, str], time_limit: float, log: LogSink,
                   kill_grace: float) -> StepResult:
    """Run a step script in a new process group, streaming stdout+stderr into `log`.

    On timeout or cancellation the whole group is killed; cancellation is re-raised afterwards.
    """
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", script, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
    )
    assert proc.stdout is not None
    pump = asyncio.create_task(log.pump(proc.stdout))
    timed_out = False
    try:
        try:
            await asyncio.wait_for(proc.wait(), time_limit)
        except TimeoutError:
            timed_out = True
    finally:
        # Also on cancellation: no process of the step may outlive it.
        await terminate_group(proc, kill_grace)
        done, _ = await asyncio.wait({pump}, timeout=DRAIN_TIMEOUT_S)
        if not done:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            await log.note("output stream still open after the step ended; stopped reading it")
        elif not pump.cancelled() and pump.exception() is not None:
            raise pump.exception()  # type: ignore[misc]
    return StepResult(exit_code=proc.returncode, timed_out=timed_out)
