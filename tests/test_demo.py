"""flowbot demo: the real pipeline offline, printing and writing what Flowbot would post."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from rich.console import Console

from bot.demo import DEMO_PREFIX, DemoResult, post_result, print_result, run_demo
from jobs.store import Store
from tests.fakes.slack_api import FakeSlack

ROOT = Path(__file__).resolve().parent.parent
MONDAY_4PM = datetime(2026, 3, 2, 16, 0, tzinfo=timezone.utc)  # every team's digest fell due


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, redis_url: str | None) -> tuple[DemoResult, Path]:
    """One simulated day up to Monday afternoon, run once for the tests below; beside it, on
    the same Redis, data of another install whose prefix is the demo's name (as an earlier
    demo's was), with a Monday sample stamped: it must neither be deleted nor stop the demo."""
    out = tmp_path_factory.mktemp("demo")
    other = Store.connect(redis_url, data_path=out / "other.rdb", prefix=DEMO_PREFIX)
    try:
        other.set_json("schedule", "last-sample", value=MONDAY_4PM.isoformat(),
                       ttl=timedelta(minutes=10))  # lapses by itself (another worker's
        # fixture may be reading it: not deleted here)
        result = run_demo(out=out, console=Console(file=io.StringIO()), end=MONDAY_4PM,
                          simulated_days=1, redis_url=redis_url)
        assert other.get_json("schedule", "last-sample") is not None, "the demo deleted it"
    finally:
        other.redis_client().delete(f"{DEMO_PREFIX}:schema")  # what connecting wrote
        other.close()
    return result, out


def test_demo_shows_a_digest_an_alert_and_a_status_and_writes_the_files(
    demo: tuple[DemoResult, Path]
) -> None:
    """Over a Monday: every team's digest, its Block Kit JSON and chart, a status answer."""
    result, out = demo
    teams = set(result.settings.teams)
    assert {d.team for d in result.digests} == teams
    assert result.cycles == 7  # every 4 h from Sunday 16:00 to Monday 16:00, both ends
    console = Console(file=io.StringIO(), width=100)
    print_result(result, console=console, out=out)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "The weekly digest" in text and result.digests[0].headline.split(":")[0] in text
    assert "What `/flow status" in text and "Next" in text
    live = result.live
    assert live is not None and live.status == 202 and live.event == "pull_request.opened"
    assert live.shown_after is not None and live.line.startswith(f"• {live.pr} {live.title}")
    assert "A change arriving in real time" in text and live.line in text
    for team in teams:
        digest = json.loads((out / f"digest-{team}.json").read_text())
        assert digest["blocks"] and digest["text"]
        assert (out / f"digest-{team}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert json.loads((out / f"status-{team}.json").read_text())["blocks"]


def test_demo_post_sends_the_messages_to_one_channel(demo: tuple[DemoResult, Path]) -> None:
    """--post puts the digest (with its chart), an alert and a status in the given channel."""
    result, _out = demo
    with FakeSlack() as slack:
        posted = post_result(result, channel="C0DEMO", client=slack.client())
        assert posted == len(slack.messages("C0DEMO")) >= 2
        assert slack.calls("files.completeUploadExternal")


def test_demo_command_runs_with_no_tokens_and_no_redis_server(tmp_path: Path) -> None:
    """The README's first command: exit 0, no tokens, the embedded Redis, what to do next."""
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    out = subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo", "--days", "1", "--out", str(tmp_path / "o")],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "Flowbot demo" in out.stdout and "flowbot report OWNER/REPO" in out.stdout
    assert "Traceback" not in out.stderr
    assert list((tmp_path / "o").glob("status-*.json"))


def test_demo_into_a_folder_it_cannot_create_says_so(tmp_path: Path) -> None:
    """`--out` naming a path under a file ends with the reason and exit 1, not a traceback."""
    (tmp_path / "file").write_text("")
    out = subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo", "--out", str(tmp_path / "file" / "o")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert out.returncode == 1
    assert "flowbot: " in out.stderr and "Traceback" not in out.stderr
