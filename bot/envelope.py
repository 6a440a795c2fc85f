"""An Events API body, decoded for the fast lane's checks without the Home view it carries.

Every ``app_home_opened`` event Slack sends carries the Home view the user has open (``event.
view``, 15 KB and more with 30 teams); decoding it into Python objects was the largest part of
the fast lane's work on the event loop, and nothing reads it. :func:`envelope` decodes the body
into what is read (``bot.fastlane._home_opened``: the type, the event's type, tab and user, the
app) and what Bolt's ``extract_team_id`` and ``extract_enterprise_id`` read, which the workspace
guard needs, and passes over the rest of the bytes without building objects:

- top level: ``type``, ``api_app_id``, ``team_id``, ``team``, ``enterprise_id``,
  ``enterprise``, ``authorizations``, ``view``, ``user``, ``event``, each decoded whole;
- in ``event``: the same keys plus ``tab``, each decoded whole but ``view``, of which only
  ``app_installed_team_id`` and ``team_id`` are kept (all that Bolt's extractors read of a view).

A key absent from the body is absent from the dict (Bolt asks ``"team_id" in payload``). A
body this cannot decode so (not an object; ``event`` not an object) is decoded whole, as
before.
"""

from __future__ import annotations

from typing import Any

import msgspec

_ABSENT: Any = msgspec.UNSET


class _ViewIds(msgspec.Struct):
    app_installed_team_id: Any = _ABSENT
    team_id: Any = _ABSENT


class _Ids(msgspec.Struct):
    """What Bolt's extractors read at either level (the body, and the event inside)."""

    type: Any = _ABSENT
    team_id: Any = _ABSENT
    team: Any = _ABSENT
    enterprise_id: Any = _ABSENT
    enterprise: Any = _ABSENT
    authorizations: Any = _ABSENT
    user: Any = _ABSENT


class _Event(_Ids):
    tab: Any = _ABSENT
    view: _ViewIds | msgspec.UnsetType | None = _ABSENT
    event: Any = _ABSENT


class _Envelope(_Ids):
    api_app_id: Any = _ABSENT
    view: Any = _ABSENT
    event: _Event | msgspec.UnsetType | None = _ABSENT


_DECODER = msgspec.json.Decoder(_Envelope)


def envelope(body: bytes) -> dict[str, Any] | None:
    """``body`` as a dict of the keys the fast lane and Bolt's extractors read (module doc);
    None when it is not a JSON object."""
    try:
        decoded = _DECODER.decode(body)
    except msgspec.ValidationError:  # not an object, or ``event`` not one: decoded whole
        return _whole(body)
    except (msgspec.DecodeError, RecursionError):
        return None
    out = _present(decoded)
    if isinstance(decoded.event, _Event):
        event = _present(decoded.event)
        if isinstance(decoded.event.view, _ViewIds):
            event["view"] = _present(decoded.event.view)
        out["event"] = event
    return out


def _present(struct: msgspec.Struct) -> dict[str, Any]:
    return {name: value for name in struct.__struct_fields__
            if (value := getattr(struct, name)) is not msgspec.UNSET}


def _whole(body: bytes) -> dict[str, Any] | None:
    try:
        value = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
