"""The operator's documents say what the code does: scopes, the config example, the README."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _manifest_scopes() -> set[str]:
    text = (ROOT / "slack-manifest.yaml").read_text()
    bot = text.split("    bot:\n", 1)[1].split("settings:", 1)[0]
    return {m.group(1) for m in re.finditer(r"^\s+- ([a-z:.]+)", bot, re.MULTILINE)}


def test_manifest_scopes_are_the_documented_ones_and_no_unused_ones() -> None:
    """Every bot scope the manifest asks for has its row in slack-setup.md, and vice versa;
    `channels:join` and `users:read` (no code calls their methods) are gone."""
    doc = (ROOT / "docs" / "slack-setup.md").read_text()
    table = doc.split("## Scopes and what each is for", 1)[1].split("\n## ", 1)[0]
    documented = {m.group(1) for m in re.finditer(r"^\| `([a-z:.]+)` \|", table, re.MULTILINE)}
    assert _manifest_scopes() == documented
    assert not {"channels:join", "users:read"} & _manifest_scopes()


def test_setup_doc_says_the_chart_needs_the_invitation() -> None:
    """slack-setup.md no longer says public channels work without an invitation."""
    doc = (ROOT / "docs" / "slack-setup.md").read_text()
    assert "public channels\n   work without an invitation" not in doc
    assert "Slack accepts a\n   file only in a channel the bot is in" in doc


def test_readme_example_digest_is_the_demo_s_text() -> None:
    """The README's example digest has the demo's title shape and says which week it shows."""
    readme = (ROOT / "README.md").read_text()
    example = readme.split("### An example digest", 1)[1].split("```", 2)[1]
    assert re.search(r"Weekly flow digest: payments \(Mon \d\d \w\w\w to Sun \d\d \w\w\w \d{4}\)", example)
    assert "the last full week before today's" in readme
