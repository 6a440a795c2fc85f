"""Configuration: the example passes, mistakes are reported all at once with key paths."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from bot import config
from jobs.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"


def _example() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text())


def test_example_config_is_valid_and_documents_defaults() -> None:
    """config.example.toml loads as-is and yields the documented defaults."""
    settings = config.load(EXAMPLE, env={})
    assert settings.github.retention_days == 120
    assert settings.metrics.recovery_minutes == 23
    assert settings.thresholds_for("payments")["queue_length"].warn == 8
    assert settings.thresholds_for("payments")["pickup_p50_hours"].warn == 6
    assert settings.repositories == ("acme/payments-api", "acme/ledger")


def test_five_mistakes_are_all_reported_with_key_paths() -> None:
    """One message per problem, each naming the key path."""
    data = _example()
    team = data["teams"]["payments"]
    team["timezone"] = "Europe/Pariss"
    team["working_hours"] = "18:00-09:00"
    team["leads"] = ["alice"]
    data["schedules"]["digest_time"] = "9.30"
    data["github"]["retension_days"] = 30
    with pytest.raises(ConfigError) as caught:
        config.from_mapping(data, env={})
    problems = caught.value.problems
    assert len(problems) == 5, problems
    joined = "\n".join(problems)
    assert "teams.payments.timezone: unknown time zone 'Europe/Pariss'; did you mean 'Europe/Paris'?" in joined
    assert "teams.payments.working_hours:" in joined
    assert "teams.payments.leads:" in joined and "'alice'" in joined
    assert "schedules.digest_time:" in joined
    assert "github.retension_days: unknown setting" in joined


@pytest.mark.parametrize(("typo", "meant"), [
    ("europe/paris", "Europe/Paris"), ("America/New_Yrok", "America/New_York"),
    ("Australia/Sidney", "Australia/Sydney"),
])
def test_a_misspelt_time_zone_suggests_the_nearest_name(typo: str, meant: str) -> None:
    """A time zone typo is answered with the zone the user most likely meant."""
    data = _example()
    data["teams"]["payments"]["timezone"] = typo
    with pytest.raises(ConfigError) as caught:
        config.from_mapping(data, env={})
    assert f"did you mean {meant!r}?" in caught.value.problems[0], caught.value.problems


def test_channels_must_be_slack_channel_ids_and_say_where_to_find_them(tmp_path: Path) -> None:
    """`channel = "#payments"` (a name) is refused, saying how to find the channel's ID."""
    path = tmp_path / "config.toml"
    path.write_text(EXAMPLE.read_text().replace('"C01PAYMENTS"', '"#payments"')
                    .replace('"C01PAYLEADS"', '"payments-leads"')
                    .replace('"Europe/Paris"', '"Europe/Pariss"'))
    with pytest.raises(ConfigError) as caught:
        config.load(path, env={})
    problems = caught.value.problems
    assert len(problems) == 3, problems  # reported together with the time zone's
    problems = [p for p in problems if "time zone" not in p]
    assert problems[0].startswith("teams.payments.channel: expected a Slack channel ID like C012AB3CD")
    assert "'#payments'" in problems[0] and "the ID is at the bottom of About" in problems[0]
    assert problems[1].startswith("teams.payments.leads_channel: expected a Slack channel ID")
    data = _example()
    data["teams"]["payments"]["channel"] = "G01PRIVATE"  # a private channel's ID
    assert config.from_mapping(data, env={}, slack_channels=True).teams["payments"].channel == "G01PRIVATE"


def test_the_sandbox_config_is_valid() -> None:
    """The simulated organisation's config (demo, sandbox tests) passes the same checks."""
    from jobs.sandbox import build_org
    from tests.factories import T0

    org = build_org(end=T0, weeks=1, teams=3, repos_per_team=1)
    settings = config.from_mapping(org.config("http://127.0.0.1:1"), env={}, slack_channels=True)
    assert len(settings.teams) == 3


def test_unknown_alert_rule_and_inverted_levels_are_named() -> None:
    """Threshold mistakes point at the rule's key path."""
    data = _example()
    data["alerts"]["thresholds"]["queue_lenght"] = {"warn": 1, "critical": 2}
    data["alerts"]["thresholds"]["ci_p90_minutes"] = {"warn": 30, "critical": 10}
    with pytest.raises(ConfigError) as caught:
        config.from_mapping(data, env={})
    joined = "\n".join(caught.value.problems)
    assert "alerts.thresholds.queue_lenght: unknown setting" in joined
    assert "alerts.thresholds.ci_p90_minutes: critical (10.0) must be at least warn (30.0)" in joined


def test_secrets_come_from_the_environment_and_never_show() -> None:
    """A token in the file is refused; tokens from the environment are hidden in repr."""
    data = _example()
    data["secrets"] = {"github_token": "ghp_in_file"}
    with pytest.raises(ConfigError) as caught:
        config.from_mapping(data, env={})
    assert caught.value.problems[0].startswith(
        "secrets.github_token: secrets are read from the environment only: set the environment variable GITHUB_TOKEN")
    del data["secrets"]
    settings = config.from_mapping(data, env={"GITHUB_TOKEN": "ghp_example_not_real"})
    assert settings.secrets.github_token is not None
    assert settings.secrets.github_token.get_secret_value() == "ghp_example_not_real"
    assert "ghp_example_not_real" not in repr(settings)


