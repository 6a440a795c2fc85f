"""GitHub REST payloads for the sandbox, shaped like GitHub's (checked against its REST
description by ``tests/spec/validate.py``).

Every builder takes the API root (``api``, e.g. ``http://127.0.0.1:PORT``) so the URLs inside
payloads point back at the sandbox; ``html_url``s point at github.com as real payloads do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jobs.sandbox.records import (
    PR,
    Account,
    Commit,
    Event,
    Repo,
    ReviewRec,
    TeamDef,
    members_by_slug,
    node_id,
)
from jobs.sandbox.view import PRView

HTML = "https://github.com"
Json = dict[str, Any]


def iso(at: datetime | None) -> str | None:
    """GitHub's timestamp format, in UTC: ``2026-11-20T09:00:00Z``."""
    return None if at is None else at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def user(api: str, account: Account | None) -> Json | None:
    """A ``simple-user``; ``None`` for a deleted account shown as null."""
    if account is None:
        return None
    u = f"{api}/users/{account.login}"
    return {
        "login": account.login, "id": account.id, "node_id": account.node_id,
        "avatar_url": f"https://avatars.githubusercontent.com/u/{account.id}?v=4",
        "gravatar_id": "", "url": u, "html_url": f"{HTML}/{account.login}",
        "followers_url": f"{u}/followers", "following_url": f"{u}/following{{/other_user}}",
        "gists_url": f"{u}/gists{{/gist_id}}", "starred_url": f"{u}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{u}/subscriptions", "organizations_url": f"{u}/orgs",
        "repos_url": f"{u}/repos", "events_url": f"{u}/events{{/privacy}}",
        "received_events_url": f"{u}/received_events", "type": account.type,
        "user_view_type": "public", "site_admin": False,
    }


def private_user(api: str, account: Account, created: datetime) -> Json:
    """``GET /user`` for the token's owner."""
    out = user(api, account) or {}
    out.update({
        "name": account.name, "company": None, "blog": "", "location": None,
        "email": account.email, "hireable": None, "bio": None, "twitter_username": None,
        "public_repos": 0, "public_gists": 0, "followers": 0, "following": 0,
        "created_at": iso(created), "updated_at": iso(created), "private_gists": 0,
        "total_private_repos": 0, "owned_private_repos": 0, "disk_usage": 0,
        "collaborators": 0, "two_factor_authentication": True,
        "plan": {"name": "free", "space": 976562499, "private_repos": 10000, "collaborators": 0},
    })
    return out


def organisation(api: str, org: str, org_id: int) -> Json:
    """An organisation as the ``owner`` of a repository (a simple-user of type Organization)."""
    return user(api, Account(org, org_id, "Organization", "human")) or {}


_REPO_URLS = {
    "archive_url": "/{archive_format}{/ref}", "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}", "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}", "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}", "compare_url": "/compare/{base}...{head}",
    "contents_url": "/contents/{+path}", "contributors_url": "/contributors",
    "deployments_url": "/deployments", "downloads_url": "/downloads", "events_url": "/events",
    "forks_url": "/forks", "git_commits_url": "/git/commits{/sha}",
    "git_refs_url": "/git/refs{/sha}", "git_tags_url": "/git/tags{/sha}", "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}", "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}", "keys_url": "/keys{/key_id}", "labels_url": "/labels{/name}",
    "languages_url": "/languages", "merges_url": "/merges",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "pulls_url": "/pulls{/number}", "releases_url": "/releases{/id}",
    "stargazers_url": "/stargazers", "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers", "subscription_url": "/subscription", "tags_url": "/tags",
    "teams_url": "/teams", "trees_url": "/git/trees{/sha}",
}


def repository(api: str, org: str, org_id: int, repo: Repo, *, full: bool = True) -> Json:
    """A ``full-repository`` (``minimal-repository`` fields plus counts and settings)."""
    name = f"{org}/{repo.name}"
    u = f"{api}/repos/{name}"
    out: Json = {
        "id": repo.id, "node_id": node_id("R", repo.id), "name": repo.name, "full_name": name,
        "private": repo.private, "owner": organisation(api, org, org_id),
        "html_url": f"{HTML}/{name}", "description": repo.description, "fork": False, "url": u,
    }
    out.update({k: u + v for k, v in _REPO_URLS.items()})
    out.update({
        "git_url": f"git://github.com/{name}.git", "ssh_url": f"git@github.com:{name}.git",
        "clone_url": f"{HTML}/{name}.git", "svn_url": f"{HTML}/{name}", "mirror_url": None,
        "homepage": None, "language": "Python", "forks_count": 0, "stargazers_count": 0,
        "watchers_count": 0, "size": 1024, "default_branch": repo.default_branch,
        "open_issues_count": 0, "is_template": False, "topics": [], "has_issues": True,
        "has_projects": False, "has_wiki": False, "has_pages": False, "has_downloads": True,
        "has_discussions": False, "archived": repo.archived, "disabled": False,
        "visibility": "private" if repo.private else "public",
        "pushed_at": iso(repo.pushed_at), "created_at": iso(repo.created_at),
        "updated_at": iso(repo.pushed_at),
        "permissions": {"admin": False, "maintain": False, "push": True, "triage": True,
                        "pull": True},
        "allow_forking": False, "web_commit_signoff_required": False, "forks": 0,
        "open_issues": 0, "watchers": 0, "license": None,
    })
    if full:
        out.update({"network_count": 0, "subscribers_count": 0,
                    "temp_clone_token": "", "delete_branch_on_merge": True})
    return out


