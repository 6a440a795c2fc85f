"""The few named exceptions Flowbot raises. Library code raises these; only the CLI prints."""

from __future__ import annotations


class FlowbotError(Exception):
    """Base of every error Flowbot raises on purpose."""


class ConfigError(FlowbotError):
    """Settings are invalid. ``problems`` holds one ``key.path: what is wrong`` line each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class StoreUnavailable(FlowbotError):
    """Redis could not be reached or answered with an error."""


class GitHubError(FlowbotError):
    """GitHub answered in a way that stops one unit of work (a repository, a request)."""


class PermissionDenied(GitHubError):
    """A ``401``/``403``/``404`` that is about access, not rate limits. ``missing`` names the
    scope or permission the credentials lack (None when that is not the cause, or unknown);
    ``status`` is GitHub's HTTP status when there was one."""

    def __init__(self, message: str, *, missing: str | None = None, status: int | None = None) -> None:
        self.missing = missing
        self.status = status
        super().__init__(message)


class BudgetExhausted(GitHubError):
    """This cycle's share of the rate-limit budget is spent; resume next cycle."""


class BadAnswer(GitHubError):
    """GitHub answered 2xx with a body that is not what was asked: not JSON (truncated, an
    HTML page), the wrong shape (a list for an object, fields missing), or a GraphQL answer
    without the data the query names. Retried; after the retries, that repository fails for
    this cycle and nothing stored is touched."""


class Deferred(GitHubError):
    """GitHub asked to wait longer than ``github.max_wait_seconds`` (a ``Retry-After`` or a
    reset beyond the cap): the repository is deferred to the next cycle instead of stalling
    this one. ``seconds`` is what GitHub asked for."""

    def __init__(self, message: str, *, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(message)


class DeliveryError(FlowbotError):
    """Slack refused a post in a way a person must fix (channel, auth, scopes)."""

    def __init__(self, message: str, *, code: str, fix: str) -> None:
        self.code = code
        self.fix = fix
        super().__init__(message)


class NotBuiltYet(FlowbotError):
    """A CLI command that exists in the plan but not yet in the code."""


class SchemaMismatch(StoreUnavailable):
    """Redis answered, but the schema key under Flowbot's prefix is not one this version can
    use (another version's data, or something else written there): nothing is read or written.
    A subclass of StoreUnavailable, so every surface that copes with Redis being down copes."""
