"""Pure: who is behind a login (docs/metrics.md "Who counts").

GraphQL gives bots without the ``[bot]`` suffix (``dependabot``, ``__typename: Bot``), so the
account type is read as well as the name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from jobs.model import PullRequest
from jobs.settings import IdentitySettings

Kind = Literal["human", "bot", "ai", "deleted"]


@dataclass(frozen=True)
class Identity:
    """Compiled identity rules. Build once per settings; calls are cheap and pure."""

    settings: IdentitySettings

    def __post_init__(self) -> None:
        flags = re.IGNORECASE
        object.__setattr__(self, "_bot", [re.compile(p, flags) for p in self.settings.bot_patterns])
        object.__setattr__(self, "_ai", [re.compile(p, flags) for p in self.settings.ai_patterns])
        object.__setattr__(
            self,
            "_coauthor",
            [re.compile(p, flags) for p in self.settings.ai_coauthor_patterns],
        )
        object.__setattr__(self, "_labels", {label.lower() for label in self.settings.ai_labels})
        object.__setattr__(self, "_kinds", {})  # (login, type) -> kind: a few hundred distinct pairs
        object.__setattr__(self, "_ai_traits", {})  # (author, type, labels, co-authors) -> AI-assisted

    def kind(self, login: str | None, account_type: str = "User") -> Kind:
        """``deleted`` for a missing account, ``ai`` for a configured AI, ``bot`` for other bots."""
        found: Kind | None = self._kinds.get((login, account_type))  # type: ignore[attr-defined]
        if found is None:
            found = self._kinds[(login, account_type)] = self._kind(login, account_type)  # type: ignore[attr-defined]
        return found

    def _kind(self, login: str | None, account_type: str) -> Kind:
        if login is None or account_type == "Deleted" or login.lower() == "ghost":
            return "deleted"
        name = login.lower()
        if any(p.match(name) for p in self._ai):  # type: ignore[attr-defined]
            return "ai"
        if account_type == "Bot" or any(p.match(name) for p in self._bot):  # type: ignore[attr-defined]
            return "bot"
        return "human"

    def is_human_reviewer(self, login: str | None, account_type: str = "User") -> bool:
        """Reviews that stop the human clocks: humans and deleted accounts."""
        return self.kind(login, account_type) in ("human", "deleted")

    def is_ai_assisted(self, pr: PullRequest) -> bool:
        """Authored by an AI agent, labelled as AI-assisted, or co-authored by an AI identity."""
        return self.ai_assisted(pr.author, pr.author_type, tuple(pr.labels), tuple(pr.co_authors))

    def ai_assisted(self, author: str | None, author_type: str, labels: tuple[str, ...],
                    co_authors: tuple[str, ...]) -> bool:
        """:meth:`is_ai_assisted` of a PR with these traits (memoised per combination: a team's
        PRs have a few dozen)."""
        key = (author, author_type, labels, co_authors)
        found: bool | None = self._ai_traits.get(key)  # type: ignore[attr-defined]
        if found is None:
            found = self._ai_traits[key] = (  # type: ignore[attr-defined]
                self.kind(author, author_type) == "ai"
                or any(label.lower() in self._labels for label in labels)  # type: ignore[attr-defined]
                or any(p.search(co) for co in co_authors for p in self._coauthor)  # type: ignore[attr-defined]
            )
        return found

    def is_excluded_bot_pr(self, pr: PullRequest) -> bool:
        """Non-AI bot PRs leave the latency metrics and are counted apart."""
        return self.kind(pr.author, pr.author_type) == "bot"


@lru_cache(maxsize=16)
def for_settings(settings: IdentitySettings) -> Identity:
    """The :class:`Identity` of ``settings``, one per distinct settings in the process, so its
    memos (kinds, AI-assisted traits) serve every team and every cycle instead of being
    learnt again per team."""
    return Identity(settings)
