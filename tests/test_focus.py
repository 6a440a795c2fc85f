"""Review windows' measured effect (docs/metrics.md "Review windows: interruptions inside and
outside them"), pinned on small hand-built weeks."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone

import pytest

from bot.blocks.digest import render_digest
from bot.blocks.reviewers import render_reviewers
from jobs import metrics
from jobs.metrics.focus import Windows, default_windows, window_effect
from jobs.model import FocusLoad, FocusSummary, PullRequest
from jobs.settings import WorkHours
from jobs.worktime import WorkCalendar
from tests.factories import T0, at, pr, review, snapshot
from tests.test_metrics import IDENTITY, generated_prs

UTC_CAL = WorkCalendar.for_team(WorkHours())  # UTC, Mon-Fri 09:00-17:00
NOW = at(24 * 7 - 1)  # the next Monday 08:00: the whole week T0 starts is in the window
TEAM = ("bob", "carol", "alice")
MORNING_AND_AFTERNOON = ((time(10, 0), time(10, 30)), (time(14, 0), time(14, 30)))
REC = 23 / 60  # one interruption's focus cost in hours


def hm(day: int, hh: int, mm: int = 0) -> float:
    """Hours after T0 (Monday 09:00 UTC) of weekday ``day`` (0 = Monday) at hh:mm UTC."""
    return day * 24 + hh + mm / 60 - 9


def reviewed(reviewer: str, *hours: float, first: int = 1) -> list[PullRequest]:
    """One PR by alice per hour given, each reviewed once by ``reviewer`` then."""
    return [pr(first + i, created=h - 5, first_commit=h - 6, reviews=(review(reviewer, "COMMENTED", h),))
            for i, h in enumerate(hours)]


def effect(prs: list[PullRequest], windows: dict[str, Windows], *, now: datetime = NOW,
           cal: WorkCalendar = UTC_CAL, defaults: tuple[tuple[time, time], ...] | None = None,
           ) -> dict[str, FocusLoad]:
    revs = metrics.review_table(prs, identity=IDENTITY, calendar=cal, now=now)
    table = metrics.pr_table(prs, identity=IDENTITY, calendar=cal, now=now)
    summary = window_effect(revs, table, windows=windows, calendar=cal, now=now, members=TEAM,
                            defaults=defaults)
    return {p.login: p for p in summary.people}


def on(spans: tuple[tuple[time, time], ...] = MORNING_AND_AFTERNOON, *, tz: str = "UTC",
       since: datetime = T0 - timedelta(days=30)) -> Windows:
    return Windows(spans, tz, since)


def test_a_review_at_a_window_s_start_is_inside_and_one_at_its_end_is_not() -> None:
    """Start included, end excluded: 10:00 sharp is in 10:00-10:30, 10:30 sharp and 09:59 are
    outside, each its own interruption."""
    bob = effect(reviewed("bob", hm(0, 10), hm(1, 10, 30), hm(2, 9, 59)), {"bob": on()})["bob"]
    assert (bob.review_starts, bob.inside, bob.batches, bob.outside) == (3, 1, 1, 2)
    assert bob.interruptions == 3 and bob.saved_hours == 0


def test_reviews_in_one_window_are_one_interruption_and_the_rest_is_saved() -> None:
    """Three PRs reviewed in Monday's morning window and one in the afternoon's: two
    interruptions instead of four, so two times the focus cost saved."""
    bob = effect(reviewed("bob", hm(0, 10), hm(0, 10, 10), hm(0, 10, 25), hm(0, 14, 5)),
                 {"bob": on()})["bob"]
    assert (bob.inside, bob.batches, bob.outside, bob.interruptions) == (4, 2, 0, 2)
    assert bob.saved_hours == pytest.approx(2 * REC)
    assert bob.would_save_hours == 0


def test_a_batch_running_over_its_window_s_end_stays_one_session() -> None:
    """A start less than the recovery time after the batch's previous one joins it, past the
    window's end; a start 30 minutes later is a new interruption."""
    bob = effect(reviewed("bob", hm(0, 10, 25), hm(0, 10, 40), hm(0, 11), hm(0, 11, 30)),
                 {"bob": on()})["bob"]
    assert (bob.inside, bob.batches, bob.outside) == (3, 1, 1)
    assert bob.saved_hours == pytest.approx(2 * REC)


