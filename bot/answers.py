"""Answers rendered ahead: `/flow status`, `/flow queue` and App Home's parts, kept per snapshot.

Rendering costs more than reading once the reading is cheap: `/flow queue` escapes, links and
formats 25 lines, App Home decoded every team's card and waiting lists as records. Here each
is rendered once per snapshot, by the first request that needs it, and kept beside the snapshot
(``Store.fill_answers``: the team's answers hash, dropped when a new snapshot is written, so
never older than the snapshot it came from). Later requests read one hash field and add only
what changes: the data age ("data 4 min old"), the response type, and on App Home what depends
on who reads it. The answer is the one the Bolt path gives (tests/test_fastlane.py compares).

Why rendered here, on the web's side, and not by the worker: rendering is Block Kit, which
lives in ``bot/`` (``jobs/`` never imports it), and snapshots are computed by units of work that
must not need the Slack side. Rendered where it is served, an answer also follows the web's
code: a deploy that changes wording bumps :data:`VERSION` and renders anew at once.
"""

from __future__ import annotations

import functools
import heapq
import itertools
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from bot.blocks import Block, context
from bot.blocks.frame import (
    Message,
    age_text,
    as_of,
    footer,
    footer_block,
    footer_parts,
    unavailable_since,
)
from bot.blocks.home import MAX_WAITING, asked_of_team, card_section, home_layout, team_card, waiting_base
from bot.blocks.queue import MAX_ITEMS, render_queue
from bot.blocks.status import render_status
from bot.reader import DOWN
from jobs.errors import StoreUnavailable
from jobs.windows import ReviewWindows, effective_windows, team_of

if TYPE_CHECKING:
    from bot.app import BotDeps

VERSION = 1  # of the rendered forms and their wording: a change renders every answer anew
SLASH = ("status", "queue")  # the subcommands answered from a rendered answer


class SlashAnswer(msgspec.Struct, frozen=True, tag="slash"):
    """`/flow status` or `/flow queue` for a team, rendered but for the footer's data age."""

    blocks: msgspec.Raw  # JSON array: every block but the footer
    text: str
    as_of: datetime | None  # what the data age counts from
    footer_before: str  # the footer's text around the data age (bot.blocks.frame.footer_parts)
    footer_after: str


class CardAnswer(msgspec.Struct, frozen=True, tag="card"):
    """A team's App Home card, but for its data age."""

    block: dict[str, Any]  # decoded once per process (see decode): views share it, never change it
    as_of: datetime | None


class WaitingEntry(msgspec.Struct, frozen=True, array_like=True):
    """One PR waiting on a reviewer, as App Home lists it."""

    age_hours: float
    key: str  # repo#number: the same PR in several lists is listed once
    line: str  # bot.blocks.home.waiting_base
    waiting_on: list[str]  # lower case: whether `asked` applies to the reader
    asked: str  # bot.blocks.home.asked_of_team


class WaitingAnswer(msgspec.Struct, frozen=True, tag="waiting"):
    """The PRs waiting on one login (or ``team:slug``) in a team: the oldest, and how many."""

    total: int
    entries: list[WaitingEntry]  # oldest first
    keys: frozenset[str] = frozenset()  # the entries' keys: lists that share none merge as they are


Stored = SlashAnswer | CardAnswer | WaitingAnswer
_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(Stored)
CARD = f"card@{VERSION}"


def field(sub: str) -> str:
    """The answers hash field of a `/flow` subcommand's rendered answer."""
    return f"{sub}@{VERSION}"


def waiting_field(who: str) -> str:
    """The answers hash field of the PRs waiting on ``who`` (a lower-case login or ``team:slug``)."""
    return f"waiting@{VERSION}:{who}"


def decode(raw: bytes) -> Stored:
    """A stored answer; raises msgspec's DecodeError for anything else (then quarantined).

    Answers are immutable and read again and again until the next snapshot: the last
    :data:`MEMO` decoded are remembered by their bytes (App Home reads 60 at a time, and
    decoding them was most of its cost)."""
    found = _memo.get(raw)
    if found is None:
        found = _DECODER.decode(raw)
        if len(_memo) >= MEMO:
            _memo.clear()  # the next snapshot's answers are other bytes: start again
        _memo[raw] = found
    return found


MEMO = 2048  # decoded answers kept per process (at most ~25 MB: the largest, a queue, is ~5 KB)
_memo: dict[bytes, Stored] = {}  # bytes -> frozen answer; dict operations are atomic under the GIL


