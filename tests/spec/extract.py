"""Regenerate ``github_rest.json``: the response schemas of the endpoints the sandbox serves.

Run by hand when the endpoint list or the description changes::

    python tests/spec/extract.py /tmp/octo/octokit-openapi-23.0.2/package/generated/api.github.com.json

It keeps each endpoint's success-response schema and the component schemas they reference
(``$ref`` kept, so the file stays small), and rewrites OpenAPI 3.0's ``nullable: true`` into
JSON Schema (``type: [..., "null"]``) so ``jsonschema`` can check payloads.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ENDPOINTS: tuple[tuple[str, str, str], ...] = (
    ("get", "/user", "200"),
    ("get", "/rate_limit", "200"),
    ("get", "/orgs/{org}/repos", "200"),
    ("get", "/orgs/{org}/teams/{team_slug}/members", "200"),
    ("get", "/repos/{owner}/{repo}", "200"),
    ("get", "/repos/{owner}/{repo}/pulls", "200"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}", "200"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}/reviews", "200"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}/commits", "200"),
    ("get", "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers", "200"),
    ("get", "/repos/{owner}/{repo}/actions/workflows", "200"),
    ("get", "/repos/{owner}/{repo}/issues/{issue_number}", "200"),
    ("get", "/repos/{owner}/{repo}/issues/{issue_number}/events", "200"),
    ("get", "/repos/{owner}/{repo}/issues/{issue_number}/timeline", "200"),
    ("get", "/repos/{owner}/{repo}/commits/{ref}", "200"),
    ("get", "/repos/{owner}/{repo}/commits/{ref}/check-runs", "200"),
    ("get", "/repos/{owner}/{repo}/actions/runs", "200"),
    ("get", "/repos/{owner}/{repo}/actions/runs/{run_id}", "200"),
    ("get", "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}", "200"),
    ("get", "/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}/jobs", "200"),
    ("get", "/repos/{owner}/{repo}/actions/runs/{run_id}/jobs", "200"),
    ("get", "/app/installations", "200"),
    ("get", "/app/installations/{installation_id}", "200"),
    ("post", "/app/installations/{installation_id}/access_tokens", "201"),
)
ERROR = "basic-error"


def main(source: Path, target: Path) -> None:
    """Write ``target`` from the (non-dereferenced) REST description at ``source``."""
    spec = json.loads(source.read_text(encoding="utf-8"))
    schemas = spec["components"]["schemas"]
    endpoints: dict[str, Any] = {}
    for method, path, status in ENDPOINTS:
        response = spec["paths"][path][method]["responses"][status]
        response = _resolve(spec, response)
        endpoints[f"{method.upper()} {path} {status}"] = response["content"]["application/json"]["schema"]
    keep: dict[str, Any] = {}
    todo = [endpoints, {"$ref": f"#/components/schemas/{ERROR}"}]
    while todo:
        node = todo.pop()
        for ref in _refs(node):
            name = ref.rsplit("/", 1)[1]
            if name not in keep:
                keep[name] = schemas[name]
                todo.append(schemas[name])
    out = {"info": f"GitHub REST response schemas, from {source.name} "
                   f"(@octokit/openapi {spec['info'].get('version', '')})",
           "endpoints": _nullable(endpoints), "components": {"schemas": _nullable(keep)}}
    target.write_text(json.dumps(out, sort_keys=True, separators=(",", ":")), encoding="utf-8")


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        parts = node["$ref"].lstrip("#/").split("/")
        for p in parts:
            spec = spec[p]
        node = spec
    return node


def _refs(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.append(node["$ref"])
        for v in node.values():
            found += _refs(v)
    elif isinstance(node, list):
        for v in node:
            found += _refs(v)
    return found


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable`` -> JSON Schema; drop keys jsonschema does not know."""
    if isinstance(node, list):
        return [_nullable(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _nullable(v) for k, v in node.items() if k not in ("example", "examples")}
    if out.pop("nullable", False):
        if "type" in out:
            t = out["type"]
            out["type"] = [*t, "null"] if isinstance(t, list) else [t, "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).with_name("github_rest.json"))
