"""Server-side merges of one commit into another: merge, squash and rebase.

Everything is computed with ``git merge-tree --write-tree`` into new objects; nothing is
published here. The caller moves the base branch with a compare-and-swap afterwards, so a
merge computed against a base that moved meanwhile is refused rather than applied.
"""

from __future__ import annotations

from dataclasses import dataclass

from mosaic.catalog.git import MergeStrategy
from mosaic.errors import Conflict
from mosaic.providers.local.git_repo import BareRepo, MergeTree
from mosaic.providers.local.gitcli import Identity


@dataclass(frozen=True, slots=True)
class MergeOutcome:
    sha: str
    """New tip for the base branch (the old tip when there was nothing to merge)."""
    merged: bool
    message: str
    created: tuple[str, ...] = ()


async def merge_commits(repo: BareRepo, base_sha: str, head_sha: str, strategy: MergeStrategy,
                        message: str) -> MergeOutcome:
    """Merge ``head_sha`` into ``base_sha`` with ``strategy``; raise :class:`Conflict` on conflicts.

    ``merge`` always makes a merge commit with two parents, even when a fast-forward is
    possible, so the history records that a merge happened (GitHub's "merge commit").
    ``squash`` makes one commit with the merged tree and the base as its only parent.
    ``rebase`` replays each head commit (merges excluded, like ``git rebase``) onto the base,
    keeping author, author date and message; ``message`` is not used.
    """
    if await repo.is_ancestor(head_sha, base_sha):
        return MergeOutcome(base_sha, False, "already up to date: the base contains the head")
    if await repo.merge_base(base_sha, head_sha) is None:
        raise Conflict("the base and the head share no history and cannot be merged",
                       details={"base": base_sha, "head": head_sha, "paths": []})
    if strategy == "rebase":
        return await _rebase(repo, base_sha, head_sha)
    merged = await repo.merge_tree(base_sha, head_sha)
    _raise_on_conflict(merged, base_sha, head_sha, strategy)
    if strategy == "squash":
        if merged.tree == await repo.tree_of(base_sha):
            return MergeOutcome(base_sha, False, "nothing to squash: the base already has these changes")
        sha = await repo.commit_tree(merged.tree, [base_sha], message)
    else:
        sha = await repo.commit_tree(merged.tree, [base_sha, head_sha], message)
    return MergeOutcome(sha, True, message, (sha,))


async def _rebase(repo: BareRepo, base_sha: str, head_sha: str) -> MergeOutcome:
    # --cherry-pick drops head commits whose change is already in the base, as git rebase does.
    commits = await repo.log(f"{base_sha}...{head_sha}",
                             extra=("--reverse", "--topo-order", "--no-merges", "--cherry-pick",
                                    "--right-only"))
    tip, tip_tree = base_sha, await repo.tree_of(base_sha)
    created: list[str] = []
    for commit in commits:
        # A throwaway commit with the current tip's tree and the replayed commit's parent makes
        # that parent the merge base: merge-tree then computes exactly a cherry-pick
        # (git 2.39's merge-tree has no --merge-base option).
        parents = list(commit.parents[:1])
        carrier = await repo.commit_tree(tip_tree, parents, "mosaic: rebase carrier\n")
        merged = await repo.merge_tree(carrier, commit.sha, allow_unrelated=not parents)
        _raise_on_conflict(merged, tip, commit.sha, "rebase", replaying=commit.sha)
        if merged.tree == tip_tree:
            continue  # the change is already there: drop the now-empty commit
        tip = await repo.commit_tree(merged.tree, [tip], commit.message,
                                     author=Identity(commit.author_name, commit.author_email),
                                     author_date=commit.author_date)
        tip_tree = merged.tree
        created.append(tip)
    if not created:
        return MergeOutcome(base_sha, False, "nothing to rebase: the base already has these changes")
    return MergeOutcome(tip, True, f"rebased {len(created)} commit(s)", tuple(created))


def _raise_on_conflict(merged: MergeTree, base: str, head: str, strategy: MergeStrategy, *,
                       replaying: str | None = None) -> None:
    if merged.clean:
        return
    paths = list(merged.conflicts)
    where = f" while replaying {replaying[:12]}" if replaying else ""
    details: dict[str, object] = {"paths": paths, "base": base, "head": head, "strategy": strategy}
    if replaying:
        details["commit"] = replaying
    raise Conflict(f"merge conflict{where} in {', '.join(paths)}", details=details)
