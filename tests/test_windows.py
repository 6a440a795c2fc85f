"""Review windows: what a member may choose, when a window occurs, and how the store keeps it."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import config
from jobs.errors import ConfigError
from jobs.settings import Team
from jobs.store import Store
from jobs.windows import (
    ReviewWindows,
    Window,
    effective_windows,
    next_window_start,
    occurrences_on,
    open_occurrence,
    parse_windows,
)
from jobs.worktime import WorkCalendar

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


def _team(**kw: Any) -> Team:
    base: dict[str, Any] = {"members": [{"github": "alice", "slack": "U0ALICE01"}],
                            "repositories": ["api"], "channel": "C0TEAM0001",
                            "timezone": "Europe/Paris", "working_hours": "09:00-17:00",
                            "holiday_country": "FR", "days_off": [date(2026, 3, 31)]}
    return Team.model_validate({**base, **kw})


def _rw(*labels: str, tz: str = "Europe/Paris") -> ReviewWindows:
    return ReviewWindows("alice", tuple(Window.parse(x) for x in labels), tz)


def _paris(d: date, hh: int, mm: int = 0) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(d.year, d.month, d.day, hh, mm, tzinfo=ZoneInfo("Europe/Paris")).astimezone(UTC)


def test_choices_are_checked_with_what_is_wrong() -> None:
    """Four windows, overlaps, reversed spans and windows outside working hours are refused, saying which."""
    team = _team()
    assert parse_windows(["15:00-15:30", "10:00-10:30", " "], hours=team) == (
        Window(time(10), time(10, 30)), Window(time(15), time(15, 30)))
    cases = {("10:00-10:30", "11:00-11:30", "12:00-12:30", "13:00-13:30"): "at most 3",
             ("10:00-11:00", "10:30-11:30"): "overlap",
             ("11:00-10:00",): "must end after it starts",
             ("07:30-08:00",): "outside the working hours 09:00-17:00",
             ("10h-11h",): "HH:MM"}
    for texts, said in cases.items():
        with pytest.raises(ValueError, match=said):
            parse_windows(texts, hours=team)


def test_team_default_is_validated_with_its_key_path() -> None:
    """A team default outside working hours is a config error naming teams.<name>.review_windows."""
    data = tomllib.loads(EXAMPLE.read_text())
    data["teams"]["payments"]["review_windows"] = ["08:00-08:30"]
    with pytest.raises(ConfigError) as caught:
        config.from_mapping(data, env={})
    assert any(p.startswith("teams.payments.review_windows:") and "outside the working hours" in p
               for p in caught.value.problems), caught.value.problems
    data["teams"]["payments"]["review_windows"] = ["10:00-10:30"]
    settings = config.from_mapping(data, env={})
    rw = effective_windows(settings, {}, "Alice")
    assert rw is not None and rw.source == "team" and rw.describe() == "10:00-10:30 (Europe/Paris)"
    own = ReviewWindows("alice", (), "Europe/Paris")  # turned off by the member: wins over the default
    assert effective_windows(settings, {"alice": own}, "alice") == own
    assert effective_windows(settings, {}, "nobody") is None


def test_windows_occur_on_working_days_only_and_skip_a_dst_gap() -> None:
    """A weekend, a public holiday and a day off have no window; a window whose start the clocks
    skip (spring forward) does not occur; the others keep their local wall time across the change."""
    cal = WorkCalendar.for_team(_team(working_days=["mon", "tue", "wed", "thu", "fri", "sun"],
                                      working_hours="01:00-17:00"))
    rw = _rw("02:15-02:45", "10:00-10:30")
    # Sunday 2026-03-29: clocks go 02:00 -> 03:00 in Paris; a working day in this calendar
    sunday = occurrences_on(rw, date(2026, 3, 29), cal)
    assert [o.window.label for o in sunday] == ["10:00-10:30"]
    assert sunday[0].start == datetime(2026, 3, 29, 8, 0, tzinfo=UTC)  # UTC+2 now
    friday = occurrences_on(rw, date(2026, 3, 27), cal)
    assert [o.start for o in friday] == [datetime(2026, 3, 27, 1, 15, tzinfo=UTC),
                                         datetime(2026, 3, 27, 9, 0, tzinfo=UTC)]  # UTC+1
    assert occurrences_on(rw, date(2026, 3, 28), cal) == []  # a Saturday
    assert occurrences_on(rw, date(2026, 4, 6), cal) == []  # Easter Monday, a French holiday
    assert occurrences_on(rw, date(2026, 3, 31), cal) == []  # a configured day off


def test_open_window_and_next_start() -> None:
    """Inside a window its occurrence is open (named by day and start); after it, the next one is
    the next working day's first window."""
    cal = WorkCalendar.for_team(_team())
    rw = _rw("10:00-10:30", "15:00-15:30")
    monday = date(2026, 3, 30)
    occ = open_occurrence(rw, cal, now=_paris(monday, 10, 5))
    assert occ is not None and occ.key == "2026-03-30T10:00"
    assert open_occurrence(rw, cal, now=_paris(monday, 10, 30)) is None  # the end is not inside
    assert next_window_start(rw, cal, now=_paris(monday, 10, 5)) == _paris(monday, 15)
    # Monday 15:40 -> Tuesday 31 is a day off -> Wednesday 10:00
    assert next_window_start(rw, cal, now=_paris(monday, 15, 40)) == _paris(date(2026, 4, 1), 10)
    assert next_window_start(_rw(), cal, now=_paris(monday, 9)) is None  # off