def label(api: str, repo: str, name: str) -> Json:
    """A ``label`` of a repository (a stable id from its name)."""
    lid = sum(ord(c) * 31**i for i, c in enumerate(name)) % 10**9
    return {"id": lid, "node_id": node_id("LA", lid), "url": f"{api}/repos/{repo}/labels/{name}",
            "name": name, "description": "", "color": "ededed", "default": False}


def team(api: str, org: str, t: TeamDef) -> Json:
    """A ``team-simple`` as in ``requested_team``."""
    u = f"{api}/organizations/1/team/{t.id}"
    return {
        "id": t.id, "node_id": node_id("T", t.id), "url": u,
        "html_url": f"{HTML}/orgs/{org}/teams/{t.slug}",
        "name": t.slug, "slug": t.slug, "description": f"Reviewers of {t.name}",
        "privacy": "closed", "notification_setting": "notifications_enabled",
        "permission": "pull", "members_url": f"{u}/members{{/member}}",
        "repositories_url": f"{u}/repos", "type": "organization", "parent": None,
    }


def pull(api: str, org: str, org_id: int, repo: Repo, view: PRView, *, full: bool,
         slugs: dict[str, TeamDef]) -> Json:
    """A ``pull-request-simple`` (lists) or ``pull-request`` (``full``) as of the view."""
    pr = view.pr
    name = f"{org}/{repo.name}"
    u = f"{api}/repos/{name}/pulls/{pr.number}"
    issue = f"{api}/repos/{name}/issues/{pr.number}"
    head_sha = view.head_sha
    users, teams = view.requested(members_by_slug(slugs))
    repo_json = repository(api, org, org_id, repo, full=False)
    merged_by = next((e.actor for e in view.events if e.event == "merged"), None)
    merge_sha = next((e.commit_id for e in view.events if e.event == "merged"), None)
    out: Json = {
        "url": u, "id": pr.id, "node_id": pr.node_id, "html_url": f"{HTML}/{name}/pull/{pr.number}",
        "diff_url": f"{HTML}/{name}/pull/{pr.number}.diff",
        "patch_url": f"{HTML}/{name}/pull/{pr.number}.patch", "issue_url": issue,
        "number": pr.number, "state": view.state, "locked": False, "title": pr.title,
        "user": user(api, pr.author), "body": pr.body,
        "labels": [label(api, name, each) for each in pr.labels],
        "milestone": None, "active_lock_reason": None, "created_at": iso(pr.created_at),
        "updated_at": iso(view.updated_at), "closed_at": iso(view.closed_at),
        "merged_at": iso(view.merged_at), "merge_commit_sha": merge_sha or head_sha,
        "assignee": None, "assignees": [],
        "requested_reviewers": [user(api, _account_of(pr, login, view)) for login in users],
        "draft": view.draft, "commits_url": f"{u}/commits",
        "review_comments_url": f"{u}/comments",
        "review_comment_url": f"{api}/repos/{name}/pulls/comments{{/number}}",
        "comments_url": f"{issue}/comments",
        "statuses_url": f"{api}/repos/{name}/statuses/{head_sha}",
        "head": {"label": f"{org}:{pr.head_ref}", "ref": pr.head_ref, "sha": head_sha,
                 "user": organisation(api, org, org_id), "repo": repo_json},
        "base": {"label": f"{org}:{pr.base_ref}", "ref": pr.base_ref, "sha": pr.base_sha,
                 "user": organisation(api, org, org_id), "repo": repo_json},
        "_links": {
            "self": {"href": u}, "html": {"href": f"{HTML}/{name}/pull/{pr.number}"},
            "issue": {"href": issue}, "comments": {"href": f"{issue}/comments"},
            "review_comments": {"href": f"{u}/comments"},
            "review_comment": {"href": f"{api}/repos/{name}/pulls/comments{{/number}}"},
            "commits": {"href": f"{u}/commits"},
            "statuses": {"href": f"{api}/repos/{name}/statuses/{head_sha}"},
        },
        "author_association": "MEMBER" if pr.author.kind == "human" else "NONE",
        "auto_merge": None,
    }
    out["requested_teams"] = [_team_ref(api, org, s, slugs) for s in teams]
    if full:
        out.update({
            "merged": view.merged_at is not None,
            "mergeable": None if view.state == "closed" else True,
            "rebaseable": None if view.state == "closed" else True,
            "mergeable_state": "unknown" if view.state == "closed" else "clean",
            "merged_by": user(api, merged_by), "comments": 0, "review_comments": 0,
            "maintainer_can_modify": False, "commits": len(view.commits),
            "additions": pr.additions, "deletions": pr.deletions,
            "changed_files": pr.changed_files,
        })
    return out


