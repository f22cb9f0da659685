"""The metadata store on SQL: SQLite inside the data directory by default, PostgreSQL for several replicas.

Uniqueness (users, token hashes, repo ids regardless of case) is enforced by the database. Locks that
every process must honour are PostgreSQL advisory locks, or, for SQLite (one machine by nature), file
locks next to the database.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import secrets
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .. import errors
from . import schema
from .models import RepoMeta, RepoRef, TokenInfo, utcnow, validate_name

_TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def secret_hash(value: str) -> str:
    """How tokens and session ids are stored: their sha256, never the value."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _live_token(now: dt.datetime) -> tuple:
    """The conditions a live token meets: not revoked, not expired (one rule for tokens, sessions and grants)."""
    t = schema.tokens
    return t.c.revoked_at.is_(None), sa.or_(t.c.expires_at.is_(None), t.c.expires_at > now)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite returns naive datetimes: they are UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def name_taken(conn: sa.Connection, name: str) -> tuple[str, str] | None:
    """The user or organisation called ``name`` regardless of case, as ("user" | "organisation", its name)."""
    for kind, table in (("user", schema.users), ("organisation", schema.orgs)):
        query = sa.select(table.c.name).where(sa.func.lower(table.c.name) == name.lower())
        found = conn.execute(query).scalar()
        if found is not None:
            return kind, found
    return None


def taken_message(taken: tuple[str, str], wanted: str) -> str:
    """Why a name is refused: whose it is (names are unique regardless of case, as repo ids are)."""
    kind, name = taken
    return f"{name!r} is {'an organisation' if kind == 'organisation' else 'a user'}: {wanted} needs a name of its own"


def name_key(ref: RepoRef) -> str:
    """The case-insensitive unique key of a repo."""
    return ref.key.lower()


_request_memo: ContextVar[dict | None] = ContextVar("hub_sql_request_memo", default=None)


@contextlib.contextmanager
def request_memo() -> Iterator[None]:
    """Within the block (one request), a repo's row is read from the database once, however many checks ask."""
    token = _request_memo.set({})
    try:
        yield
    finally:
        _request_memo.reset(token)


def forget_repos() -> None:
    """Forget memoized repo rows (after a write to the repos table)."""
    memo = _request_memo.get()
    if memo is not None:
        memo.clear()


def repo_row(conn: sa.Connection, ref: RepoRef):
    """The repos row of ``ref`` (looked up regardless of case), or None; memoized within a request."""
    memo = _request_memo.get()
    key = name_key(ref)
    if memo is not None and key in memo:
        return memo[key]
    row = conn.execute(sa.select(schema.repos).where(schema.repos.c.name_key == key)).first()
    if memo is not None:
        memo[key] = row
    return row


def lookup_repo_id(conn: sa.Connection, ref: RepoRef) -> int:
    """The database id of ``ref``; RepoNotFound when it does not exist."""
    row = repo_row(conn, ref)
    if row is None:
        raise errors.RepoNotFound(f"Repository {ref.id} not found")
    return row.id


