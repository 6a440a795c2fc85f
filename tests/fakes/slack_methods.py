"""The Slack Web API methods the fake answers: ``(fake, params) -> answer without "ok"``.

Each handler runs under the fake's lock and raises :class:`SlackApiError` for an ``ok: false``
answer. State records (messages, channels) live here too; the server is in ``slack_api``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.slack_api import FakeSlack

MAX_BLOCKS = {"message": 50, "view": 100}
MAX_TEXT = 40_000


@dataclass(slots=True)
class Message:
    """A message as the fake keeps it (``user`` set: ephemeral, seen by that user only)."""

    channel: str
    ts: str
    text: str
    blocks: list[Any] | None
    thread_ts: str | None
    user: str | None = None  # set for ephemeral messages
    edits: int = 0
    metadata: dict[str, Any] | None = None  # chat.postMessage ``metadata``, as Slack stores it
    conversation: str = ""  # where it lives: the DM's D... ID when posted to a user ID

    def __post_init__(self) -> None:
        self.conversation = self.conversation or self.channel

    def is_in(self, channel_id: str) -> bool:
        """Posted to ``channel_id``, or living there (a DM named by its user or its D... ID)."""
        return channel_id in (self.channel, self.conversation)


@dataclass(slots=True)
class Channel:
    """A channel registered with ``FakeSlack.add_channel`` (or made up on the fly)."""

    id: str
    name: str
    private: bool = False
    members: list[str] = field(default_factory=list)


class SlackApiError(Exception):
    """An ``ok: false`` answer raised inside a method handler."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def check_blocks(blocks: Any, *, limit: int) -> None:
    """Raise ``invalid_blocks`` for what Slack itself refuses: counts and text lengths."""
    if not isinstance(blocks, list) or len(blocks) > limit:
        raise SlackApiError("invalid_blocks")
    for block in blocks:
        if not isinstance(block, dict) or "type" not in block:
            raise SlackApiError("invalid_blocks")
        text = block.get("text")
        if isinstance(text, dict):
            size = len(str(text.get("text", "")))
            if (block["type"] == "header" and size > 150) or size > 3000:
                raise SlackApiError("invalid_blocks")
        for element in block.get("fields") or []:
            if not isinstance(element, dict) or len(str(element.get("text", ""))) > 2000:
                raise SlackApiError("invalid_blocks")
        if block["type"] in {"context", "actions"} and len(block.get("elements") or []) > (
            10 if block["type"] == "context" else 25
        ):
            raise SlackApiError("invalid_blocks")


# -- method handlers: (fake, params) -> answer without "ok"; raise SlackApiError for errors --


def _auth_test(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "url": "https://fake-workspace.slack.com/",
        "team": fake.team,
        "user": "flowbot",
        "team_id": fake.team_id,
        "user_id": fake.bot_user_id,
        "bot_id": fake.bot_id,
        "is_enterprise_install": False,
    }


