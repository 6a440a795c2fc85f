"""Flowbot's data side: collecting, storing, computing and deciding. Never imports Slack."""
