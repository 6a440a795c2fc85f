"""The Redis store: atomic record + cursor writes, snapshots, locks, once-only claims."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from jobs import codec
from jobs.errors import StoreUnavailable
from jobs.model import QueueItem, QueueSample, RepoCursor
from jobs.store import Store
from tests.factories import at, check, event, pr, review, snapshot


def test_records_and_cursor_are_written_together(store: Store) -> None:
    """PRs round-trip whole, open PRs are tracked, and the cursor moves with the write."""
    opened = pr(1, events=(event("review_requested", 1, requested_team="core"),),
                reviews=(review(None, "APPROVED", 3, author_type="Deleted"),))
    merged = pr(2, merged=5)
    cursor = RepoCursor(repo="acme/api", updated_at=at(5), collect_version=1)
    assert store.put_prs("acme/api", [opened, merged], cursor=cursor) == 2
    assert store.get_prs("acme/api") == [opened, merged]
    assert store.open_pr_numbers("acme/api") == [1]
    assert store.get_cursor("acme/api") == cursor
    store.put_prs("acme/api", [pr(1, merged=8)])
    assert store.open_pr_numbers("acme/api") == []
    stored = store.get_pr("acme/api", 1)
    assert stored is not None and stored.merged_at == at(8)


def test_queue_samples_are_a_time_series(store: Store) -> None:
    """Samples come back in time order; one per timestamp; old ones are trimmed."""
    for h in (2, 0, 1, 1):
        store.add_queue_sample("core", QueueSample(at(h), h, 0, 0, 0, None, None))
    got = store.queue_samples("core")
    assert [s.at for s in got] == [at(0), at(1), at(2)]
    store.add_queue_sample("core", QueueSample(at(24 * 200), 9, 0, 0, 0, 1.0, 1.0), keep_days=120)
    assert [s.reviewer for s in store.queue_samples("core")] == [9]


def test_lock_is_exclusive_and_released_only_by_its_owner(store: Store) -> None:
    """A second holder cannot take a held lock; release frees it for the next."""
    with store.lock("sample", ttl=timedelta(seconds=30)) as first:
        assert first.acquired
        with store.lock("sample") as second:
            assert not second.acquired
        assert first.extend()
    with store.lock("sample") as third:
        assert third.acquired


def test_claim_once(store: Store) -> None:
    """An idempotency key is claimed once; releasing it allows a retry."""
    assert store.claim_once("digest:core:2026-W10")
    assert not store.claim_once("digest:core:2026-W10")
    store.release_claim("digest:core:2026-W10")
    assert store.claim_once("digest:core:2026-W10")


def test_embedded_redis_keeps_data_across_restarts(tmp_path: Path) -> None:
    """Without REDIS_URL the embedded server's data file survives a restart."""
    path = tmp_path / "data.rdb"
    first = Store.connect(None, data_path=path)
    first.put_prs("acme/api", [pr(7)])
    first.close()
    del first
    import gc

    gc.collect()
    second = Store.connect(None, data_path=path)
    assert [p.number for p in second.get_prs("acme/api")] == [7]
    second.close()


def test_unreachable_redis_is_a_clear_error() -> None:
    """A Redis that is not there gives StoreUnavailable naming it, without the password."""
    with pytest.raises(StoreUnavailable) as caught:
        Store.connect("redis://:sekrit@127.0.0.1:1/0", timeout=0.2)
    assert "127.0.0.1:1" in str(caught.value)
    assert "sekrit" not in str(caught.value)


def test_malformed_redis_url_is_a_clear_error_without_the_password() -> None:
    """A mistyped REDIS_URL (bad scheme or port) gives StoreUnavailable, not a traceback."""
    for url in (":sekrit@localhost:6379", "redis://:sekrit@127.0.0.1:63x9/0"):
        with pytest.raises(StoreUnavailable, match="not a valid Redis URL") as caught:
            Store.connect(url, timeout=0.2)
        assert "sekrit" not in str(caught.value)


def test_schema_version_mismatch_is_refused(store: Store) -> None:
    """Data written by another schema version is not silently read."""
    store._r.set(f"{store.prefix}:schema", 99)  # another version wrote here
    with pytest.raises(StoreUnavailable, match="schema v99"):
        store.ensure_schema()
    store._r.delete(f"{store.prefix}:schema")


# ---------------------------------------------------------------------------- snapshot parts


def _items(n: int, *, waiting_on: tuple[str, ...] = ("bob",)) -> tuple[QueueItem, ...]:
    return tuple(QueueItem(repo="acme/api", number=k, title=f"Change {k}",
                           url=f"https://github.com/acme/api/pull/{k}", author="alice",
                           turn="reviewer", waiting_on=waiting_on, age_hours=float(k),
                           age_business_hours=float(k) / 2, size="S", ai_assisted=False)
                 for k in range(1, n + 1))


