"""The one-screen summary ``flowbot check-config`` prints of what it understood."""

from __future__ import annotations

from jobs.settings import Settings


def settings_summary(settings: Settings) -> str:
    """Plain text: where data comes from, each team, schedules, thresholds, credentials."""
    g, s, sec = settings.github, settings.schedules, settings.secrets
    repos = "every non-archived repository" if g.all_repositories else f"{len(settings.repositories)} repositories"
    lines = [
        "Configuration OK.",
        (f"GitHub: {g.organisation} at {g.base_url}, {repos}; keep {g.retention_days} days;"
        f" a cycle may spend {g.budget_share:.0%} of the remaining rate limit."),
        (f"Sampling every {s.sample_interval_minutes} min (jitter {s.jitter_seconds} s);"
        f" digests {s.digest_day} {s.digest_time} team-local unless a team overrides it."),
        (f"Metrics: {settings.metrics.window_days}-day window, {settings.metrics.recovery_minutes:g} min"
        f" focus cost per interruption, {settings.metrics.required_approvals} approval(s)."),
        f"Teams ({len(settings.teams)}):",
    ]
    for name, team in settings.teams.items():
        day, at = settings.digest_schedule(name)
        holidays = team.holiday_country or "no holiday calendar"
        lines.append(
            f"  {name}: {len(team.members)} members, {len(team.repositories)} repos"
            f" ({', '.join(settings.full_repo(r) for r in team.repositories)}),"
            f" channel {team.channel}, {len(team.leads)} lead(s);"
            f" {team.timezone} {'/'.join(team.working_days)} {team.working_hours}, {holidays};"
            f" digest {day} {at:%H:%M}"
        )
        overrides = ", ".join(sorted(team.thresholds.model_dump(exclude_none=True)))
        if overrides:
            lines.append(f"    threshold overrides: {overrides}")
    levels = ", ".join(
        f"{rule} {t.warn:g}/{t.critical:g}" for rule, t in settings.alerts.thresholds
    )
    lines.append(f"Alerts (warn/critical): {levels}; cooldown {settings.alerts.cooldown_hours:g} h.")
    github_auth = (
        "GitHub App" if sec.github_app_id else "token" if sec.github_token else "MISSING (set GITHUB_TOKEN)"
    )
    slack = "set" if sec.slack_bot_token else "missing (set SLACK_BOT_TOKEN)"
    mode = "Socket Mode" if sec.slack_app_token else "HTTP only" if sec.slack_signing_secret else "none"
    redis = "REDIS_URL" if sec.redis_url else "embedded Redis"
    lines.append(f"Credentials: GitHub {github_auth}; Slack bot token {slack}; Slack mode {mode}; {redis}.")
    hooks = len(sec.github_webhook_secrets)
    lines.append(f"GitHub webhooks: on, /github/webhook on `flowbot web` ({hooks} secret(s))" if hooks
                 else "GitHub webhooks: off (set GITHUB_WEBHOOK_SECRET to receive them); changes"
                      " arrive with each sample")
    return "\n".join(lines)