def test_a_person_without_windows_has_one_interruption_per_review_and_a_would_save() -> None:
    """Without windows every review start is an interruption; the would-save moves each into
    the default window it falls in or waits for (09:00-09:30, 13:00-13:30 for 09:00-17:00
    hours), over the weekend to Monday's first."""
    prs = reviewed("carol", hm(0, 9, 10), hm(0, 11), hm(0, 12), hm(0, 16), hm(1, 8), hm(4, 18))
    carol = effect(prs, {})["carol"]
    assert (carol.review_starts, carol.inside, carol.batches, carol.outside) == (6, 0, 0, 6)
    assert carol.interruptions == 6 and carol.saved_hours == 0 and carol.since is None
    # batches: Mon 09:00 (09:10), Mon 13:00 (11:00, 12:00), Tue 09:00 (Mon 16:00, Tue 08:00),
    # next Mon 09:00 (Fri 18:00): six starts in four batches
    assert carol.would_save_hours == pytest.approx(2 * REC)
    assert default_windows(WorkHours()) == ((time(9), time(9, 30)), (time(13), time(13, 30)))
    assert default_windows(WorkHours(working_hours="09:00-13:00")) == ((time(9), time(9, 30)),)


def test_the_would_save_skips_days_off_and_uses_the_team_s_default_windows() -> None:
    """A team default replaces the stated one; a start waits past a day off to the next
    working day's window."""
    cal = WorkCalendar.for_team(WorkHours(days_off=(date(2026, 3, 3),)))  # Tuesday off
    prs = reviewed("carol", hm(0, 16), hm(2, 8, 30), hm(2, 11))
    carol = effect(prs, {}, cal=cal, defaults=((time(11), time(11, 15)),))["carol"]
    # Mon 16:00 and Wed 08:30 wait for Wednesday 11:00 (Tuesday is off); Wed 11:00 is in it
    assert carol.would_save_hours == pytest.approx(2 * REC)
    no_team_default = effect(prs, {}, cal=cal)["carol"]
    # stated default: Mon 16:00 and Wed 08:30 -> Wed 09:00; Wed 11:00 -> Wed 13:00
    assert no_team_default.would_save_hours == pytest.approx(1 * REC)


def test_windows_turned_on_mid_week_count_only_from_since() -> None:
    """Reviews before ``since`` are without windows (and would be batched into the person's
    own windows); from ``since`` they count inside."""
    since = datetime(2026, 3, 4, tzinfo=timezone.utc)  # Wednesday 00:00
    prs = reviewed("bob", hm(0, 10, 5), hm(0, 10, 15), hm(2, 10, 5), hm(2, 10, 15))
    bob = effect(prs, {"bob": on(since=since)})["bob"]
    assert (bob.inside, bob.batches, bob.outside) == (2, 1, 2)
    assert bob.saved_hours == pytest.approx(REC) and bob.would_save_hours == pytest.approx(REC)
    assert bob.since == since


def test_windows_keep_their_wall_clock_time_on_a_daylight_saving_day() -> None:
    """09:00-09:30 Berlin is 08:00 UTC on Saturday 28 March and 07:00 UTC on Sunday 29 March
    (clocks spring forward); a 02:30 window does not occur that Sunday (the wall time is
    skipped), as the DMs read it."""
    cal = WorkCalendar.for_team(WorkHours(timezone="Europe/Berlin", working_hours="00:00-23:00",
                                          working_days=("mon", "tue", "wed", "thu", "fri", "sat", "sun")))
    sat = datetime(2026, 3, 28, tzinfo=timezone.utc)
    now = sat + timedelta(days=2)

    def h(day: int, hh: int, mm: int = 0) -> float:
        return (sat + timedelta(days=day, hours=hh, minutes=mm) - T0).total_seconds() / 3600

    prs = reviewed("bob", h(0, 8, 5), h(1, 7, 5), h(1, 8, 5))
    bob = effect(prs, {"bob": on(((time(9), time(9, 30)),), tz="Europe/Berlin")}, now=now,
                 cal=cal)["bob"]
    assert (bob.inside, bob.batches, bob.outside) == (2, 2, 1)
    night = reviewed("bob", h(0, 1, 35), h(1, 0, 35), h(1, 1, 10))  # 02:35 CET Sat; 01:35, 03:10 CEST Sun
    bob = effect(night, {"bob": on(((time(2, 30), time(3, 30)),), tz="Europe/Berlin")}, now=now,
                 cal=cal)["bob"]
    assert (bob.inside, bob.outside) == (1, 2)


def test_a_window_outside_working_hours_or_on_a_holiday_never_opens() -> None:
    """Windows occur only where the team's calendar has working time (the DMs' rule): a review
    at 08:10 in an 08:00-08:30 window before 09:00 working hours, or in a window on a day off,
    is outside."""
    cal = WorkCalendar.for_team(WorkHours(days_off=(date(2026, 3, 3),)))  # Tuesday off
    bob = effect(reviewed("bob", hm(0, 8, 10), hm(1, 10, 5), hm(2, 10, 5)),
                 {"bob": on(((time(8), time(8, 30)), (time(10), time(10, 30))))}, cal=cal)["bob"]
    assert (bob.inside, bob.outside) == (1, 2)