def test_a_snapshot_is_read_back_whole_or_by_the_part_a_surface_renders(store: Store) -> None:
    """The whole snapshot round-trips; the queue comes a page at a time, oldest first, with
    its length; the head carries neither items nor trend."""
    snap = snapshot(queue_items=_items(300))
    store.put_snapshot(snap)
    whole = store.get_snapshot("platform")
    assert whole is not None
    assert sorted(whole.queue_items, key=lambda i: i.number) == list(snap.queue_items)
    assert replace(whole, queue_items=snap.queue_items) == snap
    head, page, total = store.get_queue_page("platform", start=0, count=25)
    assert head is not None and head.queue_items == () and head.queue_trend == ()
    assert total == 300 and [i.number for i in page] == list(range(300, 275, -1))
    assert store.get_snapshot_head("platform") == head


def test_an_older_snapshot_never_replaces_a_newer_one(store: Store) -> None:
    """Two snapshot jobs for one team that overlap on two workers: the one computed first but
    ending last writes nothing, so surfaces and alerts keep the newer; a later one replaces it."""
    newer = snapshot(queue_items=_items(5))
    older = snapshot(queue_items=_items(9), computed_at=newer.computed_at - timedelta(minutes=1))
    assert store.put_snapshot(newer, inputs="new")
    assert not store.put_snapshot(older, inputs="old")
    head, _, total = store.get_queue_page("platform", start=0, count=25)
    assert head is not None and head.computed_at == newer.computed_at and total == 5
    assert store.snapshot_inputs(["platform"]) == {"platform": "new"}
    assert store.put_snapshot(replace(older, computed_at=newer.computed_at))  # the same moment: written
    latest = snapshot(queue_items=_items(2), computed_at=newer.computed_at + timedelta(minutes=5))
    assert store.put_snapshot(latest)
    assert store.get_queue_page("platform", start=0, count=25)[2] == 2


def test_waiting_lists_are_per_reviewer_capped_and_counted(store: Store) -> None:
    """Each reviewer (and GitHub team) asked gets the oldest PRs waiting on them and their
    count; a later snapshot replaces the lists whole (nobody keeps a stale list)."""
    store.put_snapshot(snapshot(queue_items=_items(50, waiting_on=("Bob", "team:core"))))
    [(head, lists)] = store.get_waiting(["platform"], ["bob", "team:core", "erin"])
    assert head is not None
    assert [w.total for w in lists] == [50, 50]
    assert [i.number for i in lists[0].items] == list(range(50, 50 - Store.WAITING_CAP, -1))
    stored = store.redis_client().hget(store.key("snapshot_waiting", "platform"), "bob")
    assert stored == codec.dumps(lists[0])  # the items' bytes, encoded once, as the record's
    store.put_snapshot(snapshot(queue_items=_items(3, waiting_on=("erin",))))
    [(_, lists)] = store.get_waiting(["platform"], ["bob", "erin"])
    assert [(w.total, len(w.items)) for w in lists] == [(3, 3)]


def _numbers(store: Store, repo: str) -> list[int]:
    return store.pr_blocks([repo])[repo].arrays["number"].tolist()  # type: ignore[no-any-return]


def test_prune_reads_the_closing_index_not_the_records(store: Store) -> None:
    """Closed PRs past retention go with their columns; open and recent ones stay; records
    stored before the index existed are indexed once, then pruned the same way."""
    store.put_prs("acme/api", [pr(1, merged=1), pr(2, closed=50), pr(3)])
    assert store.prune_prs("acme/api", closed_before=at(10)) == 1
    assert [p.number for p in store.get_prs("acme/api")] == [2, 3]
    assert _numbers(store, "acme/api") == [2, 3]
    for part in ("cols", "closed"):  # as an earlier version left them: records only
        store.delete(part, "acme/api")
    assert store.prune_prs("acme/api", closed_before=at(100)) == 1
    assert _numbers(store, "acme/api") == [3]