def _account_of(pr: PR, login: str, view: PRView) -> Account | None:
    for e in view.events:
        if e.reviewer is not None and e.reviewer.login == login:
            return e.reviewer
    return None


def _team_ref(api: str, org: str, slug: str, teams: dict[str, TeamDef]) -> Json:
    t = teams.get(slug) or TeamDef(slug, slug, 0, (), (), "", (), "UTC", None, "")
    return team(api, org, t)


def review(api: str, org: str, repo: str, pr: PR, r: ReviewRec) -> Json:
    """A ``pull-request-review`` (state upper case)."""
    name = f"{org}/{repo}"
    html = f"{HTML}/{name}/pull/{pr.number}#pullrequestreview-{r.id}"
    pull_url = f"{api}/repos/{name}/pulls/{pr.number}"
    return {
        "id": r.id, "node_id": node_id("PRR", r.id), "user": user(api, r.author),
        "body": r.body, "state": r.state, "html_url": html, "pull_request_url": pull_url,
        "author_association": "MEMBER" if r.author and r.author.kind == "human" else "NONE",
        "_links": {"html": {"href": html}, "pull_request": {"href": pull_url}},
        "submitted_at": iso(r.submitted_at), "commit_id": r.commit_id,
    }


def git_user(account: Account | None, at: datetime) -> Json:
    if account is None:
        return {"name": "Deleted user", "email": "ghost@users.noreply.github.com", "date": iso(at)}
    email = account.email or f"{account.id}+{account.login}@users.noreply.github.com"
    return {"name": account.name or account.login, "email": email, "date": iso(at)}


_UNSIGNED = {"verified": False, "reason": "unsigned", "signature": None, "payload": None,
             "verified_at": None}


def commit(api: str, org: str, repo: str, c: Commit) -> Json:
    """A ``commit`` as listed by ``/pulls/{n}/commits``."""
    name = f"{org}/{repo}"
    u = f"{api}/repos/{name}/commits/{c.sha}"
    return {
        "url": u, "sha": c.sha, "node_id": node_id("C", int(c.sha[:12], 16)),
        "html_url": f"{HTML}/{name}/commit/{c.sha}", "comments_url": f"{u}/comments",
        "commit": {
            "url": f"{api}/repos/{name}/git/commits/{c.sha}",
            "author": git_user(c.author, c.authored_at),
            "committer": git_user(c.author, c.committed_at), "message": c.message,
            "tree": {"url": f"{api}/repos/{name}/git/trees/{c.sha[::-1]}", "sha": c.sha[::-1]},
            "comment_count": 0, "verification": dict(_UNSIGNED),
        },
        "author": user(api, c.author), "committer": user(api, c.author),
        "parents": [{"url": f"{api}/repos/{name}/commits/{c.parent}",
                     "html_url": f"{HTML}/{name}/commit/{c.parent}", "sha": c.parent}],
    }


def timeline(api: str, org: str, repo: str, view: PRView, slugs: dict[str, TeamDef]) -> list[Json]:
    """The PR's timeline items as of the view, oldest first (GitHub's order)."""
    name = f"{org}/{repo}"
    pr = view.pr
    items: list[tuple[datetime, int, Json]] = []
    for c in view.commits:
        item = commit(api, org, repo, c)["commit"]
        item.pop("comment_count")
        item.update({"sha": c.sha, "node_id": node_id("C", int(c.sha[:12], 16)),
                     "url": f"{api}/repos/{name}/git/commits/{c.sha}",
                     "html_url": f"{HTML}/{name}/commit/{c.sha}",
                     "parents": [{"sha": c.parent,
                                  "url": f"{api}/repos/{name}/git/commits/{c.parent}",
                                  "html_url": f"{HTML}/{name}/commit/{c.parent}"}],
                     "event": "committed"})
        items.append((c.committed_at, 0, item))
    for r in view.reviews:
        item = review(api, org, repo, pr, r)
        item["state"] = r.state.lower()
        item["event"] = "reviewed"
        items.append((r.submitted_at, r.id, item))
    for e in view.events:
        items.append((e.at, e.id, issue_event(api, name, e, slugs)))
    items.sort(key=lambda t: (t[0], t[1]))
    return [i for _, _, i in items]


