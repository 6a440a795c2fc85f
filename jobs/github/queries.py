"""The GraphQL documents the sampler sends (validated against GitHub's schema in the tests).

One fragment, ``PullFields``, says everything collected about a PR; the page query asks for a
repository's PRs, newest update first, 100 at a time, each with the first page of its
commits, reviews and timeline; ``PullMore`` pages on through a PR's longer ones; ``PullOne`` asks for one PR by number (a
webhook's refresh). ``rateLimit`` rides along in every query so the budget is
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
INNER_SIZE = 100  # commits, reviews and timeline items per page (GitHub's maximum); a PR with
# more is paged on by ``PULL_MORE``, one request per further page of its longest connection
MORE_PAGES = 50  # further pages per PR (5,000 more items per connection); past it the record
# is marked incomplete rather than one PR eating a cycle's budget

RATE_LIMIT = "rateLimit { cost limit remaining resetAt used }"

_ACTOR = "__typename login"
# who a review request names: a person, a bot, a mannequin, or a team (by slug)
_REQUESTED = (
    "__typename ... on User { login } ... on Bot { login } ... on Mannequin { login }"
    " ... on Team { slug }"
)

_TIMELINE_ITEMS = f"""
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
"""

# One page of each connection that can outgrow a page, written once for both documents.
PAGES = f"""
fragment CommitPage on PullRequestCommitConnection {{
  totalCount
  pageInfo {{ hasNextPage endCursor }}
  nodes {{ commit {{ oid authoredDate committedDate message }} }}
}}
fragment ReviewPage on PullRequestReviewConnection {{
  pageInfo {{ hasNextPage endCursor }}
  nodes {{ author {{ {_ACTOR} }} state submittedAt commit {{ oid }} }}
}}
fragment TimelinePage on PullRequestTimelineItemsConnection {{
  pageInfo {{ hasNextPage endCursor }}
  nodes {{ {_TIMELINE_ITEMS} }}
}}
"""

_TYPES = ", ".join(TIMELINE_TYPES)

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
  commits(first: {INNER_SIZE}) {{ ...CommitPage }}
  reviews(first: {INNER_SIZE}) {{ ...ReviewPage }}
  timelineItems(first: {INNER_SIZE}, itemTypes: [{_TYPES}]) {{ ...TimelinePage }}
}}
""" + PAGES

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
"""  # noqa: UP031 - %s keeps GraphQL's braces as they are (an f-string would double them)
    % RATE_LIMIT
    + PULL_FIELDS
)


PULL_MORE = (
    """
query PullMore($owner: String!, $name: String!, $number: Int!,
               $commits: String, $reviews: String, $timeline: String,
               $withCommits: Boolean!, $withReviews: Boolean!, $withTimeline: Boolean!) {
  %s
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) {
      commits(first: %d, after: $commits) @include(if: $withCommits) { ...CommitPage }
      reviews(first: %d, after: $reviews) @include(if: $withReviews) { ...ReviewPage }
      timelineItems(first: %d, after: $timeline, itemTypes: [%s])
        @include(if: $withTimeline) { ...TimelinePage }
    }
  }
}
"""  # noqa: UP031 - %s keeps GraphQL's braces as they are (an f-string would double them)
    % (RATE_LIMIT, INNER_SIZE, INNER_SIZE, INNER_SIZE, _TYPES)
    + PAGES
)
"""The next page of one PR's connections that have more (the ones not asked are left out by
``@include``): what a PR with over 100 commits, reviews or timeline items needs."""

CONNECTIONS: dict[str, tuple[str, str]] = {
    "commits": ("commits", "withCommits"),
    "reviews": ("reviews", "withReviews"),
    "timelineItems": ("timeline", "withTimeline"),
}
"""Each paged connection of a PR: (its cursor variable, its include flag) in ``PULL_MORE``."""

PULL_ONE = (
    """
query PullOne($owner: String!, $name: String!, $number: Int!) {
  %s
  repository(owner: $owner, name: $name) {
    isArchived
    pullRequest(number: $number) { ...PullFields }
  }
}
"""  # noqa: UP031 - %s keeps GraphQL's braces as they are (an f-string would double them)
    % RATE_LIMIT
    + PULL_FIELDS
)
"""One PR by number, with the same fragment as a page (the parser cannot tell them apart):
what a webhook's refresh asks (:func:`jobs.sync.refresh_pr`), one point."""

DOCUMENTS: dict[str, str] = {"PullPage": PULL_PAGE, "PullMore": PULL_MORE, "PullOne": PULL_ONE}
"""Every document shape the sampler sends, for the schema validation test."""
