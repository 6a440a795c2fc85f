"""The small interfaces the jobs need from outside: a clock and a way to deliver."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from jobs.model import Alert, Digest
from jobs.windows import WindowDM


class Clock(Protocol):
    """Tells the time: aware UTC datetimes only."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass
class FixedClock:
    """A clock tests and simulations move by hand."""

    current: datetime

    def now(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> datetime:
        self.current = self.current + delta
        return self.current


class Deliver(Protocol):
    """Posts what the jobs decided. ``bot.delivery`` implements it; jobs never import Slack."""

    def alert(self, alert: Alert) -> bool:
        """Post one alert or recovery notice; True when posted (or already posted before)."""
        ...

    def digest(self, digest: Digest) -> bool:
        """Post one weekly digest; True when posted (or already posted before)."""
        ...


@runtime_checkable
class DeliverDM(Protocol):
    """Posts a review-window DM (``bot.delivery`` implements it beside :class:`Deliver`)."""

    def window_dm(self, dm: WindowDM) -> bool:
        """Post one window DM to its member once; True when posted (or already posted before)."""
        ...
