"""The Redis store: atomic record + cursor writes, snapshots, locks, once-only claims."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from jobs.errors import StoreUnavailable
from jobs.model import QueueSample, RepoCursor
from jobs.store import Store
from tests.factories import at, event, pr, review


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