class SqlMetadataStore:
    """Users, tokens, sessions, repos, object ownership and scan verdicts in one SQL database."""

    def __init__(self, engine: sa.Engine, *, lock_dir: Path | None = None) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._lock_dir = lock_dir
        self._thread_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    # ----------------------------------------------------------------- users and tokens

    def add_user(self, name: str, *, exist_ok: bool = False) -> None:
        """Create a user; Conflict when the name (in any letter case) is taken (unless it is this user and
        ``exist_ok``)."""
        validate_name(name, "user name")
        with self.engine.begin() as conn:
            taken = name_taken(conn, name)
            if taken == ("user", name) and exist_ok:
                return
            if taken == ("user", name):
                raise errors.Conflict(f"User {name!r} already exists")
            if taken is not None:
                raise errors.Conflict(taken_message(taken, "a user"))
            try:
                with conn.begin_nested():
                    conn.execute(schema.users.insert().values(name=name, created_at=utcnow()))
            except IntegrityError:  # created concurrently
                if not exist_ok:
                    raise errors.Conflict(f"User {name!r} already exists") from None

    def user_exists(self, name: str) -> bool:
        """Whether a user exists."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(schema.users.c.name).where(schema.users.c.name == name)).first() is not None

    def list_users(self) -> list[str]:
        """All user names, sorted."""
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(schema.users.c.name).order_by(schema.users.c.name)).scalars())

    def create_token(
        self, user: str, *, role: str = "write", display_name: str | None = None, expires_at: dt.datetime | None = None
    ) -> str:
        """Create a token for ``user`` and return it; only its hash is stored."""
        if role not in ("read", "write"):
            raise errors.BadRequest(f"Invalid token role {role!r}: expected 'read' or 'write'")
        token = "hf_" + "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(34))
        t = schema.tokens
        with self.engine.begin() as conn:
            if not conn.execute(sa.select(schema.users.c.name).where(schema.users.c.name == user)).first():
                raise errors.NotFound(f"User {user!r} does not exist")
            count = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            conn.execute(
                t.insert().values(
                    token_hash=secret_hash(token),
                    user=user,
                    role=role,
                    display_name=display_name or f"{user}-{role}-{count + 1}",
                    created_at=utcnow(),
                    expires_at=expires_at,
                )
            )
        return token

    def token_info(self, token: str) -> TokenInfo | None:
        """The user, role and name behind a live token, or None (unknown, expired or revoked)."""
        t = schema.tokens
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(t.c.id, t.c.user, t.c.role, t.c.display_name).where(
                    t.c.token_hash == secret_hash(token), *_live_token(utcnow())
                )
            ).first()
        if row is None:
            return None
        return TokenInfo(user=row.user, role=row.role, display_name=row.display_name, token_id=row.id)

    def token_live(self, token_id: int) -> bool:
        """Whether a token (by id) is neither revoked nor expired."""
        t = schema.tokens
        with self.engine.connect() as conn:
            found = conn.execute(sa.select(t.c.id).where(t.c.id == token_id, *_live_token(utcnow()))).first()
        return found is not None

    def revoke_token(self, token: str) -> bool:
        """Revoke a token; False when it is unknown or already revoked."""
        t = schema.tokens
        with self.engine.begin() as conn:
            result = conn.execute(
                t.update()
                .where(t.c.token_hash == secret_hash(token), t.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return result.rowcount == 1

    def list_tokens(self, user: str | None = None) -> list[dict]:
        """Every token's record (never its value): id, user, role, name, created/expires/revoked dates."""
        t = schema.tokens
        query = sa.select(t.c.id, t.c.user, t.c.role, t.c.display_name, t.c.created_at, t.c.expires_at, t.c.revoked_at)
        if user is not None:
            query = query.where(t.c.user == user)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.c.id)).all()
        keys = ("created_at", "expires_at", "revoked_at")
        return [{**row._asdict(), **{k: _aware(getattr(row, k)) for k in keys}} for row in rows]

    def revoke_tokens(self, *, token_id: int | None = None, user: str | None = None) -> int:
        """Revoke one token by id, or every live token of a user (whose browser sessions end too)."""
        t = schema.tokens
        query = t.update().where(t.c.revoked_at.is_(None)).values(revoked_at=utcnow())
        if token_id is not None:
            query = query.where(t.c.id == token_id)
        elif user is not None:
            query = query.where(t.c.user == user)
        else:
            raise errors.BadRequest("Name a token id or a user")
        with self.engine.begin() as conn:
            count = conn.execute(query).rowcount
            if user is not None and token_id is None:
                conn.execute(schema.sessions.delete().where(schema.sessions.c.user == user))
        return count

    # ----------------------------------------------------------------- sessions

    def create_session(self, token: TokenInfo, *, ttl: dt.timedelta) -> str:
        """Open a browser session with a live token; returns its opaque id (stored hashed). The session lives
        at most ``ttl``, and ends as soon as its token is revoked or expires."""
        if token.token_id is None:
            raise errors.Unauthorized("A session is opened with a token")
        session = secrets.token_urlsafe(32)
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(schema.sessions.delete().where(schema.sessions.c.expires_at < now))
            conn.execute(
                schema.sessions.insert().values(
                    session_hash=secret_hash(session),
                    user=token.user,
                    role=token.role,
                    created_at=now,
                    expires_at=now + ttl,
                    token_id=token.token_id,
                )
            )
        return session

    def session_info(self, session: str) -> TokenInfo | None:
        """Who a live session belongs to, with the role of the token it was opened with; None when the session
        ended, or its token was revoked or expired."""
        s, t = schema.sessions, schema.tokens
        now = utcnow()
        query = (
            sa.select(s.c.user, s.c.role, s.c.token_id)
            .join(t, t.c.id == s.c.token_id)
            .where(s.c.session_hash == secret_hash(session), s.c.expires_at > now, *_live_token(now))
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return TokenInfo(user=row.user, role=row.role, display_name="web session", token_id=row.token_id)

    def delete_session(self, session: str) -> None:
        """End a session."""
        with self.engine.begin() as conn:
            conn.execute(schema.sessions.delete().where(schema.sessions.c.session_hash == secret_hash(session)))

    # ----------------------------------------------------------------- repos

    @staticmethod
    def _meta(row) -> RepoMeta:
        return RepoMeta(
            ref=RepoRef(row.type, row.namespace, row.name),
            private=bool(row.private),
            created_at=_aware(row.created_at),
            owner=row.owner,
        )

    def create_repo(
        self, ref: RepoRef, *, owner: str, private: bool, created_at: dt.datetime | None = None
    ) -> RepoMeta:
        """Record a new repo; Conflict when one with the same id (in any letter case) exists."""
        values = dict(
            type=ref.type,
            namespace=ref.namespace,
            name=ref.name,
            name_key=name_key(ref),
            owner=owner,
            private=bool(private),
            created_at=created_at or utcnow(),
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(schema.repos.insert().values(**values))
            forget_repos()
        except IntegrityError:
            raise errors.Conflict(f"You already created this {ref.type} repo: {ref.id}") from None
        return self.get_repo(ref)

    def get_repo(self, ref: RepoRef) -> RepoMeta:
        """A repo's settings, looked up regardless of case; RepoNotFound when absent."""
        with self.engine.connect() as conn:
            row = repo_row(conn, ref)
        if row is None:
            raise errors.RepoNotFound(f"Repository {ref.id} not found")
        return self._meta(row)

    def list_repos(self, repo_type: str, namespace: str | None = None) -> list[RepoMeta]:
        """Every repo of a type, optionally within one namespace (named in any letter case), sorted by id."""
        r = schema.repos
        query = sa.select(r).where(r.c.type == repo_type).order_by(r.c.namespace, r.c.name)
        if namespace is not None:
            query = query.where(sa.func.lower(r.c.namespace) == namespace.lower())
        with self.engine.connect() as conn:
            return [self._meta(row) for row in conn.execute(query)]

    def update_repo(self, ref: RepoRef, *, private: bool | None = None) -> RepoMeta:
        """Change a repo's settings."""
        if private is not None:
            r = schema.repos
            with self.engine.begin() as conn:
                result = conn.execute(r.update().where(r.c.name_key == name_key(ref)).values(private=bool(private)))
            forget_repos()
            if result.rowcount == 0:
                raise errors.RepoNotFound(f"Repository {ref.id} not found")
        return self.get_repo(ref)

    def delete_repo(self, ref: RepoRef) -> None:
        """Forget a repo and what it owned."""
        r = schema.repos
        with self.engine.begin() as conn:
            repo_id = conn.execute(sa.select(r.c.id).where(r.c.name_key == name_key(ref))).scalar()
            if repo_id is None:
                raise errors.RepoNotFound(f"Repository {ref.id} not found")
            conn.execute(schema.repo_objects.delete().where(schema.repo_objects.c.repo_id == repo_id))
            conn.execute(r.delete().where(r.c.id == repo_id))
        forget_repos()

    # ----------------------------------------------------------------- object ownership

    def claim_object(self, ref: RepoRef, kind: str, oid: str, size: int | None = None) -> None:
        """Record that ``ref`` may reference and serve object ``kind/oid`` (durable once this returns)."""
        self.claim_objects(ref, kind, {oid: size})

    def claim_objects(self, ref: RepoRef, kind: str, oids: Iterable[str] | Mapping[str, int | None]) -> None:
        """Record ownership of several objects at once (with their sizes when known)."""
        sizes = dict(oids) if isinstance(oids, Mapping) else dict.fromkeys(oids)
        wanted = set(sizes)
        if not wanted:
            return
        ro = schema.repo_objects
        with self.engine.begin() as conn:
            repo_id = lookup_repo_id(conn, ref)
            have = set(
                conn.execute(
                    sa.select(ro.c.oid).where(ro.c.repo_id == repo_id, ro.c.kind == kind, ro.c.oid.in_(wanted))
                ).scalars()
            )
            rows = [{"repo_id": repo_id, "kind": kind, "oid": oid, "size": sizes[oid]} for oid in sorted(wanted - have)]
            if rows:
                try:
                    conn.execute(ro.insert(), rows)
                except IntegrityError:  # a concurrent claim of the same object: already owned
                    pass

    def owned_objects(self, ref: RepoRef, kind: str, oids: Iterable[str]) -> set[str]:
        """The subset of ``oids`` that ``ref`` owns."""
        return set(self.owned_sizes(ref, kind, oids))

    def owned_sizes(self, ref: RepoRef, kind: str, oids: Iterable[str]) -> dict[str, int | None]:
        """The owned subset of ``oids`` with their recorded sizes (None when recorded without one)."""
        wanted = list(set(oids))
        if not wanted:
            return {}
        ro = schema.repo_objects
        owned: dict[str, int | None] = {}
        with self.engine.connect() as conn:
            repo_id = lookup_repo_id(conn, ref)
            for i in range(0, len(wanted), 500):
                query = sa.select(ro.c.oid, ro.c.size).where(
                    ro.c.repo_id == repo_id, ro.c.kind == kind, ro.c.oid.in_(wanted[i : i + 500])
                )
                owned.update((oid, size) for oid, size in conn.execute(query))
        return owned

    # ----------------------------------------------------------------- scans

    def get_scan(self, key: str) -> dict | None:
        """A stored scan verdict."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(schema.scans.c.result).where(schema.scans.c.key == key)).scalar()

    def put_scan(self, key: str, result: dict) -> None:
        """Store a scan verdict (the first one stored wins)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(schema.scans.insert().values(key=key, result=result, scanned_at=utcnow()))
        except IntegrityError:
            pass

    # ----------------------------------------------------------------- locks

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An exclusive lock held by one thread of one process at a time, across every replica."""
        with self._guard:
            thread_lock = self._thread_locks.setdefault(name, threading.Lock())
        with thread_lock:
            if self.is_sqlite:
                with self._file_lock(name):
                    yield
            else:
                with self._advisory_lock(name):
                    yield

    @contextlib.contextmanager
    def _file_lock(self, name: str) -> Iterator[None]:
        assert self._lock_dir is not None, "SQLite metadata needs a lock directory"
        self._lock_dir.mkdir(parents=True, exist_ok=True)
        with open(self._lock_dir / f"{hashlib.sha1(name.encode()).hexdigest()}.lock", "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _advisory_lock(self, name: str) -> Iterator[None]:
        key = int.from_bytes(hashlib.sha1(name.encode()).digest()[:8], "big", signed=True)
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
