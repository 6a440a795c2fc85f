"""Flowbot's Slack side: everything a person sees or types."""