def issue_event(api: str, name: str, e: Event, slugs: dict[str, TeamDef]) -> Json:
    """An issue event (``review_requested``, ``merged``, ``head_ref_force_pushed``, ...)."""
    out: Json = {
        "id": e.id, "node_id": node_id("E", e.id),
        "url": f"{api}/repos/{name}/issues/events/{e.id}",
        "actor": user(api, e.actor), "event": e.event, "commit_id": e.commit_id,
        "commit_url": f"{api}/repos/{name}/commits/{e.commit_id}" if e.commit_id else None,
        "created_at": iso(e.at), "performed_via_github_app": None,
    }
    if e.event in ("review_requested", "review_request_removed"):
        out["review_requester"] = user(api, e.actor)
        if e.reviewer is not None:
            out["requested_reviewer"] = user(api, e.reviewer)
        else:
            out["requested_team"] = _team_ref(api, name.split("/")[0], e.team or "", slugs)
    if e.event == "closed":
        out["state_reason"] = None
    if e.event == "labeled" and e.label is not None:
        out["label"] = {"name": e.label, "color": "ededed"}
    if e.event == "review_dismissed":
        out["dismissed_review"] = {"state": "dismissed", "review_id": e.review_id,
                                   "dismissal_message": None, "dismissal_commit_id": None}
    return out


def installation(api: str, org: str, org_id: int, created: datetime, *,
                 installation_id: int = 4242) -> Json:
    """The App installation on the organisation."""
    # The list endpoint's schema reads ``account`` as simple-user AND enterprise (allOf), so
    # the enterprise's required keys are filled in too.
    account = {**organisation(api, org, org_id), "name": org.title(), "slug": org,
               "created_at": iso(created), "updated_at": iso(created)}
    return {
        "id": installation_id, "account": account, "repository_selection": "all",
        "access_tokens_url": f"{api}/app/installations/{installation_id}/access_tokens",
        "repositories_url": f"{api}/installation/repositories",
        "html_url": f"{HTML}/organizations/{org}/settings/installations/{installation_id}",
        "app_id": 1001, "app_slug": "flowbot", "target_id": org_id, "target_type": "Organization",
        "permissions": {"metadata": "read", "pull_requests": "read", "checks": "read",
                        "actions": "read", "members": "read", "contents": "read"},
        "events": [], "created_at": iso(created), "updated_at": iso(created),
        "single_file_name": None, "has_multiple_single_files": False, "single_file_paths": [],
        "suspended_by": None, "suspended_at": None,
    }


def error(message: str, status: int) -> Json:
    """GitHub's ``basic-error`` body."""
    doc = "https://docs.github.com/rest"
    return {"message": message, "documentation_url": doc, "status": str(status)}


def issue(api: str, org: str, view: PRView) -> Json:
    """The issue side of a PR (``GET /repos/{o}/{r}/issues/{n}``)."""
    pr = view.pr
    name = f"{org}/{pr.repo}"
    u = f"{api}/repos/{name}/issues/{pr.number}"
    closer = next((e.actor for e in reversed(view.events) if e.event == "closed"), None)
    return {
        "id": pr.id + 1, "node_id": node_id("I", pr.id), "url": u,
        "repository_url": f"{api}/repos/{name}", "labels_url": f"{u}/labels{{/name}}",
        "comments_url": f"{u}/comments", "events_url": f"{u}/events",
        "html_url": f"{HTML}/{name}/pull/{pr.number}", "timeline_url": f"{u}/timeline",
        "number": pr.number, "state": view.state,
        "state_reason": None, "title": pr.title, "body": pr.body, "user": user(api, pr.author),
        "labels": [label(api, name, each) for each in pr.labels], "assignee": None,
        "assignees": [], "milestone": None, "locked": False, "active_lock_reason": None,
        "comments": 0, "draft": view.draft,
        "pull_request": {"url": f"{api}/repos/{name}/pulls/{pr.number}",
                         "html_url": f"{HTML}/{name}/pull/{pr.number}",
                         "diff_url": f"{HTML}/{name}/pull/{pr.number}.diff",
                         "patch_url": f"{HTML}/{name}/pull/{pr.number}.patch",
                         "merged_at": iso(view.merged_at)},
        "closed_at": iso(view.closed_at), "created_at": iso(pr.created_at),
        "updated_at": iso(view.updated_at),
        "closed_by": user(api, closer) if view.closed_at else None,
        "author_association": "MEMBER" if pr.author.kind == "human" else "NONE",
        "performed_via_github_app": None,
    }