def test_a_window_outside_working_hours_never_occurs() -> None:
    """Quiet hours win: a window chosen in another time zone that falls outside the team's
    working hours does not occur."""
    cal = WorkCalendar.for_team(_team())  # Paris, 09:00-17:00
    rw = _rw("09:00-09:30", tz="America/New_York")  # 15:00 in Paris: inside
    late = _rw("16:30-17:00", tz="America/New_York")  # 22:30 in Paris: quiet hours
    monday = date(2026, 3, 2)
    assert [o.start for o in occurrences_on(rw, monday, cal)] == [_paris(monday, 15)]
    assert occurrences_on(late, monday, cal) == []


def test_store_keeps_choices_and_their_history(store: Store) -> None:
    """A choice survives a read back; turning windows on sets since, changing them keeps it, turning
    them off clears it; every change is logged."""
    t0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
    off = ReviewWindows("alice", (), "Europe/Paris")
    on = off.changed(parse_windows(["15:00-15:30", "10:00-10:30"]), now=t0, by="U0ALICE01")
    store.set_review_windows(on)
    assert store.get_review_windows(["Alice", "bob"]) == {"alice": on}
    assert on.since == t0 and on.windows[0].label == "10:00-10:30"
    later = on.changed(parse_windows(["11:00-11:30"]), now=t0 + timedelta(days=2), by="U0ALICE01")
    assert later.since == t0
    store.set_review_windows(later)
    gone = later.changed((), now=t0 + timedelta(days=3), by="U0ALICE01")
    assert gone.since is None and not gone.on
    store.set_review_windows(gone)
    assert store.get_review_windows() == {"alice": gone}
    assert [e["windows"] for e in store.review_windows_log("alice")] == [
        [], ["11:00-11:30"], ["10:00-10:30", "15:00-15:30"]]
    store.mark_review_windows_default("payments", now=t0)
    store.mark_review_windows_default("payments", now=t0 + timedelta(days=1))  # kept once set
    assert store.review_windows_default_since(["payments", "other"]) == {"payments": t0}


def test_a_bad_stored_choice_is_quarantined_not_fatal(store: Store) -> None:
    """A hand-edited record that does not decode is skipped and named; the others still read."""
    store.set_review_windows(_rw("10:00-10:30"))
    store._r.set(store.key("windows", "bob"), b'{"login": "bob", "windows": [{"start": "11:00:00", "end": "10:00:00"}], "tz": "UTC"}')
    assert set(store.get_review_windows(["alice", "bob"])) == {"alice"}
    assert any(bad.key.endswith("windows:bob") for bad in store.quarantine_list())