class Answers:
    """Rendered answers for the Slack surfaces of one process. Thread-safe."""

    def __init__(self, deps: BotDeps) -> None:
        self._deps = deps

    # ---------------------------------------------------------------- /flow status, queue

    def slash(self, team: str, sub: str, *, now: datetime, share: bool) -> bytes | None:
        """The JSON body answering `/flow {sub}` (``status`` or ``queue``) for ``team`` at
        ``now``, what the Bolt path acknowledges with; None when this way cannot answer it
        (no snapshot yet, or Redis down and no copy read before): ask the Bolt path.

        While Redis cannot be read, the last answer this process read is served with the
        outage notice, as the Bolt path does with its last snapshot (``bot.reader``).
        """
        key = ("answer", team, field(sub))
        got = self._deps.reader.fetch(key, lambda: self._slash(team, sub))
        down = got is DOWN
        if down:
            got = self._deps.reader.last(key)
        if not isinstance(got, SlashAnswer):
            return None
        self._deps.telemetry.reading(unavailable=down, found=True)
        return compose(got, team=team, now=now, share=share, unavailable=down)

    def _slash(self, team: str, sub: str) -> SlashAnswer | None:
        [[got]] = self._deps.store.get_answers([(team, [field(sub)])], decode)
        if isinstance(got, SlashAnswer):
            return got
        made: dict[str, SlashAnswer] = {}

        def render() -> Mapping[str, bytes]:
            answer = self._render_slash(team, sub)
            if answer is None:
                return {}
            made["answer"] = answer
            return {field(sub): _ENCODER.encode(answer)}

        self._deps.store.fill_answers(team, render)
        return made.get("answer")

    def _render_slash(self, team: str, sub: str) -> SlashAnswer | None:
        """Read what the Bolt path reads (bot.commands) and render it as it does."""
        store = self._deps.store
        if sub == "queue":
            head, items, total = store.get_queue_page(team, count=MAX_ITEMS)
            if head is None:
                return None
            snapshot = replace(head, queue_items=tuple(items))
            blocks, text = render_queue(snapshot, now=snapshot.computed_at, total=total)
        else:
            found = store.get_snapshot_head(team)
            if found is None:
                return None
            snapshot = found
            blocks, text = render_status(snapshot, now=snapshot.computed_at)
        if not blocks or blocks[-1] != footer(snapshot, snapshot.computed_at):
            return None  # cut by Slack's block limit: the footer is not where it is added back
        before, after = footer_parts(snapshot)
        return SlashAnswer(blocks=msgspec.Raw(_ENCODER.encode(blocks[:-1])), text=text,
                           as_of=as_of(snapshot), footer_before=before, footer_after=after)

    # ---------------------------------------------------------------- App Home

    def home(self, teams: list[str], who: list[str], *, login: str | None,
             now: datetime) -> tuple[dict[str, object], ReviewWindows | None] | None:
        """The App Home view (``bot.home.home_view``'s, but for the review-windows line) from
        rendered cards and waiting lists, rendering what is missing, and the review windows
        that apply to ``login``: all read in one round trip. None while Redis cannot be read
        (the slow path answers from its last copies)."""
        settings = self._deps.settings
        fields = [CARD, *(waiting_field(w) for w in who)]
        team = None if login is None else team_of(settings, login)
        read = self._deps.reader.fetch(None, lambda: self._deps.store.get_home_answers(
            teams, fields, decode, login=login, team=team, cache=self._deps.parts))
        if read is DOWN:
            return None
        rows = read.rows
        try:
            cards: list[list[Block]] = []
            found: list[WaitingAnswer] = []
            total, exact = 0, True
            for team, row in zip(teams, rows, strict=True):
                if not isinstance(row[0], CardAnswer) or any(not isinstance(w, WaitingAnswer) for w in row[1:]):
                    row = self._fill_home(team, who)
                card, lists = row[0], [w for w in row[1:] if isinstance(w, WaitingAnswer) and w.total]
                if not isinstance(card, CardAnswer):
                    cards.append(team_card(team, None, now=now, unavailable=False))
                    continue
                cards.append([card.block, _age_context(age_text(card.as_of, now))])
                total += max((w.total for w in lists), default=0)
                exact = exact and len(lists) <= 1
                found += lists
        except StoreUnavailable:
            return None
        self._deps.telemetry.reading(unavailable=False, found=True)
        oldest, listed = _oldest(found)
        mine = (login or "").lower()
        lines = [e.line + (e.asked if mine not in e.waiting_on else "") for e in oldest]
        view = home_layout(cards, lines, login=login, total=max(total, listed), exact=exact)
        if login is None:
            return view, None
        own = {} if read.windows is None else {read.windows.login: read.windows}
        since = {} if team is None or read.default_since is None else {team: read.default_since}
        return view, effective_windows(settings, own, login, default_since=since)

    def _fill_home(self, team: str, who: list[str]) -> list[Stored | None]:
        """The team's card and the waiting lists of ``who``, rendered from the snapshot (and
        kept, see :meth:`Store.fill_answers`); ``[None]`` when it has no snapshot yet."""
        made: list[Stored | None] = [None]

        def render() -> Mapping[str, bytes]:
            store = self._deps.store
            [(head, _)] = store.get_waiting([team], [])
            if head is None:
                return {}
            card = CardAnswer(block=card_section(team, head), as_of=as_of(head))
            made[:] = [card]
            out = {CARD: _ENCODER.encode(card)}
            for w in who:
                [(_, lists)] = store.get_waiting([team], [w])
                waiting = _waiting(lists[0] if lists else None)
                made.append(waiting)
                out[waiting_field(w)] = _ENCODER.encode(waiting)
            return out

        self._deps.store.fill_answers(team, render)
        return made


