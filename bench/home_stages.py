"""Where an App Home open's time goes inside ``flowbot web``: stamps for ``bench/home_latency.py --stages``.

:func:`install` runs in the server's master before gunicorn forks (the bench's prelude), and
wraps, without changing what they do: ``bot.home.publish_home`` (started by Bolt's lazy
listener) and ``bot.home.home_json`` (by the fast lane's builders), ``bot.home.home_view`` (the view is built) and ``WebClient.views_publish`` (the call
to Slack starts). Each stamp is a line ``user stage time.monotonic()`` appended to ``path`` (one
clock for every process on Linux, so the bench lines them up with its own and the fake
Slack's). Kept apart from the bench's module so the server imports nothing heavy for it.
"""

from __future__ import annotations

import functools
import time
from typing import Any

STAGES = ("listener", "built", "publish")


def install(path: str) -> None:
    import bot.home as home
    from slack_sdk.web.client import WebClient

    out = open(path, "a", buffering=1)  # for the process's life; lines < PIPE_BUF

    def stamp(user: Any, stage: str) -> None:
        out.write(f"{user} {stage} {time.monotonic():.6f}\n")

    publish_home, home_json = home.publish_home, home.home_json
    home_view, views_publish = home.home_view, WebClient.views_publish

    @functools.wraps(publish_home)
    def traced_publish_home(client: Any, deps: Any, user_id: str) -> None:
        stamp(user_id, "listener")
        publish_home(client, deps, user_id)

    @functools.wraps(home_json)
    def traced_home_json(deps: Any, user_id: str) -> str:  # the fast lane's builders start here
        stamp(user_id, "listener")
        return home_json(deps, user_id)

    @functools.wraps(home_view)
    def traced_home_view(deps: Any, user_id: str) -> Any:
        view = home_view(deps, user_id)
        stamp(user_id, "built")
        return view

    @functools.wraps(views_publish)
    def traced_views_publish(self: Any, **kwargs: Any) -> Any:
        stamp(kwargs.get("user_id"), "publish")
        return views_publish(self, **kwargs)

    home.publish_home = traced_publish_home
    home.home_json = traced_home_json
    home.home_view = traced_home_view
    WebClient.views_publish = traced_views_publish  # type: ignore[method-assign]
