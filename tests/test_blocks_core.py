"""The shared Block Kit helpers: escaping, limits, durations."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot import blocks


def test_escape_neutralises_mentions_and_links() -> None:
    """A PR title with a channel ping or a fake link renders as text."""
    assert blocks.escape("<!channel> & <https://evil|click>") == (
        "&lt;!channel&gt; &amp; &lt;https://evil|click&gt;")


def test_text_is_cleaned_then_cut_then_escaped() -> None:
    """Bidi and control characters go; a cut keeps entities whole, so `&amp;` never ends as a raw `&`."""
    assert blocks.escape("a\u202eb\u2066c\x00d\x07e\x1b[31mf\x7fg\x08h\ti\nj") == "abcde[31mfgh i\nj"
    assert blocks.escape("x" * 10 + "&", 12) == "x" * 10 + "…"  # not "xxxxxxxxxx&a…"
    assert blocks.escape("title <!channel>", 14) == "title &lt;!ch…"  # the mention is cut as text
    assert blocks.escape("👍🏽" * 3, 4) == "👍🏽…"  # a skin tone stays with its hand
    assert blocks.plain("Why: <b>\n\u202e", 150) == "Why: <b> "  # plain text is cleaned, not escaped
    assert blocks.clip("&amp;" * 10, 8) == "&amp;…"


@given(st.text())
def test_link_labels_cannot_break_out(label: str) -> None:
    """Whatever a title holds, the link has exactly one opening and one closing bracket."""
    text = blocks.link("https://github.com/a/b/pull/1", label)
    assert text.count("<") == 1 and text.count(">") == 1 and text.count("|") == 1


@given(st.text(), st.text())
def test_odd_urls_are_not_linked(url: str, label: str) -> None:
    """A URL that is not plain http(s) (empty, javascript:, Slack markup) gives the bare label."""
    if not url.startswith(("https://", "http://")):
        assert blocks.link(url, label) == blocks.escape(label, 300, multiline=False)


def test_durations_read_the_same_everywhere() -> None:
    """Business and calendar time side by side; days above two days."""
    assert blocks.hours(6.5, 28.8) == "6.5 working h (29 h)"
    assert blocks.hours(6.0, 50.4) == "6 working h (2.1 d)"
    assert blocks.hours(None, None) == "n/a"


def test_long_lists_and_messages_are_cut_with_a_note() -> None:
    """Lists end with "and N more"; messages keep to 50 blocks and 3,000 characters."""
    assert blocks.truncate_list([str(i) for i in range(12)], 5)[-1] == "and 8 more"
    many = [blocks.section("x" * 5000) for _ in range(80)]
    fitted = blocks.fit(many)
    assert len(fitted) == 50
    assert all(len(b["text"]["text"]) <= 3000 for b in fitted if b["type"] == "section")