def compose(answer: SlashAnswer, *, team: str, now: datetime, share: bool, unavailable: bool = False) -> bytes:
    """The acknowledgement's JSON body: ``answer`` with its footer's data age at ``now``
    (and, when Redis is down, the outage notice first, as bot.commands adds it)."""
    age = age_text(answer.as_of, now, unavailable=unavailable)
    last = footer_block(answer.footer_before, age, answer.footer_after)
    kind = "in_channel" if share else "ephemeral"
    if unavailable:
        warn, _ = unavailable_since(team, now, copy=True, since=answer.as_of)
        blocks: list[Any] = [*warn, *msgspec.json.decode(answer.blocks), last][:50]
        return _ENCODER.encode({"text": answer.text, "response_type": kind, "blocks": blocks})
    head = bytes(answer.blocks)[:-1]  # "[...": the footer is appended, then the array closed
    return b"".join((b'{"text":', _ENCODER.encode(answer.text), b',"response_type":"', kind.encode(),
                     b'","blocks":', head, b"," if len(head) > 1 else b"", _ENCODER.encode(last), b"]}"))


def message_of(body: bytes) -> Message:
    """(blocks, text) of a body from :func:`compose` (tests compare it with the Bolt path's)."""
    value = msgspec.json.decode(body)
    return value["blocks"], value["text"]


def _oldest(lists: list[WaitingAnswer]) -> tuple[list[WaitingEntry], int]:
    """The :data:`MAX_WAITING` oldest PRs of ``lists`` (each oldest first), a PR in several
    once (as it was met first, lists in order), and how many PRs they hold. Lists that share
    no PR (the usual case) are merged as they are, without visiting every entry; a list whose
    PRs were all met before (teams sharing repositories) is passed over whole."""
    sets = [w.keys or frozenset(e.key for e in w.entries) for w in lists]
    keys = frozenset().union(*sets)
    if len(keys) == sum(len(w.entries) for w in lists):
        merged = heapq.merge(*(w.entries for w in lists), key=lambda e: -e.age_hours)
        return list(itertools.islice(merged, MAX_WAITING)), len(keys)
    first: dict[str, WaitingEntry] = {}
    for w, its in zip(lists, sets, strict=True):
        if first and its <= first.keys():
            continue
        for entry in w.entries:
            first.setdefault(entry.key, entry)
    ordered = sorted(first.values(), key=lambda e: e.age_hours, reverse=True)
    return ordered[:MAX_WAITING], len(ordered)


@functools.lru_cache(maxsize=256)
def _age_context(text: str) -> Block:
    """The context block under a Home card (``data 4 min old``): a Home holds 30 of them, most
    alike, and, like the cards' blocks, views share them and never change them."""
    return context(text)


def _waiting(found: Any) -> WaitingAnswer:
    """A stored ``jobs.store.WaitingList`` (or None: nothing waits) as rendered entries."""
    if found is None:
        return WaitingAnswer(total=0, entries=[])
    entries = [WaitingEntry(age_hours=item.age_hours, key=f"{item.repo}#{item.number}", line=waiting_base(item),
                            waiting_on=[w.lower() for w in item.waiting_on], asked=asked_of_team(item))
               for item in found.items if item.turn == "reviewer"]
    entries.sort(key=lambda e: e.age_hours, reverse=True)  # stored oldest first; kept so
    return WaitingAnswer(total=found.total, entries=entries, keys=frozenset(e.key for e in entries))

