"""Check a REST payload against GitHub's published response schema for its endpoint.

``github_rest.json`` holds the success-response schemas of the endpoints the sandbox serves
(regenerate with ``extract.py``), plus ``basic-error`` for 4xx bodies::

    from tests.spec.validate import validate_response
    validate_response("GET", "/repos/{owner}/{repo}/pulls", 200, body)  # raises AssertionError
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SPEC_PATH = Path(__file__).with_name("github_rest.json")


@lru_cache(maxsize=1)
def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return spec


def endpoints() -> list[str]:
    """``"METHOD /path/{template} STATUS"`` keys of every vendored response schema."""
    return sorted(_spec()["endpoints"])


@cache
def _validator(method: str, path_template: str, status: int) -> Draft202012Validator:
    spec = _spec()
    if status >= 400:
        schema: dict[str, Any] = {"$ref": "#/components/schemas/basic-error"}
    else:
        key = f"{method.upper()} {path_template} {status}"
        if key not in spec["endpoints"]:
            raise KeyError(f"no vendored schema for {key}; add it to tests/spec/extract.py")
        schema = dict(spec["endpoints"][key])
    schema["components"] = spec["components"]
    return Draft202012Validator(schema)


def errors(method: str, path_template: str, status: int, body: Any) -> list[str]:
    """Every way ``body`` breaks the schema, as ``path.to.field: message`` lines."""
    found = _validator(method, path_template, status).iter_errors(body)
    lines = []
    for err in sorted(found, key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(map(str, err.absolute_path)) or "(body)"
        detail = err.message if len(err.message) < 300 else err.message[:300] + "..."
        if err.context:  # anyOf/oneOf: say what the closest branch missed
            best = min(err.context, key=lambda e: len(list(e.absolute_path)) * -1)
            detail += f" [closest: {'.'.join(map(str, best.absolute_path))}: {best.message[:200]}]"
        lines.append(f"{where}: {detail}")
    return lines


def validate_response(method: str, path_template: str, status: int, body: Any) -> None:
    """Raise AssertionError listing every schema violation of ``body``."""
    problems = errors(method, path_template, status, body)
    if problems:
        head = f"{method} {path_template} {status}: {len(problems)} schema violation(s)"
        raise AssertionError("\n".join([head, *problems[:20]]))