def test_column_blocks_give_the_metrics_the_records_columns(store: Store) -> None:
    """Metrics built from the stored column block equal those built from the records, field by
    field, after the PRs were written in several steps, rewritten and pruned."""
    import numpy as np

    from jobs import metrics
    from jobs.identity import Identity
    from jobs.settings import IdentitySettings

    prs = [pr(1, events=(event("review_requested", 1, requested_reviewer="Bob"),
                         event("review_requested", 2, requested_team="core")),
              reviews=(review("bob", "APPROVED", 3), review(None, "COMMENTED", 2, author_type="Deleted")),
              checks=(check(run_id=5, created=1.0),), labels=("ai",), merged=4),
           pr(2, author="dependabot[bot]", author_type="Bot", checks=(check(run_id=6, attempt=2),))]
    store.put_prs("acme/api", [pr(3, merged=1), pr(2), pr(9, closed=2)])
    store.put_prs("acme/api", prs)
    store.prune_prs("acme/api", closed_before=at(3))
    identity = Identity(IdentitySettings())
    want = metrics.columns(prs, identity=identity)
    got = metrics.columns(store.pr_blocks(["acme/api"])["acme/api"], identity=identity)
    for name in want.__dataclass_fields__:
        a, b = getattr(want, name), getattr(got, name)
        if isinstance(a, np.ndarray):
            assert a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype != object), name


def test_a_column_block_that_does_not_decode_is_named_and_rebuilt(store: Store) -> None:
    """An unreadable stored block is named and made again from the records: no PR is lost."""
    store.put_prs("acme/api", [pr(1), pr(2)])
    store._r.set(store.key("cols", "acme/api"), b"\x93garbage")  # garbage under the prefix
    assert _numbers(store, "acme/api") == [1, 2]
    assert (store.key("cols", "acme/api"), None) in store.quarantined
    store.put_prs("acme/api", [pr(3)])
    assert _numbers(store, "acme/api") == [1, 2, 3]


def test_a_block_left_stale_is_rebuilt_from_the_records(store: Store) -> None:
    """Records written by a version that kept no block (or whose block lost a race) are
    still all read: the block is rebuilt from them, then kept up to date by writes."""
    store.put_prs("acme/api", [pr(1), pr(2)])
    store._r.incr(store.key("gen", "acme/api"))  # a write that did not update the block
    store._r.hset(store.key("prs", "acme/api"), "5", store._r.hget(store.key("prs", "acme/api"), "2")
                  .replace(b'"number":2', b'"number":5'))
    assert _numbers(store, "acme/api") == [1, 2, 5]
    store.put_prs("acme/api", [pr(4)])
    assert _numbers(store, "acme/api") == [1, 2, 4, 5]


def test_every_write_moves_the_repository_counter(store: Store) -> None:
    """A write or a prune changes the counter a snapshot's inputs are compared on."""
    before = store.generations(["acme/api", "acme/web"])
    store.put_prs("acme/api", [pr(1, merged=1)])
    middle = store.generations(["acme/api", "acme/web"])
    store.prune_prs("acme/api", closed_before=at(5))
    after = store.generations(["acme/api"])
    assert before["acme/api"] < middle["acme/api"] < after["acme/api"]
    assert before["acme/web"] == middle["acme/web"] == 0


def test_team_sources_read_as_each_part_reads_alone(store: Store) -> None:
    """One round trip for every team's sources gives what each part's own read gives: two
    teams sharing a repository, a cursor that does not decode, a series of another type."""
    from jobs.windows import ReviewWindows, Window

    r = store.redis_client()
    store.put_prs("acme/api", [pr(1)], cursor=RepoCursor(repo="acme/api", updated_at=at(1),
                                                     collect_version=1))
    store.put_prs("acme/web", [pr(2)])
    r.set(store.key("cursor", "acme/web"), b"{not json")
    store.set_review_windows(ReviewWindows("alice", (Window.parse("09:00-10:00"),), "UTC"))
    store.mark_review_windows_default("core", now=at(3))
    store.put_snapshot(snapshot(team="core"), inputs="abc")
    for h in (1, 2, 50):
        store.add_queue_sample("core", QueueSample(at(h), h, 0, 0, 0, None, None))
    r.set(store.key("queue", "web"), b"a string")
    teams = {"core": (["acme/api", "acme/web"], ["Alice", "bob"]),
             "web": (["acme/web"], ["carol"]), "none": ([], [])}
    got = store.team_sources(teams, since=at(2), until=at(40))
    for name, (repos, logins) in teams.items():
        one = got[name]
        assert one.cursors == store.get_cursors(repos)
        assert one.generations == store.generations(repos)
        assert one.windows == store.get_review_windows(logins)
        assert one.default_since == store.review_windows_default_since([name])
        assert one.inputs == store.snapshot_inputs([name])[name]
        assert one.samples == store.queue_samples(name, since=at(2), until=at(40))
    assert got["core"].inputs == "abc" and [s.at for s in got["core"].samples] == [at(2)]
    assert got["core"].cursors[1] is None and got["core"].windows
    assert any(k == store.key("cursor", "acme/web") for k, _ in store.quarantined)
    assert any(k == store.key("queue", "web") for k, _ in store.quarantined)