def _apps_permissions_info(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    return {"info": {"app_home": {"scopes": []}, "team": {"scopes": list(fake._scopes)},
                     "channel": {"scopes": []}, "group": {"scopes": []}, "mpim": {"scopes": []},
                     "im": {"scopes": []}}}


def _post_message(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    target = str(params.get("channel") or "")
    if target[:1] in ("U", "W"):  # a user ID: Slack posts in the app's DM with that user
        conversation = dm_id(fake._user(target)["id"])
        channel = Channel(conversation, conversation.lower())
    else:
        channel = fake._channel(target)
        conversation = channel.id
    if not fake._bot_in(channel):
        raise SlackApiError("not_in_channel")
    fake._check_content(params)
    metadata = _metadata(params.get("metadata"))
    ts = fake._ts()
    message = Message(target or channel.id, ts, str(params.get("text") or ""), params.get("blocks"),
                      params.get("thread_ts"), metadata=metadata, conversation=conversation)
    fake._messages.append(message)
    return {"channel": conversation, "ts": ts, "message": _message_payload(fake, message)}


def dm_id(user_id: str) -> str:
    """The ID of the bot's DM with ``user_id`` (stable, as Slack's is)."""
    return "D" + user_id.lstrip("UW")[:10].upper()


def _metadata(raw: Any) -> dict[str, Any] | None:
    """Slack's message metadata: ``event_type`` (a string) and ``event_payload`` (an object)."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("event_type"), str) \
            or not isinstance(raw.get("event_payload"), dict):
        raise SlackApiError("invalid_metadata_format")
    return {"event_type": raw["event_type"], "event_payload": dict(raw["event_payload"])}


def _post_ephemeral(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    channel = fake._channel(params.get("channel"))
    if not fake._bot_in(channel):
        raise SlackApiError("not_in_channel")
    user = fake._user(params.get("user"))
    fake._check_content(params)
    ts = fake._ts()
    fake._messages.append(Message(channel.id, ts, str(params.get("text") or ""), params.get("blocks"),
                                   params.get("thread_ts"), user=user["id"]))
    return {"message_ts": ts}


def _update(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    channel = fake._channel(params.get("channel"))
    for message in fake._messages:
        if message.is_in(channel.id) and message.ts == params.get("ts") and message.user is None:
            break
    else:
        raise SlackApiError("message_not_found")
    fake._check_content(params)
    message.text = str(params.get("text") or "")
    message.blocks = params.get("blocks")
    message.edits += 1
    return {"channel": channel.id, "ts": message.ts, "text": message.text,
            "message": _message_payload(fake, message)}


def _delete(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    channel = fake._channel(params.get("channel"))
    before = len(fake._messages)
    fake._messages[:] = [m for m in fake._messages if not (m.is_in(channel.id) and m.ts == params.get("ts"))]
    if len(fake._messages) == before:
        raise SlackApiError("message_not_found")
    return {"channel": channel.id, "ts": params.get("ts")}


def _get_permalink(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    channel = fake._channel(params.get("channel"))
    ts = str(params.get("message_ts") or "")
    return {"channel": channel.id,
            "permalink": f"https://fake-workspace.slack.com/archives/{channel.id}/p{ts.replace('.', '')}"}


def _message_payload(fake: FakeSlack, message: Message, *, with_metadata: bool = True) -> dict[str, Any]:
    payload: dict[str, Any] = {"type": "message", "subtype": "bot_message", "text": message.text,
                               "user": fake.bot_user_id, "bot_id": fake.bot_id, "ts": message.ts,
                               "team": fake.team_id}
    if message.blocks is not None:
        payload["blocks"] = message.blocks
    if message.thread_ts:
        payload["thread_ts"] = message.thread_ts
    if message.metadata is not None and with_metadata:
        payload["metadata"] = message.metadata
    return payload


def _views_publish(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    user = fake._user(params.get("user_id"))
    view = params.get("view")
    if not isinstance(view, dict) or view.get("type") != "home":
        raise SlackApiError("invalid_arguments")
    check_blocks(view.get("blocks", []), limit=MAX_BLOCKS["view"])
    fake._views[user["id"]] = view
    return {"view": {"id": f"V{next(fake._seq):08d}", "team_id": fake.team_id, "app_id": "A0FLOWBOT",
                     "bot_id": fake.bot_id, **view}}


def _views_open(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    view = params.get("view")
    if not params.get("trigger_id"):
        raise SlackApiError("invalid_trigger_id")
    if not isinstance(view, dict):
        raise SlackApiError("invalid_arguments")
    check_blocks(view.get("blocks", []), limit=MAX_BLOCKS["view"])
    return {"view": {"id": f"V{next(fake._seq):08d}", "team_id": fake.team_id, **view}}


def _channel_payload(fake: FakeSlack, channel: Channel) -> dict[str, Any]:
    return {"id": channel.id, "name": channel.name, "is_channel": not channel.private,
            "is_group": channel.private, "is_im": channel.id.startswith("D"), "is_private": channel.private,
            "is_archived": False, "is_member": fake._bot_in(channel), "num_members": len(channel.members)}


def _conversations_info(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    return {"channel": _channel_payload(fake, fake._channel(params.get("channel")))}


def _conversations_members(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    channel = fake._channel(params.get("channel"))
    if channel.private and not fake._bot_in(channel):
        raise SlackApiError("channel_not_found")
    limit = int(params.get("limit") or 100)
    start = int(params.get("cursor") or 0)
    page = channel.members[start:start + limit]
    after = start + limit
    return {"members": page,
            "response_metadata": {"next_cursor": str(after) if after < len(channel.members) else ""}}


def _conversations_join(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    channel = fake._channel(params.get("channel"))
    if channel.private:
        raise SlackApiError("method_not_supported_for_channel_type")
    if fake._bot_channels is not None:
        fake._bot_channels.add(channel.id)
    return {"channel": _channel_payload(fake, channel)}


def _conversations_open(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    users = params.get("users")
    ids = users if isinstance(users, list) else [u for u in str(users or "").split(",") if u]
    if not ids and not params.get("channel"):
        raise SlackApiError("users_list_not_supplied")
    for user_id in ids:
        fake._user(user_id)
    channel_id = params.get("channel") or (dm_id(ids[0]) if len(ids) == 1 else
                                            "G" + "".join(sorted(u.lstrip("UW") for u in ids))[:10].upper())
    already = channel_id in fake._opened
    fake._opened.add(channel_id)
    return {"channel": {"id": channel_id}, "no_op": already, "already_open": already}


_HISTORY_SCOPES = {"C": "channels:history", "G": "groups:history", "D": "im:history"}


def _conversations_history(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    """Messages newest first, ``limit`` per page (at most 999, default 100), between ``oldest``
    and ``latest``, paged by ``response_metadata.next_cursor``; ``metadata`` only with
    ``include_all_metadata``. Needs the history scope of the conversation's kind."""
    channel_id = str(params.get("channel") or "")
    if not channel_id:
        raise SlackApiError("channel_not_found")
    is_dm = channel_id.startswith("D")
    needed = _HISTORY_SCOPES.get(channel_id[:1], "channels:history")
    if needed not in fake._scopes:
        raise MissingScope(needed, fake._scopes)
    if not is_dm:
        channel = fake._channel(channel_id)
        if not fake._bot_in(channel):
            raise SlackApiError("not_in_channel")
    elif not any(m.conversation == channel_id for m in fake._messages) and channel_id not in fake._opened:
        raise SlackApiError("channel_not_found")
    try:
        limit = min(max(int(params.get("limit") or 100), 1), 999)
        oldest = float(params.get("oldest") or 0)
        latest = float(params.get("latest") or 9e12)
        start = int(params.get("cursor") or 0)
    except ValueError:
        raise SlackApiError("invalid_arguments") from None
    inclusive = str(params.get("inclusive") or "").lower() in ("1", "true")
    with_metadata = str(params.get("include_all_metadata") or "").lower() in ("1", "true")

    def within(ts: float) -> bool:
        return (oldest <= ts <= latest) if inclusive else (oldest < ts < latest)

    found = [m for m in reversed(fake._messages)
             if m.conversation == channel_id and m.user is None and m.thread_ts in (None, m.ts)
             and within(float(m.ts))]
    page = found[start:start + limit]
    more = start + limit < len(found)
    return {"messages": [_message_payload(fake, m, with_metadata=with_metadata) for m in page],
            "has_more": more, "pin_count": 0,
            "response_metadata": {"next_cursor": str(start + limit) if more else ""}}


class MissingScope(SlackApiError):
    """``missing_scope``, with what was ``needed`` and what the token ``provided``, as Slack says."""

    def __init__(self, needed: str, provided: tuple[str, ...]) -> None:
        super().__init__("missing_scope")
        self.extra = {"needed": needed, "provided": ",".join(provided)}


def _users_info(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    return {"user": fake._user(params.get("user"))}


def _users_lookup_by_email(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    email = str(params.get("email") or "").lower()
    for user in fake._users.values():
        if str(user["profile"].get("email") or "").lower() == email and email:
            return {"user": user}
    raise SlackApiError("users_not_found")


def _get_upload_url(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    if not params.get("filename"):
        raise SlackApiError("invalid_arguments")
    try:
        length = int(params.get("length") or 0)
    except ValueError:
        raise SlackApiError("invalid_arguments") from None
    if length <= 0:
        raise SlackApiError("invalid_arguments")
    file_id = f"F{next(fake._seq):08d}"
    fake._uploads[file_id] = None
    return {"upload_url": f"{fake.url}/upload/v1/{file_id}", "file_id": file_id}


def _complete_upload(fake: FakeSlack, params: dict[str, Any]) -> dict[str, Any]:
    files = params.get("files")
    if not isinstance(files, list) or not files:
        raise SlackApiError("invalid_arguments")
    channel_id = params.get("channel_id") or params.get("channels")
    if channel_id:
        channel = fake._channel(str(channel_id).split(",")[0])
        if not fake._bot_in(channel):
            raise SlackApiError("not_in_channel")
    answered = []
    for item in files:
        file_id = item.get("id") if isinstance(item, dict) else None
        if file_id not in fake._uploads or fake._uploads[file_id] is None:
            raise SlackApiError("file_not_found")
        title = item.get("title") or file_id
        record = {"id": file_id, "title": title, "channel": channel_id, "content": fake._uploads[file_id],
                  "initial_comment": params.get("initial_comment"), "thread_ts": params.get("thread_ts")}
        fake._files.append(record)
        answered.append({"id": file_id, "title": title, "name": title,
                         "permalink": f"https://fake-workspace.slack.com/files/{file_id}"})
    return {"files": answered}


METHODS = {
    "api.test": lambda fake, params: {"args": params},
    "auth.test": _auth_test,
    "apps.permissions.info": _apps_permissions_info,
    "chat.postMessage": _post_message,
    "chat.postEphemeral": _post_ephemeral,
    "chat.update": _update,
    "chat.delete": _delete,
    "chat.getPermalink": _get_permalink,
    "views.publish": _views_publish,
    "views.open": _views_open,
    "conversations.info": _conversations_info,
    "conversations.members": _conversations_members,
    "conversations.join": _conversations_join,
    "conversations.open": _conversations_open,
    "conversations.history": _conversations_history,
    "users.info": _users_info,
    "users.lookupByEmail": _users_lookup_by_email,
    "files.getUploadURLExternal": _get_upload_url,
    "files.completeUploadExternal": _complete_upload,
}
PUBLIC_METHODS = frozenset({"api.test"})
