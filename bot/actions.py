"""Generic interactive actions: link buttons (Slack still sends them; they must be acknowledged).

Alert buttons (snooze, acknowledge) live in ``bot.alert_actions``; its ``register`` is called
by :func:`bot.app.create_app` when that module exists.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slack_bolt import App

    from bot.app import BotDeps

LINK_ACTIONS = re.compile(r"^flow_link(_.*)?$")  # buttons with a url: nothing to do but ack


def register(app: App, deps: BotDeps) -> None:
    """Acknowledge link buttons so Slack shows no warning beside them."""

    def on_link(ack: Callable[[], None]) -> None:
        ack()

    app.action(LINK_ACTIONS)(on_link)
