"""Discussions, pull requests and gated-repo access requests in the metadata database.

A pull request is a discussion with ``is_pr``; its commits live in the repo store on ``refs/pr/<num>``.
Events (comments, status and title changes, commits) are rows of ``discussion_events``, each with a
24-hex id as the Hub gives them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .. import errors
from . import schema
from .models import RepoRef, utcnow
from .sql import _aware, lookup_repo_id

STATUSES = ("open", "closed", "merged", "draft")
GATED_MODES = ("auto", "manual")
REQUEST_STATUSES = ("pending", "accepted", "rejected")


@dataclasses.dataclass
class DiscussionEvent:
    """One event of a discussion."""

    id: str
    type: str
    author: str
    created_at: dt.datetime
    data: dict


@dataclasses.dataclass
class Discussion:
    """A discussion or pull request of a repo."""

    num: int
    is_pr: bool
    title: str
    author: str
    status: str
    created_at: dt.datetime
    target_branch: str | None
    merge_commit: str | None
    events: list[DiscussionEvent] = dataclasses.field(default_factory=list)

    @property
    def git_ref(self) -> str | None:
        """The git ref of a pull request's commits."""
        return f"refs/pr/{self.num}" if self.is_pr else None


@dataclasses.dataclass
class AccessRequest:
    """A user's request to download a gated repo."""

    user: str
    status: str
    created_at: dt.datetime
    fields: dict | None


def _shown(type_: str, data: dict) -> dict:
    """An event's data as anyone may read it: a hidden comment's content is withheld (hiding is final, as on
    the Hub: its content cannot be retrieved anymore)."""
    if type_ == "comment" and data.get("hidden"):
        return {**data, "latest": {"raw": "", "html": ""}}
    return data


def _event(row) -> DiscussionEvent:
    return DiscussionEvent(row.event_id, row.type, row.author, _aware(row.created_at), _shown(row.type, dict(row.data)))


