"""How numbers read for people, the same in Slack, the digest and the terminal.

Two duration formats, both business and calendar time side by side:

* :func:`hours` for aggregates (percentiles, sums): ``6.5 working h (1.2 d)``; calendar time
  in hours below two days and in days above; one decimal below 10, none above.
* :func:`clock` for one PR's own clock (``/flow why``, queue ages, the digest's longest
  waits, App Home): ``10.5 working h (23.5 h)``; one decimal below 100 h, so a clock reads as
  it was measured (10.5 h is not "10 h", 23.5 h not "24 h"); calendar time in hours below
  100 h and in days above. Halves round up (away from zero), never to the even neighbour.

``jobs`` builds the digest's text with these; ``bot.blocks`` re-exports them.
"""

from __future__ import annotations

from collections.abc import Callable

from decimal import ROUND_HALF_UP, Decimal

CLOCK_DECIMALS_BELOW = 100.0  # hours: a per-PR clock keeps one decimal below this


def number(value: float) -> str:
    """``6.5``, ``12``, ``0.3``: one decimal below 10, none above."""
    if abs(value) >= 10:
        return f"{value:.0f}"
    return f"{value:.1f}".removesuffix(".0") if value != 0 else "0"


def clock_number(value: float) -> str:
    """``10.5``, ``23.5``, ``0.3``, ``123``: one decimal below 100, none from 100; halves
    round up (``0.25`` -> ``0.3``, ``100.5`` -> ``101``), a trailing ``.0`` is dropped."""
    tenths = _round(value, "0.1")
    if abs(tenths) >= Decimal(CLOCK_DECIMALS_BELOW):
        return str(_round(value, "1"))
    text = str(tenths).removesuffix(".0")
    return "0" if text in ("0", "-0") else text


def hours(business: float | None, calendar: float | None = None) -> str:
    """One aggregate duration, business and calendar side by side: ``6.5 working h (1.2 d)``;
    ``n/a`` when neither is known."""
    return _side_by_side(business, calendar, number, days=calendar is not None and calendar >= 48)


def clock(business: float | None, calendar: float | None = None) -> str:
    """One PR's clock, business and calendar side by side: ``10.5 working h (23.5 h)``,
    ``130 working h (9.2 d)``; ``n/a`` when neither is known."""
    days = calendar is not None and _round(calendar, "0.1") >= Decimal(CLOCK_DECIMALS_BELOW)
    return _side_by_side(business, calendar, clock_number, days=days)


def _side_by_side(business: float | None, calendar: float | None,
                  fmt: Callable[[float], str], *, days: bool) -> str:
    if business is None and calendar is None:
        return "n/a"
    parts = []
    if business is not None:
        parts.append(f"{fmt(business)} working h")
    if calendar is not None:
        cal = f"{fmt(calendar / 24)} d" if days else f"{fmt(calendar)} h"
        parts.append(f"({cal})" if parts else cal)
    return " ".join(parts)


def minutes(value: float | None) -> str:
    """``12.5 min`` or ``n/a``."""
    return "n/a" if value is None else f"{number(value)} min"


def percent(share: float | None) -> str:
    """A 0..1 share as ``42%`` (``n/a`` when unknown)."""
    return "n/a" if share is None else f"{share * 100:.0f}%"


def _round(value: float, step: str) -> Decimal:
    """``value`` as written (its shortest repr) rounded half up to ``step``."""
    return Decimal(repr(float(value))).quantize(Decimal(step), rounding=ROUND_HALF_UP)
