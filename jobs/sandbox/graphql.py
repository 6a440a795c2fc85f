"""GitHub GraphQL for the sandbox: GitHub's published schema, executed over dict resolvers.

The schema (``schema.graphql``, a copy of ``@octokit/graphql-schema``) is built once per
process with ``assume_valid_sdl=True`` (the published SDL fails graphql-core's own schema
checks), and every document is validated against it: a malformed or invalid query gets
GitHub's error shape (``{"errors": [{"message", "locations"}]}``, HTTP 200).

Resolvers are plain dicts; graphql-core's default resolver reads a dict key named like the
field and calls it with ``(info, **args)`` when it is callable; abstract types resolve from the
``__typename`` key. Adding a field is adding a key. Served (as of the request's moment):

- ``rateLimit {cost limit nodeCount remaining resetAt used}``, ``viewer {login ...}``;
- ``repository(owner, name) {id databaseId name nameWithOwner isArchived isPrivate url
  pullRequests(first|last, after|before, states, orderBy {field: CREATED_AT|UPDATED_AT,
  direction}, baseRefName, headRefName, labels) pullRequest(number)}``;
- ``PullRequest {id databaseId number title body url permalink isDraft state closed merged
  createdAt updatedAt closedAt mergedAt headRefOid headRefName baseRefName baseRefOid additions
  deletions changedFiles author labels(...) reviewRequests(...) reviews(..., states)
  commits(first|last ...) timelineItems(first|last, after|before, itemTypes, since, skip)
  repository mergedBy mergeCommit}``, timeline items: ``PullRequestCommit``,
  ``PullRequestReview``, ``ReviewRequestedEvent``, ``ReviewRequestRemovedEvent``,
  ``ReadyForReviewEvent``, ``ConvertToDraftEvent``, ``HeadRefForcePushedEvent``,
  ``MergedEvent``, ``ClosedEvent``, ``ReopenedEvent``;
- ``Commit {oid abbreviatedOid message messageHeadline messageBody authoredDate committedDate
  pushedDate url author committer checkSuites(first, filterBy) {nodes {id databaseId status
  conclusion createdAt updatedAt app workflowRun {id databaseId runNumber event createdAt
  updatedAt url workflow {id databaseId name}} checkRuns(first, filterBy {checkType})
  {nodes {id databaseId name status conclusion startedAt completedAt url detailsUrl}}}}}``;
- actors: ``User``/``Bot`` (a bot's login without ``[bot]``), ``Team`` for team requests,
  ``null`` for a deleted reviewer; ``node(id)``/``nodes(ids)`` for PullRequest ids;
  ``search(type: ISSUE, query: "repo:o/r is:pr updated:>=DATE")`` for PRs.

Cost follows GitHub's rule: each connection needs as many requests as its parents' page sizes
multiply to; the sum over 100, rounded, at least 1.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    build_schema,
    parse,
    validate,
    value_from_ast_untyped,
)
from graphql import (
    execute as gql_execute,
)

from jobs.sandbox.resolvers import Root
from jobs.sandbox.routes import Context

Obj = dict[str, Any]
SCHEMA_PATH = Path(__file__).with_name("schema.graphql")


@lru_cache(maxsize=1)
def schema() -> GraphQLSchema:
    """GitHub's schema, built once (about half a second)."""
    sdl = SCHEMA_PATH.read_text(encoding="utf-8")
    return build_schema(sdl, assume_valid_sdl=True, assume_valid=True)


@lru_cache(maxsize=256)
def _document(query: str) -> tuple[DocumentNode | None, tuple[GraphQLError, ...]]:
    try:
        doc = parse(query)
    except GraphQLError as err:
        return None, (err,)
    errors = tuple(validate(schema(), doc))
    return (None if errors else doc), errors


def check(query: str) -> list[str]:
    """Validation messages for a document against GitHub's schema (empty when valid)."""
    return [e.message for e in _document(query)[1]]


def cost(query: str, variables: dict[str, Any] | None = None) -> int:
    """GitHub's point cost of a document: requests per connection summed, over 100, >= 1."""
    doc, _errors = _document(query)
    if doc is None:
        return 1
    return _points(doc, variables or {})[0]


def execute(ctx: Context, query: str, variables: dict[str, Any] | None, *, rate: Any,
            cost: int) -> Obj:
    """Run a document; returns GitHub's response body (``data`` and/or ``errors``)."""
    doc, errors = _document(query)
    if doc is None:
        return {"errors": [_error(e) for e in errors]}
    nodes = _points(doc, variables or {})[1]
    root = Root(ctx, rate, cost, nodes).obj()
    result = gql_execute(schema(), doc, root_value=root, variable_values=variables or {})
    if not isinstance(result, ExecutionResult):  # only async resolvers return awaitables
        raise TypeError("the sandbox's resolvers are synchronous")
    out: Obj = {}
    if result.errors:
        out["errors"] = [_error(e) for e in result.errors]
    out["data"] = result.data
    return out


def _error(err: GraphQLError) -> Obj:
    out: Obj = {"message": err.message}
    if err.locations:
        out["locations"] = [{"line": loc.line, "column": loc.column} for loc in err.locations]
    if err.path:
        out["path"] = list(err.path)
    if err.extensions:  # GitHub puts the error type (NOT_FOUND, ...) at the top level
        out.update(err.extensions)
    return out


# ---------------------------------------------------------------------------------- cost


def _points(doc: DocumentNode, variables: dict[str, Any]) -> tuple[int, int]:
    frags = {d.name.value: d for d in doc.definitions if isinstance(d, FragmentDefinitionNode)}
    requests = 0
    nodes = 0

    def walk(sel: SelectionSetNode | None, multiplier: int) -> None:
        nonlocal requests, nodes
        if sel is None:
            return
        for s in sel.selections:
            if isinstance(s, FieldNode):
                size = _page_size(s, variables)
                if size is not None:
                    requests += multiplier
                    nodes += multiplier * size
                    walk(s.selection_set, multiplier * size)
                else:
                    walk(s.selection_set, multiplier)
            elif isinstance(s, InlineFragmentNode):
                walk(s.selection_set, multiplier)
            elif isinstance(s, FragmentSpreadNode) and s.name.value in frags:
                walk(frags[s.name.value].selection_set, multiplier)

    for d in doc.definitions:
        if isinstance(d, OperationDefinitionNode):
            walk(d.selection_set, 1)
    return max(1, round(requests / 100)), nodes


def _page_size(field: FieldNode, variables: dict[str, Any]) -> int | None:
    for arg in field.arguments or ():
        if arg.name.value in ("first", "last"):
            value = value_from_ast_untyped(arg.value, variables)
            return int(value) if isinstance(value, int) else 100
    return None
