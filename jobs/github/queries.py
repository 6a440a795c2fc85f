"""The GraphQL documents the sampler sends (validated against GitHub's schema in the tests).

One fragment, ``PullFields``, says everything collected about a PR; the page query asks for a
repository's PRs, newest update first, 100 at a time. ``rateLimit`` rides along in every query so the budget is
read from the answer itself. What the fragment collects is versioned by
:data:`jobs.github.COLLECT_VERSION`: change one, bump the other.
"""

from __future__ import annotations

# Timeline items that start or stop a clock (docs/metrics.md "PR timeline events"). Commits come
# from the ``commits`` connection instead (it also carries authored dates and trailers).
TIMELINE_TYPES: tuple[str, ...] = (
    "READY_FOR_REVIEW_EVENT",
    "CONVERT_TO_DRAFT_EVENT",
    "REVIEW_REQUESTED_EVENT",
    "REVIEW_REQUEST_REMOVED_EVENT",
    "HEAD_REF_FORCE_PUSHED_EVENT",
    "REOPENED_EVENT",
    "CLOSED_EVENT",
    "MERGED_EVENT",
)

PAGE_SIZE = 100  # PRs per page (GitHub's maximum): 10 pages per 1,000 PRs, ~32,000 nodes at
# most (GitHub allows 500,000); a page that keeps failing is asked again at half the size
FIRST_PAGE_INCREMENTAL = 24  # an incremental pass's first page: 1 point instead of 4
INNER_SIZE = 100  # commits, reviews and timeline items per PR

RATE_LIMIT = "rateLimit { cost limit remaining resetAt used }"

_ACTOR = "__typename login"
# who a review request names: a person, a bot, a mannequin, or a team (by slug)
_REQUESTED = (
    "__typename ... on User { login } ... on Bot { login } ... on Mannequin { login }"
    " ... on Team { slug }"
)

PULL_FIELDS = f"""
fragment PullFields on PullRequest {{
  number
  title
  url
  isDraft
  createdAt
  updatedAt
  closedAt
  mergedAt
  headRefOid
  baseRefName
  additions
  deletions
  changedFiles
  author {{ {_ACTOR} }}
  labels(first: 20) {{ nodes {{ name }} }}
  commits(first: {INNER_SIZE}) {{
    totalCount
    nodes {{ commit {{ oid authoredDate committedDate message }} }}
  }}
  reviews(first: {INNER_SIZE}) {{
    nodes {{ author {{ {_ACTOR} }} state submittedAt commit {{ oid }} }}
  }}
  timelineItems(first: {INNER_SIZE}, itemTypes: [{", ".join(TIMELINE_TYPES)}]) {{
    nodes {{
      __typename
      ... on ReadyForReviewEvent {{ createdAt actor {{ {_ACTOR} }} }}
      ... on ConvertToDraftEvent {{ createdAt actor {{ {_ACTOR} }} }}
      ... on ReviewRequestedEvent {{
        createdAt
        actor {{ {_ACTOR} }}
        requestedReviewer {{ {_REQUESTED} }}
      }}
      ... on ReviewRequestRemovedEvent {{
        createdAt
        actor {{ {_ACTOR} }}
        requestedReviewer {{ {_REQUESTED} }}
      }}
      ... on HeadRefForcePushedEvent {{ createdAt actor {{ {_ACTOR} }} }}
      ... on ReopenedEvent {{ createdAt actor {{ {_ACTOR} }} }}
      ... on ClosedEvent {{ createdAt actor {{ {_ACTOR} }} }}
      ... on MergedEvent {{ createdAt actor {{ {_ACTOR} }} }}
    }}
  }}
}}
"""

PULL_PAGE = (
    """
query PullPage($owner: String!, $name: String!, $first: Int!, $after: String) {
  %s
  repository(owner: $owner, name: $name) {
    isArchived
    pullRequests(first: $first, after: $after, orderBy: {field: UPDATED_AT, direction: DESC}) {
      pageInfo { hasNextPage endCursor }
      nodes { ...PullFields }
    }
  }
}
"""
    % RATE_LIMIT
    + PULL_FIELDS
)


DOCUMENTS: dict[str, str] = {"PullPage": PULL_PAGE}
"""Every document shape the sampler sends, for the schema validation test."""
