"""Fakes of outside services, served over HTTP on 127.0.0.1 port 0 for the real clients.

``slack_api.FakeSlack`` answers the Slack Web API (slack_sdk ``WebClient(base_url=...)``).
``hook_receiver.HookReceiver`` is a webhook target that records what the sandbox delivers.
"""