def test_pickup_before_and_after_windows_were_turned_on() -> None:
    """The pickup wait of the PRs a person gave the first review to, the 28 days before
    ``since`` against since; bot PRs and others' pickups left out; the team pools its
    members with windows."""
    since = datetime(2026, 3, 4, tzinfo=timezone.utc)  # Wednesday 00:00
    prs = [
        pr(1, created=hm(0, 10), first_commit=-30, reviews=(review("bob", "APPROVED", hm(0, 12)),)),
        pr(2, created=hm(0, 10), first_commit=-30, reviews=(review("Bob", "APPROVED", hm(0, 14)),)),
        pr(3, created=hm(2, 10), first_commit=-30, reviews=(review("bob", "APPROVED", hm(2, 11)),)),
        pr(4, created=hm(2, 10), first_commit=-30, author="dependabot[bot]", author_type="Bot",
           reviews=(review("bob", "APPROVED", hm(2, 16)),)),
        pr(5, created=hm(2, 10), first_commit=-30, reviews=(review("carol", "APPROVED", hm(2, 16)),)),
    ]
    revs = metrics.review_table(prs, identity=IDENTITY, calendar=UTC_CAL, now=NOW)
    table = metrics.pr_table(prs, identity=IDENTITY, calendar=UTC_CAL, now=NOW)
    summary = window_effect(revs, table, windows={"BOB": on(since=since)}, calendar=UTC_CAL,
                            now=NOW, members=TEAM)
    bob = next(p for p in summary.people if p.login == "bob")
    assert (bob.pickup_before.business.count, bob.pickup_before.business.p50) == (2, 3.0)
    assert (bob.pickup_after.business.count, bob.pickup_after.business.p50) == (1, 1.0)
    assert summary.pickup_before == bob.pickup_before and summary.pickup_after == bob.pickup_after
    carol = next(p for p in summary.people if p.login == "carol")
    assert carol.pickup_before.business.count == 0 and carol.since is None


def test_team_totals_are_its_people_s_sums_most_interrupted_first() -> None:
    """The team row adds its people up; a member with windows and no reviews is listed; people
    outside the team are not."""
    prs = (reviewed("bob", hm(0, 10), hm(0, 10, 10)) + reviewed("carol", hm(0, 11), hm(0, 15), first=10)
           + reviewed("zed", hm(0, 11), first=20))
    revs = metrics.review_table(prs, identity=IDENTITY, calendar=UTC_CAL, now=NOW)
    table = metrics.pr_table(prs, identity=IDENTITY, calendar=UTC_CAL, now=NOW)
    summary = window_effect(revs, table, windows={"bob": on(), "alice": on(), "zed": on()},
                            calendar=UTC_CAL, now=NOW, members=TEAM)
    assert [p.login for p in summary.people] == ["carol", "bob", "alice"]
    total = summary.total()
    assert (total.review_starts, total.inside, total.batches, total.outside) == (4, 2, 1, 2)
    assert total.interruptions == 3
    assert total.saved_hours == pytest.approx(REC)
    assert total.would_save_hours == 0  # carol's 11:00 waits for 13:00, her 15:00 for Tuesday's 09:00
    assert summary.defaults == ("09:00-09:30", "13:00-13:30")


def test_without_windows_review_starts_are_context_switches_plus_one_per_day() -> None:
    """On generated PRs, with nobody's windows on, the interruptions are exactly the existing
    context switches plus one per day each reviewer reviewed: the same units, counted alike."""
    prs = generated_prs(7, 150)
    now = max(r.submitted_at for p in prs for r in p.reviews) + timedelta(hours=1)
    revs = metrics.review_table(prs, identity=IDENTITY, calendar=UTC_CAL, now=now)
    table = metrics.pr_table(prs, identity=IDENTITY, calendar=UTC_CAL, now=now)
    reqs = metrics.request_table(prs, identity=IDENTITY, team_members={}, calendar=UTC_CAL, now=now)
    members = ("alice", "bob", "carol", "dave", "erin")
    loads = {r.login: r for r in metrics.reviewer_loads(reqs, revs, now=now, window_days=30,
                                                          members=members)}
    summary = window_effect(revs, table, windows={}, calendar=UTC_CAL, now=now, members=members,
                            window_days=30)
    ok = (revs["counts"] & (revs["reviewer_kind"] == "human")
          & (revs["submitted_at"] > now - timedelta(days=30)))
    days = revs[ok].groupby("reviewer")["day"].nunique().to_dict()
    assert summary.people, "the generated PRs have reviews"
    for p in summary.people:
        assert p.interruptions == p.outside == loads[p.login].context_switches + days[p.login]


