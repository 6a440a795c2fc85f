"""TOML plus the environment into validated :class:`jobs.settings.Settings`.

Every problem is reported, each on its own line as ``key.path: what is wrong (got X)``.
Secrets are read from the environment only; a secret found in the file is an error.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from jobs.errors import ConfigError
from jobs.settings import Secrets, Settings, token_variable

ENV_SECRETS: dict[str, str] = {
    "SLACK_BOT_TOKEN": "slack_bot_token",
    "SLACK_SIGNING_SECRET": "slack_signing_secret",
    "SLACK_APP_TOKEN": "slack_app_token",
    "GITHUB_TOKEN": "github_token",
    "GITHUB_APP_ID": "github_app_id",
    "GITHUB_APP_PRIVATE_KEY": "github_app_private_key",
    "GITHUB_APP_INSTALLATION_ID": "github_app_installation_id",
    "GITHUB_WEBHOOK_SECRET": "github_webhook_secrets",  # (several: see secrets_from_env)
    "REDIS_URL": "redis_url",
    "SLACK_API_URL": "slack_api_url",
}
WEBHOOK_SECRET = "GITHUB_WEBHOOK_SECRET"  # and GITHUB_WEBHOOK_SECRET_<NAME>: one per hook secret
DEFAULT_PATH = "config.toml"


def config_path(path: str | Path | None, env: Mapping[str, str]) -> Path:
    """The file to read: the argument, else ``FLOWBOT_CONFIG``, else ``./config.toml``."""
    return Path(path or env.get("FLOWBOT_CONFIG") or DEFAULT_PATH)


def load(path: str | Path | None = None, *, env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the configuration file plus secrets from ``env``.

    Raises ConfigError listing every problem with its key path.
    """
    env = os.environ if env is None else env
    file = config_path(path, env)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [f"{file}: no such file; copy config.example.toml to {file} and edit it"]
        ) from None
    except OSError as err:
        raise ConfigError([f"{file}: cannot read it ({err.strerror})"]) from None
    except UnicodeDecodeError as err:
        raise ConfigError([f"{file}: not UTF-8 text (byte {err.start}); save it as UTF-8"]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError([f"{file}: not valid TOML: {err}"]) from None
    return from_mapping(data, env=env, source=str(file), slack_channels=True)


def from_mapping(
    data: Mapping[str, Any], *, env: Mapping[str, str] | None = None, source: str = "config",
    slack_channels: bool = False,
) -> Settings:
    """Validate already-parsed configuration data plus secrets from ``env``.

    ``slack_channels`` also requires each team's ``channel``/``leads_channel`` to be a Slack
    channel ID (:func:`load` does: a config file is the bot's; ``flowbot report`` builds a
    terminal-only config whose teams have no channel). Raises ConfigError listing every problem.
    """
    env = os.environ if env is None else env
    problems, payload = _secrets_in_file(data)
    secrets, secret_problems = secrets_from_env(env)
    problems += secret_problems
    try:
        settings = Settings.model_validate({**payload, "secrets": secrets})
    except ValidationError as err:
        problems += [_describe(e) for e in err.errors()]
        settings = None
    if slack_channels:  # from the raw data, so they are reported beside every other problem
        problems += _channel_problems(payload.get("teams"))
    if settings is not None:
        problems += _cross_checks(settings)
    if problems:
        raise ConfigError(problems)
    assert settings is not None  # for the type checker: problems is empty here
    return settings


def secrets_from_env(env: Mapping[str, str]) -> tuple[Secrets, list[str]]:
    """Secrets from the environment; a GitHub App key may be given as a file path."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for var, field in ENV_SECRETS.items():
        value = env.get(var, "").strip()
        if value:
            values[field] = value
    hooks = tuple(env[v] for v in sorted(env) if (v == WEBHOOK_SECRET or v.startswith(
        f"{WEBHOOK_SECRET}_")) and env[v].strip())  # a secret is used as given, spaces and all
    values.pop("github_webhook_secrets", None)
    if hooks:
        values["github_webhook_secrets"] = hooks
    org_tokens = {var: value.strip() for var, value in env.items()
                  if var.startswith("GITHUB_TOKEN_") and value.strip()}
    if org_tokens:
        values["github_org_tokens"] = org_tokens
    key_path = env.get("GITHUB_APP_PRIVATE_KEY_PATH", "").strip()
    if key_path and "github_app_private_key" not in values:
        try:
            values["github_app_private_key"] = Path(key_path).read_text(encoding="utf-8")
        except OSError as err:
            problems.append(f"GITHUB_APP_PRIVATE_KEY_PATH: cannot read {key_path} ({err.strerror})")
        except UnicodeDecodeError:  # e.g. a DER key: say so without echoing any of its bytes
            problems.append(f"GITHUB_APP_PRIVATE_KEY_PATH: {key_path} is not a PEM text file")
    try:
        return Secrets.model_validate(values), problems
    except ValidationError as err:
        for e in err.errors():
            var = next((v for v, f in ENV_SECRETS.items() if f == e["loc"][0]), str(e["loc"][0]))
            problems.append(f"{var}: {e['msg']}")  # never echo the value of a secret
        return Secrets(), problems


_NAMED = (("teams",), ("github", "organisations"))  # tables whose keys are names, not settings
_SECRET_WORDS = re.compile(r"token|secret|passw|private_key|api_?key|credential", re.IGNORECASE)
_SECRET_VALUES = {  # the published shapes of the credentials Flowbot uses
    "SLACK_BOT_TOKEN": re.compile(r"^xox[bp]-"),
    "SLACK_APP_TOKEN": re.compile(r"^xapp-"),
    "GITHUB_TOKEN": re.compile(r"^(gh[pousr]_|github_pat_)"),
    "GITHUB_APP_PRIVATE_KEY": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}


def _secrets_in_file(data: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Every key in the file that holds a secret, and the data without those keys.

    A key "holds a secret" when its name looks like one (token, secret, password, private key,
    API key) or names an environment-only variable, alone (``GITHUB_TOKEN``) or joined to its
    section (``[slack] bot_token``, ``[github] token``); a whole ``[secrets]`` table too. Each is
    reported with its key path and the variable to set instead, never with its value; removing
    them keeps them from being reported a second time as unknown settings.
    """
    problems: list[str] = []

    def walk(node: Any, path: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [walk(item, (*path, str(i))) for i, item in enumerate(node)]
        if not isinstance(node, Mapping):
            return node
        kept: dict[str, Any] = {}
        for key, value in node.items():
            here = (*path, str(key))
            if path == () and key == "secrets":
                inner = value.keys() if isinstance(value, Mapping) and value else [""]
                for name in inner:
                    problems.append(_secret_problem(("secrets", name) if name else ("secrets",)))
            elif path not in _NAMED and _looks_secret(here):  # a name is not a setting
                problems.append(_secret_problem(here))
            elif isinstance(value, str) and (var := _secret_shape(value)):
                problems.append(f"{'.'.join(here)}: this looks like a secret; secrets are read"
                                f" from the environment only: set {var} there and delete it here")
            else:
                inner = walk(value, here)
                if not (isinstance(value, Mapping) and value and not inner):  # held only secrets
                    kept[key] = inner
        return kept

    return problems, walk(data, ())


def _env_var_for(path: tuple[str, ...]) -> str | None:
    """The environment variable a secret at ``path`` belongs in, when one is recognisable."""
    key = path[-1].upper()
    candidates = [key, "_".join(path).upper()]
    if len(path) > 1:
        candidates.append(f"{path[-2].upper()}_{key}")
    for var in candidates:
        if var in ENV_SECRETS:
            return var
    for prefix in ("SLACK_", "GITHUB_"):
        if f"{prefix}{key}" in ENV_SECRETS and any(p.upper().startswith(prefix[:-1]) for p in path):
            return f"{prefix}{key}"
    return None


def _secret_shape(value: str) -> str | None:
    """The variable whose credential ``value`` looks like (a token's published prefix)."""
    return next((var for var, shape in _SECRET_VALUES.items() if shape.search(value.strip())), None)


def _looks_secret(path: tuple[str, ...]) -> bool:
    return bool(_SECRET_WORDS.search(path[-1])) or _env_var_for(path) is not None


def _secret_problem(path: tuple[str, ...]) -> str:
    var = _env_var_for(path)
    where = ".".join(path)
    if var == "SLACK_API_URL":  # not a secret, but also read from the environment only
        return f"{where}: read from the environment only: set the environment variable {var} instead and delete this key"
    if var is not None:
        return f"{where}: secrets are read from the environment only: set the environment variable {var} instead and delete this key"
    names = ", ".join(v for v in ENV_SECRETS if v not in ("SLACK_API_URL",))
    return (f"{where}: secrets are read from the environment only; delete this key"
            f" (Flowbot reads {names})")


def _describe(error: Any) -> str:
    path = ".".join(str(p) for p in error["loc"]) or "(top level)"
    kind, msg, got = error["type"], error["msg"], error.get("input")
    if kind == "extra_forbidden":
        return f"{path}: unknown setting (a typo? see config.example.toml)"
    if kind == "missing":
        return f"{path}: required setting is missing"
    msg = msg.removeprefix("Value error, ")
    if "(got " in msg or kind.startswith("value_error"):
        return f"{path}: {msg}"
    return f"{path}: {msg} (got {got!r})"


SLACK_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]+$")  # public (C...) or private (G...) channel
FIND_CHANNEL_ID = "in Slack, open the channel's details (click its name): the ID is at the bottom of About"


def _channel_problems(teams: object) -> list[str]:
    """Each team channel given that is not a Slack channel ID (a name like ``#payments``
    cannot be posted to by the API), saying where to find the ID. Other shapes are left to
    the model's own validation."""
    problems = []
    for name, team in (teams.items() if isinstance(teams, Mapping) else ()):
        for key in ("channel", "leads_channel"):
            value = team.get(key) if isinstance(team, Mapping) else None
            if isinstance(value, str) and not SLACK_CHANNEL_ID.match(value):
                problems.append(f"teams.{name}.{key}: expected a Slack channel ID like C012AB3CD,"
                                f" not a name (got {value!r}); {FIND_CHANNEL_ID}")
    return problems


def _cross_checks(settings: Settings) -> list[str]:
    problems: list[str] = []
    owners: dict[str, str] = {}
    for name, team in settings.teams.items():
        seen: set[str] = set()
        for i, member in enumerate(team.members):
            login = member.github.lower()
            if login in seen:
                problems.append(f"teams.{name}.members.{i}.github: {member.github!r} listed twice")
            seen.add(login)
        for i, repo in enumerate(team.repositories):
            full = settings.full_repo(repo)
            if full in owners and owners[full] == name:
                problems.append(f"teams.{name}.repositories.{i}: {repo!r} listed twice")
            owners.setdefault(full, name)
    s = settings.secrets
    main = settings.github.organisation
    for org, other in settings.github.organisations.items():
        where = f"github.organisations.{org}"
        if org.lower() == main.lower():
            problems.append(f"{where}: {org!r} is the main organisation (github.organisation);"
                            " list only the others here")
        elif s.github_app_id and other.installation_id is None \
                and token_variable(org) not in s.github_org_tokens:
            problems.append(
                f"{where}.installation_id: required with a GitHub App (GITHUB_APP_ID is set):"
                f" the App's installation on {org} (the number at the end of the installation's"
                f" settings page URL), or set {token_variable(org)} to read it with a token")
    if s.github_app_id and not s.github_app_private_key:
        problems.append(
            "GITHUB_APP_PRIVATE_KEY: GITHUB_APP_ID is set, so the App's private key is needed"
            " (or GITHUB_APP_PRIVATE_KEY_PATH)"
        )
    return problems
