"""Who may change what, and from where: the one permission rule and the workspace guard.

Reading is open to everyone in the installed workspace: any `/flow` answer, the App Home,
`share` to post an answer in a channel. Changing a team's alerting (snoozing or acknowledging
one of its alerts, `/flow set` on its thresholds) is for the team's **leads**; a team that lists
no leads is changed by its **members** (those with a Slack ID in config). The rule is one
function, :func:`refusal`, called by ``bot.alert_actions`` and ``bot.commands``.

Why members, for a team without leads: its alerts then go to a channel (its leads channel,
else its own: ``jobs.alert_rules.recipients_for``), where the buttons are; the people reading them are the
team. "Nobody" would leave buttons that never work and a team that cannot tune its own
alerting; "anyone" would let a user of another team, or of no team, silence it. Config already
says who the members are, so the rule needs no new setting.

Requests from another workspace, or naming another app, are refused before any listener runs
(:class:`WorkspaceGuard`, registered like a listener module): the installed workspace is the
one the bot token belongs to (Bolt's ``auth.test``), and the app is the one whose ``api_app_id``
the first request from that workspace carried. A signed request can only come from this app
(the signing secret is per app), so the app check is a second lock; the workspace check is what
stops the app, once installed elsewhere, from answering there with this workspace's data.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt.middleware import Middleware
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse

from bot.blocks import MAX_NAME, escape
from jobs.settings import Settings

if TYPE_CHECKING:
    from slack_bolt import App

    from bot.app import BotDeps

log = logging.getLogger(__name__)

SNOOZE = "snooze or acknowledge its alerts"
SET = "change its thresholds"
OTHER_WORKSPACE = ("Flowbot answers only in the workspace it is installed in; this request came "
                   "from another one, so nothing was read or changed.")


def deciders(settings: Settings, team: str) -> tuple[str, ...]:
    """The Slack user IDs who may change ``team``'s alerting: its leads, or, when it lists
    none, its members with a Slack ID. Empty for an unknown team."""
    t = settings.teams.get(team)
    if t is None:
        return ()
    return t.leads or tuple(m.slack for m in t.members if m.slack)


def refusal(settings: Settings, team: str, user_id: str | None, *, action: str) -> str | None:
    """Why ``user_id`` may not ``action`` for ``team`` (escaped mrkdwn), or None when they may.

    The one permission rule for snoozing, acknowledging and `/flow set` (see the module doc).
    """
    if team not in settings.teams:
        return f"Flowbot does not know the team `{escape(team, MAX_NAME)}`; nothing was changed."
    allowed = deciders(settings, team)
    if user_id and user_id in allowed:
        return None
    who = "leads" if settings.teams[team].leads else "members"
    if not allowed:
        return (f"Nobody can {action} for *{escape(team)}* yet: it lists no leads and no member has a "
                f"Slack ID. Add `leads` (or members' `slack` IDs) in config.toml.")
    return f"Sorry, only the {who} of *{escape(team)}* can {action}. `/flow thresholds {escape(team)}` shows the levels."


class Workspace:
    """Where requests must come from: the installed workspace (``auth.test``'s answer, once
    Slack gave it) and the app (pinned by the first request that names one). Thread-safe;
    one per process (``BotDeps.workspace``), shared by :class:`WorkspaceGuard` in Bolt and by
    the fast lane (``bot.fastlane``), so both refuse the same requests."""

    def __init__(self, *, app_id: str | None = None) -> None:
        self._app_id = app_id
        self._installed: dict[str, Any] | None = None
        self._lock = threading.Lock()

    @property
    def installed(self) -> dict[str, Any] | None:
        """``auth.test``'s answer for the bot token, or None while Slack has not given it."""
        return self._installed

    def remember(self, identity: dict[str, Any]) -> None:
        """Record ``auth.test``'s answer (``bot.app.BotIdentity`` calls this)."""
        self._installed = identity

    def problem(self, *, installed_team: str | None, installed_enterprise: str | None,
                asked_team: str | None, asked_enterprise: str | None, app_id: object) -> str | None:
        """Why a request from ``asked_team``/``asked_enterprise`` naming ``app_id`` is refused
        here, or None when it is not (an unknown installation lets it through)."""
        if installed_team and asked_team and asked_team != installed_team:
            return f"from workspace {asked_team!r}, installed in {installed_team!r}"
        if installed_enterprise and asked_enterprise and asked_enterprise != installed_enterprise:
            return f"from organisation {asked_enterprise!r}, installed in {installed_enterprise!r}"
        if not isinstance(app_id, str) or not app_id:
            return None
        with self._lock:
            if self._app_id is None:
                self._app_id = app_id
        if app_id != self._app_id:
            return f"for app {app_id!r}, this is {self._app_id!r}"
        return None


class WorkspaceGuard(Middleware):
    """Refuses requests from a workspace other than the installed one, or for another app.

    Runs after Bolt's authorization, whose ``auth.test`` result names the installed workspace.
    The expected app is ``workspace``'s (by default pinned by the first request from the
    installed workspace).
    """

    def __init__(self, workspace: Workspace | None = None) -> None:
        self._workspace = workspace or Workspace()

    def process(self, *, req: BoltRequest, resp: BoltResponse,
                next: Callable[[], BoltResponse]) -> BoltResponse:  # noqa: A002 - Bolt passes it by this name
        problem = self._problem(req)
        if problem is None:
            return next()
        log.warning("refused a request %s (%s)", problem, _kind(req))
        if req.body.get("command"):  # a slash command: tell the person, only them
            return BoltResponse(status=200, body=json.dumps({"response_type": "ephemeral", "text": OTHER_WORKSPACE}),
                                headers={"content-type": "application/json;charset=utf-8"})
        return BoltResponse(status=200, body="")  # events and clicks: acknowledged, nothing done

    def _problem(self, req: BoltRequest) -> str | None:
        installed = req.context.authorize_result
        return self._workspace.problem(
            installed_team=installed.team_id if installed is not None else None,
            installed_enterprise=installed.enterprise_id if installed is not None else None,
            asked_team=req.context.team_id, asked_enterprise=req.context.enterprise_id,
            app_id=req.body.get("api_app_id"))


def register(app: App, deps: BotDeps) -> None:
    """Install the workspace guard in front of every listener."""
    app.use(WorkspaceGuard(deps.workspace))


def _kind(req: BoltRequest) -> str:
    body = req.body
    if body.get("command"):
        return f"command {str(body['command'])[:40]!r}"
    event = body.get("event")
    if isinstance(event, dict):
        return f"event {str(event.get('type'))[:40]!r}"
    return f"type {str(body.get('type'))[:40]!r}"
