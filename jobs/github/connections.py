"""Which credentials read which repository, when Flowbot reads several organisations.

:class:`Connections` holds one :class:`jobs.github.client.GitHubSource` per organisation
(``github.organisation`` and ``github.organisations``), each with that organisation's
credentials and so its own rate-limit budget. Organisations read with the same credentials
(no ``GITHUB_TOKEN_<ORG>`` of their own: ``GITHUB_TOKEN``) share one source: GitHub meters a
token, not an organisation, so they share its budget too. A repository whose owner is not a
configured organisation is read with the main organisation's credentials.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from jobs.github import queries
from jobs.github.budget import identity
from jobs.github.client import GitHubSource, Sleep, connect, credentials
from jobs.ports import Clock
from jobs.settings import Settings

if TYPE_CHECKING:
    from jobs.store import Store


class Connections:
    """One GitHub source per organisation (see the module docstring)."""

    def __init__(self, by_org: Mapping[str, GitHubSource], *, main: str) -> None:
        if main not in by_org:
            raise ValueError(f"no source for the main organisation {main!r}")
        self._by_org = {org.lower(): source for org, source in by_org.items()}
        self.main = main

    @classmethod
    def single(cls, source: GitHubSource, organisation: str) -> Connections:
        """Every repository read through ``source`` (one organisation, or one credential)."""
        return cls({organisation: source}, main=organisation)

    def for_repo(self, repo: str) -> GitHubSource:
        """The source reading ``owner/name``: its owner's, else the main organisation's."""
        return self.for_org(repo.partition("/")[0])

    def for_org(self, organisation: str) -> GitHubSource:
        return self._by_org.get(organisation.lower()) or self._by_org[self.main.lower()]

    def sources(self) -> list[GitHubSource]:
        """Each distinct source once, the main organisation's first."""
        out: dict[int, GitHubSource] = {id(self.for_org(self.main)): self.for_org(self.main)}
        for source in self._by_org.values():
            out.setdefault(id(source), source)
        return list(out.values())

    def close(self) -> None:
        for source in self.sources():
            source.close()


def connect_all(
    settings: Settings,
    *,
    store: Store | None = None,
    sleep: Sleep = time.sleep,
    clock: Clock | None = None,
    page_size: int = queries.PAGE_SIZE,
    more_pages: int = queries.MORE_PAGES,
) -> Connections:
    """A source per configured organisation (one per distinct credential), budgets shared in
    ``store`` when given (see :func:`jobs.github.client.connect`). Raises GitHubError when an
    organisation has no usable credentials, naming the setting to fix."""
    by_org: dict[str, GitHubSource] = {}
    by_identity: dict[str, GitHubSource] = {}
    base = settings.github.base_url
    for org in settings.github.organisation_names:
        who = identity(base, credentials(settings, org)[1])
        if who not in by_identity:
            by_identity[who] = connect(settings, organisation=org, store=store, sleep=sleep,
                                       clock=clock, page_size=page_size, more_pages=more_pages)
        by_org[org] = by_identity[who]
    return Connections(by_org, main=settings.github.organisation)