def test_bad_windows_are_refused_with_who_and_what() -> None:
    """A window ending before it starts, or overlapping another, names the person."""
    with pytest.raises(ValueError, match="bob: a window must end after it starts"):
        effect([], {"bob": on(((time(10), time(9)),))})
    with pytest.raises(ValueError, match="bob: windows overlap"):
        effect([], {"bob": on(((time(10), time(11)), (time(10, 30), time(12))))})


# ---------------------------------------------------------------------------- surfaces


def week_summary() -> FocusSummary:
    """bob with windows (on since before the 28 days; 4 reviews in 2 batches, 1 outside),
    carol without (3 reviews), one hostile login without windows."""
    prs = (reviewed("bob", hm(0, 10), hm(0, 10, 10), hm(1, 14), hm(1, 14, 20), hm(2, 16))
           + reviewed("carol", hm(0, 11), hm(0, 12), hm(3, 15), first=10)
           + reviewed("<!channel>", hm(0, 11), first=20))
    revs = metrics.review_table(prs, identity=IDENTITY, calendar=UTC_CAL, now=NOW)
    table = metrics.pr_table(prs, identity=IDENTITY, calendar=UTC_CAL, now=NOW)
    return window_effect(revs, table, windows={"bob": on()}, calendar=UTC_CAL, now=NOW,
                         members=(*TEAM, "<!channel>"))


def test_reviewers_answer_says_interruptions_with_and_without_windows() -> None:
    """`/flow reviewers` gives the team's interruptions with windows and without, the
    focus-hours saved and within reach, pickup before/after, and a line per person, logins
    escaped."""
    summary = week_summary()
    assert [(p.login, p.interruptions, p.review_starts) for p in summary.people] == [
        ("bob", 3, 5), ("carol", 3, 3), ("<!channel>", 1, 1)]
    blocks, _ = render_reviewers(replace(snapshot(), focus=summary), now=T0)
    text = "\n".join(b["text"]["text"] for b in blocks if b.get("type") == "section")
    assert ("1 of 3 reviewers have review windows. Review interruptions this week: 7 with windows"
            " (2 window batches holding 4 reviews, 5 reviews outside windows), against 9 without them.") in text
    assert "Batching saved about 0.8 focus-hours" in text  # (4 - 2) x 23 min
    assert "would save about 0.4 more" in text  # carol's 11:00 and 12:00 both wait for 13:00
    assert "bob (windows): 3 interruptions with windows, 5 without" in text
    assert "carol (no windows): 3 review interruptions" in text
    assert "&lt;!channel&gt; (no windows)" in text and "<!channel>" not in text


def test_the_digest_has_a_review_windows_section_and_says_so_without_windows() -> None:
    """The weekly digest's "Review windows" section carries the same figures; a team where no
    one has windows reads what batching would save, into the default windows it names."""
    from jobs import digest as dg
    from tests.test_digest import SEND, settings

    digest = dg.digest_from_snapshot(settings(), "platform", replace(snapshot(), focus=week_summary()),
                                     [], now=SEND)
    body = dict(digest.sections)[dg.WINDOWS]
    assert "7 with windows" in body and "against 9 without them" in body
    nobody = FocusSummary(people=(FocusLoad(login="carol", review_starts=6, outside=6,
                                            would_save_hours=2 * REC),),
                          defaults=("09:00-09:30", "13:00-13:30"))
    digest = dg.digest_from_snapshot(settings(), "platform", replace(snapshot(), focus=nobody), [], now=SEND)
    body = dict(digest.sections)[dg.WINDOWS]
    assert body.startswith("No one has review windows yet: 6 review interruptions this week, each review on"
                           " its own. Batching them into review windows (09:00-09:30 and 13:00-13:30) would"
                           " save about 0.8 focus-hours.")
    blocks, _ = render_digest(digest)
    assert any(":calendar: *Review windows*" in b["text"]["text"] for b in blocks if b.get("type") == "section")


def test_a_snapshot_stored_before_the_windows_figures_still_reads() -> None:
    """A snapshot written before the review windows' figures decodes with empty ones."""
    import json

    from jobs import codec
    from jobs.model import TeamSnapshot

    raw = codec.to_jsonable(replace(snapshot(), focus=week_summary()))
    assert raw["focus"]["people"]
    del raw["focus"]
    old = codec.loads(TeamSnapshot, json.dumps(raw))
    assert old.focus == FocusSummary() and old.focus.total().review_starts == 0
