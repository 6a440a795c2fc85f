"""How numbers read for people, the same in Slack, the digest and the terminal.

A duration is shown in business and calendar time side by side: ``6.5 working h (1.2 d)``;
calendar time in hours below two days and in days above. Numbers keep one decimal below 10
and none above. ``jobs`` builds the digest's text with these; ``bot.blocks`` re-exports them.
"""

from __future__ import annotations


def number(value: float) -> str:
    """``6.5``, ``12``, ``0.3``: one decimal below 10, none above."""
    if abs(value) >= 10:
        return f"{value:.0f}"
    return f"{value:.1f}".removesuffix(".0") if value != 0 else "0"


def hours(business: float | None, calendar: float | None = None) -> str:
    """One duration, business and calendar side by side: ``6.5 working h (1.2 d)``; ``n/a``
    when neither is known."""
    if business is None and calendar is None:
        return "n/a"
    parts = []
    if business is not None:
        parts.append(f"{number(business)} working h")
    if calendar is not None:
        cal = f"{number(calendar / 24)} d" if calendar >= 48 else f"{number(calendar)} h"
        parts.append(f"({cal})" if parts else cal)
    return " ".join(parts)


def minutes(value: float | None) -> str:
    """``12.5 min`` or ``n/a``."""
    return "n/a" if value is None else f"{number(value)} min"


def percent(share: float | None) -> str:
    """A 0..1 share as ``42%`` (``n/a`` when unknown)."""
    return "n/a" if share is None else f"{share * 100:.0f}%"