class SqlDiscussionStore:
    """Discussions, their events, gating settings and access requests (shares the metadata engine)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def _row(self, conn: sa.Connection, ref: RepoRef, num: int):
        d = schema.discussions
        row = conn.execute(sa.select(d).where(d.c.repo_id == lookup_repo_id(conn, ref), d.c.num == num)).first()
        if row is None:
            raise errors.NotFound(f"Discussion #{num} not found in {ref.id}", headers={"X-Error-Code": "NotFound"})
        return row

    @staticmethod
    def _discussion(row, events: list[DiscussionEvent] | None = None) -> Discussion:
        return Discussion(
            num=row.num,
            is_pr=bool(row.is_pr),
            title=row.title,
            author=row.author,
            status=row.status,
            created_at=_aware(row.created_at),
            target_branch=row.target_branch,
            merge_commit=row.merge_commit,
            events=events or [],
        )

    # ----------------------------------------------------------------- discussions

    def create(
        self, ref: RepoRef, *, author: str, title: str, description: str, is_pr: bool, status: str, target: str | None
    ) -> Discussion:
        """A new discussion numbered after the repo's last one, with its first comment."""
        d = schema.discussions
        for _ in range(5):
            try:
                with self.engine.begin() as conn:
                    repo_id = lookup_repo_id(conn, ref)
                    last = conn.execute(sa.select(sa.func.max(d.c.num)).where(d.c.repo_id == repo_id)).scalar()
                    num = (last or 0) + 1
                    row_id = conn.execute(
                        d.insert().values(
                            repo_id=repo_id,
                            num=num,
                            is_pr=is_pr,
                            title=title,
                            author=author,
                            status=status,
                            created_at=utcnow(),
                            target_branch=target,
                        )
                    ).inserted_primary_key[0]
                    self._add_event(conn, row_id, "comment", author, comment_data(description))
                return self.get(ref, num)
            except IntegrityError:  # a concurrent create took the number: take the next one
                continue
        raise errors.Conflict("Could not allocate a discussion number, please retry")

    def get(self, ref: RepoRef, num: int) -> Discussion:
        """A discussion with its events (NotFound when absent)."""
        e = schema.discussion_events
        with self.engine.connect() as conn:
            row = self._row(conn, ref, num)
            events = [_event(r) for r in conn.execute(sa.select(e).where(e.c.discussion_id == row.id).order_by(e.c.id))]
        return self._discussion(row, events)

    def list(self, ref: RepoRef) -> list[Discussion]:
        """Every discussion of a repo, newest first (without events)."""
        d = schema.discussions
        with self.engine.connect() as conn:
            repo_id = lookup_repo_id(conn, ref)
            rows = conn.execute(sa.select(d).where(d.c.repo_id == repo_id).order_by(d.c.num.desc())).all()
        return [self._discussion(row) for row in rows]

    def update(self, ref: RepoRef, num: int, **values) -> None:
        """Change columns of a discussion (``title``, ``status``, ``merge_commit``)."""
        d = schema.discussions
        with self.engine.begin() as conn:
            row = self._row(conn, ref, num)
            conn.execute(d.update().where(d.c.id == row.id).values(**values))

    def delete(self, ref: RepoRef, num: int) -> None:
        """Forget a discussion and its events (a PR whose opening commit failed)."""
        d = schema.discussions
        with self.engine.begin() as conn:
            row = self._row(conn, ref, num)
            conn.execute(schema.discussion_events.delete().where(schema.discussion_events.c.discussion_id == row.id))
            conn.execute(d.delete().where(d.c.id == row.id))

    def add_event(self, ref: RepoRef, num: int, type_: str, author: str, data: dict, **values) -> DiscussionEvent:
        """Record an event (and, in the same transaction, column changes such as a new status)."""
        d = schema.discussions
        with self.engine.begin() as conn:
            row = self._row(conn, ref, num)
            if values:
                conn.execute(d.update().where(d.c.id == row.id).values(**values))
            return self._add_event(conn, row.id, type_, author, data)

    @staticmethod
    def _add_event(conn: sa.Connection, discussion_id: int, type_: str, author: str, data: dict) -> DiscussionEvent:
        event = DiscussionEvent(secrets.token_hex(12), type_, author, utcnow(), data)
        conn.execute(
            schema.discussion_events.insert().values(
                event_id=event.id,
                discussion_id=discussion_id,
                type=type_,
                author=author,
                created_at=event.created_at,
                data=data,
            )
        )
        return event

    def edit_comment(
        self, ref: RepoRef, num: int, event_id: str, *, editor: str, content: str | None
    ) -> DiscussionEvent:
        """Edit (or hide, when ``content`` is None) a comment; only its author may edit it, and not once hidden."""
        e = schema.discussion_events
        with self.engine.begin() as conn:
            row = self._row(conn, ref, num)
            found = conn.execute(
                sa.select(e).where(e.c.discussion_id == row.id, e.c.event_id == event_id.lower(), e.c.type == "comment")
            ).first()
            if found is None:
                raise errors.NotFound(f"Comment {event_id} not found in discussion #{num}")
            data = dict(found.data)
            if content is None:
                data.update(hidden=True)
            else:
                if found.author != editor:
                    raise errors.Forbidden("Only the author of a comment may edit it")
                if data.get("hidden"):
                    raise errors.Forbidden("This comment was hidden by the repo's writers: it cannot be edited")
                data.update(
                    latest=comment_data(content)["latest"], edited=True, numEdits=int(data.get("numEdits", 0)) + 1
                )
            conn.execute(e.update().where(e.c.id == found.id).values(data=data))
            shown = _shown(found.type, data)
            return DiscussionEvent(found.event_id, found.type, found.author, _aware(found.created_at), shown)

    # ----------------------------------------------------------------- gating and access requests

    def gated(self, ref: RepoRef) -> str | None:
        """The repo's gating mode ("auto", "manual") or None."""
        g = schema.gated_repos
        with self.engine.connect() as conn:
            return conn.execute(sa.select(g.c.mode).where(g.c.repo_id == lookup_repo_id(conn, ref))).scalar()

    def set_gated(self, ref: RepoRef, mode: str | None) -> None:
        """Gate a repo ("auto" or "manual") or ungate it (None)."""
        if mode is not None and mode not in GATED_MODES:
            raise errors.BadRequest(f"Invalid gated value {mode!r}: expected 'auto', 'manual' or false")
        g = schema.gated_repos
        with self.engine.begin() as conn:
            repo_id = lookup_repo_id(conn, ref)
            conn.execute(g.delete().where(g.c.repo_id == repo_id))
            if mode is not None:
                conn.execute(g.insert().values(repo_id=repo_id, mode=mode))

    def access_request(self, ref: RepoRef, user: str) -> AccessRequest | None:
        """A user's access request, or None."""
        a = schema.access_requests
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(a).where(a.c.repo_id == lookup_repo_id(conn, ref), a.c.user == user)).first()
        return None if row is None else AccessRequest(row.user, row.status, _aware(row.created_at), row.fields)

    def list_access_requests(self, ref: RepoRef, status: str) -> list[AccessRequest]:
        """Requests with a status, oldest first."""
        a = schema.access_requests
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(a)
                .where(a.c.repo_id == lookup_repo_id(conn, ref), a.c.status == status)
                .order_by(a.c.created_at)
            ).all()
        return [AccessRequest(r.user, r.status, _aware(r.created_at), r.fields) for r in rows]

    def set_access_request(self, ref: RepoRef, user: str, status: str, fields: dict | None = None) -> None:
        """Create or change a user's request."""
        if status not in REQUEST_STATUSES:
            raise errors.BadRequest(f"Invalid status {status!r}: expected one of {', '.join(REQUEST_STATUSES)}")
        a = schema.access_requests
        with self.engine.begin() as conn:
            repo_id = lookup_repo_id(conn, ref)
            where = (a.c.repo_id == repo_id, a.c.user == user)
            if conn.execute(sa.select(a.c.user).where(*where)).first() is None:
                conn.execute(
                    a.insert().values(repo_id=repo_id, user=user, status=status, created_at=utcnow(), fields=fields)
                )
            else:
                conn.execute(a.update().where(*where).values(status=status))


def comment_data(content: str) -> dict:
    return {"edited": False, "hidden": False, "numEdits": 0, "latest": {"raw": content, "html": ""}}