@pytest.mark.parametrize(("where", "var"), [
    (("github", "token"), "GITHUB_TOKEN"),
    (("GITHUB_TOKEN",), "GITHUB_TOKEN"),
    (("slack", "bot_token"), "SLACK_BOT_TOKEN"),
    (("teams", "payments", "slack_bot_token"), "SLACK_BOT_TOKEN"),
    (("slack", "signing_secret"), "SLACK_SIGNING_SECRET"),
    (("secrets", "github_token"), "GITHUB_TOKEN"),
])
def test_a_secret_in_the_file_names_the_variable_to_set(where: tuple[str, ...], var: str) -> None:
    """A token anywhere in the file is called a secret (with its key path and variable), not a typo."""
    data = _example()
    node = data
    for key in where[:-1]:
        node = node.setdefault(key, {})
    node[where[-1]] = "xoxb-in-the-file"
    with pytest.raises(ConfigError) as caught:
        config.from_mapping(data, env={})
    path = ".".join(where)
    assert caught.value.problems == [
        (f"{path}: secrets are read from the environment only:"
        f" set the environment variable {var} instead and delete this key")
    ]
    assert "xoxb-in-the-file" not in str(caught.value)


def test_any_secret_looking_key_or_value_is_refused_without_echoing_it() -> None:
    """A key named like a secret, or a value shaped like a token, is refused as a secret."""
    data = _example()
    data["teams"]["payments"]["api_key"] = "hunter2"
    data["storage"]["path"] = "ghp_notarealtoken"
    with pytest.raises(ConfigError) as caught:
        config.from_mapping(data, env={})
    problems = caught.value.problems
    assert problems[0].startswith("storage.path: this looks like a secret;")
    assert "set GITHUB_TOKEN there" in problems[0]
    assert problems[1].startswith("teams.payments.api_key: secrets are read from the environment only;")
    assert "unknown setting" not in str(caught.value) and "hunter2" not in str(caught.value)


def test_a_holiday_subdivision_the_country_lacks_is_named_at_check_time() -> None:
    """`holiday_subdivision = "BY"` with `FR` fails check-config with its key path and the valid codes."""
    data = _example()
    data["teams"]["payments"]["holiday_subdivision"] = "BY"
    with pytest.raises(ConfigError) as caught:
        config.from_mapping(data, env={})
    [problem] = caught.value.problems
    assert problem.startswith("teams.payments.holiday_subdivision: FR has no subdivision 'BY'; use one of 57,")
    data["teams"]["payments"]["holiday_country"] = "DE"
    assert config.from_mapping(data, env={}).teams["payments"].holiday_subdivision == "BY"


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    """A missing config file names the file and the fix."""
    with pytest.raises(ConfigError) as caught:
        config.load(tmp_path / "nope.toml", env={})
    assert "copy config.example.toml" in caught.value.problems[0]


def test_unreadable_bytes_are_named_not_a_traceback(tmp_path: Path) -> None:
    """A config file or App key file that is not UTF-8 text is a named problem."""
    bad = tmp_path / "config.toml"
    bad.write_bytes(b"\xff\xfe[github]\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        config.load(bad, env={})
    key = tmp_path / "key.der"
    key.write_bytes(b"\x30\x82\xff\xfe")
    _secrets, problems = config.secrets_from_env({"GITHUB_APP_PRIVATE_KEY_PATH": str(key)})
    assert problems == [f"GITHUB_APP_PRIVATE_KEY_PATH: {key} is not a PEM text file"]


def test_check_config_cli_exit_codes_and_no_traceback(tmp_path: Path) -> None:
    """check-config prints a summary (exit 0) or every problem (exit 1), never a traceback."""
    ok = subprocess.run([sys.executable, "-m", "bot.cli", "check-config", str(EXAMPLE)],
                        capture_output=True, text=True, cwd=ROOT)
    assert ok.returncode == 0, ok.stderr
    assert "payments: 3 members" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(EXAMPLE.read_text().replace('"Europe/Paris"', '"Europe/Pariss"'))
    out = subprocess.run([sys.executable, "-m", "bot.cli", "check-config", str(bad)],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1
    assert "teams.payments.timezone: unknown time zone 'Europe/Pariss'" in out.stderr
    assert "Traceback" not in out.stderr


def test_commands_not_built_yet_say_so() -> None:
    """Every planned command is listed; an unbuilt one exits non-zero with a plain message."""
    out = subprocess.run([sys.executable, "-m", "bot.cli", "--help"], capture_output=True,
                         text=True, cwd=ROOT)
    for command in ("run", "web", "worker", "sample", "backfill", "report", "digest", "demo",
                    "check-config", "doctor"):
        assert command in out.stdout


def test_check_config_takes_dash_c_like_every_command() -> None:
    """`flowbot check-config -c FILE` works as `--config` does for every other command."""
    from typer.testing import CliRunner

    from bot.cli import app

    result = CliRunner().invoke(app, ["check-config", "-c", str(EXAMPLE)], env={"FLOWBOT_CONFIG": None})
    assert result.exit_code == 0, result.output
    assert "payments: 3 members" in result.output


def test_help_shows_flags_without_a_value() -> None:
    """`--help` lists flags bare (`--print`, `--help`), never as taking a `<bool>`."""
    from typer.testing import CliRunner

    from bot.cli import app

    for command in ("digest", "report", "check-config", "demo"):
        text = CliRunner().invoke(app, [command, "--help"]).output
        assert "<bool>" not in text, text
        assert "--help " in text
    assert "--print  " in CliRunner().invoke(app, ["digest", "--help"]).output
