"""The metadata database's tables (SQLAlchemy Core); Alembic migrations under ``migrations/`` create them."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Time = sa.DateTime(timezone=True)

users = sa.Table(
    "users",
    metadata,
    sa.Column("name", sa.String(96), primary_key=True),
    sa.Column("created_at", Time, nullable=False),
)
# User and organisation names are unique regardless of case, as repo ids are (``Alice`` cannot squat ``alice``).
sa.Index("uq_users_name_lower", sa.func.lower(users.c.name), unique=True)

tokens = sa.Table(
    "tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("user", sa.String(96), sa.ForeignKey("users.name", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("expires_at", Time, nullable=True),
    sa.Column("revoked_at", Time, nullable=True),
)

# Organisations share the users' namespace: a name is a user or an organisation, never both.
orgs = sa.Table(
    "orgs",
    metadata,
    sa.Column("name", sa.String(96), primary_key=True),
    sa.Column("fullname", sa.String(200), nullable=False),
    sa.Column("created_at", Time, nullable=False),
)
sa.Index("uq_orgs_name_lower", sa.func.lower(orgs.c.name), unique=True)

org_members = sa.Table(
    "org_members",
    metadata,
    sa.Column("org", sa.String(96), sa.ForeignKey("orgs.name", ondelete="CASCADE"), primary_key=True),
    sa.Column("user", sa.String(96), sa.ForeignKey("users.name", ondelete="CASCADE"), primary_key=True, index=True),
    sa.Column("role", sa.String(16), nullable=False),  # read, write or admin
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("session_hash", sa.String(64), primary_key=True),
    sa.Column("user", sa.String(96), sa.ForeignKey("users.name", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("expires_at", Time, nullable=False),
    # the token the session was opened with: revoked or expired, the session ends with it
    sa.Column("token_id", sa.Integer, sa.ForeignKey("tokens.id", ondelete="CASCADE"), nullable=False, index=True),
)

repos = sa.Table(
    "repos",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("namespace", sa.String(96), nullable=False),
    sa.Column("name", sa.String(96), nullable=False),
    # type/namespace/name, lower-cased: repo ids are unique regardless of case
    sa.Column("name_key", sa.String(220), nullable=False, unique=True),
    sa.Column("owner", sa.String(96), nullable=False, index=True),
    sa.Column("private", sa.Boolean, nullable=False),
    sa.Column("created_at", Time, nullable=False),
)

repo_objects = sa.Table(
    "repo_objects",
    metadata,
    sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("oid", sa.String(128), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=True),
)

scans = sa.Table(
    "scans",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("result", sa.JSON, nullable=False),
    sa.Column("scanned_at", Time, nullable=False),
)

# Discussions and pull requests (a PR's commits live on the git ref refs/pr/<num>).
discussions = sa.Table(
    "discussions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), nullable=False),
    sa.Column("num", sa.Integer, nullable=False),
    sa.Column("is_pr", sa.Boolean, nullable=False),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("author", sa.String(96), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # open, closed, merged, draft
    sa.Column("created_at", Time, nullable=False),
    sa.Column("target_branch", sa.String(220), nullable=True),
    sa.Column("merge_commit", sa.String(40), nullable=True),
    sa.UniqueConstraint("repo_id", "num", name="uq_discussions_repo_num"),
)

discussion_events = sa.Table(
    "discussion_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(24), nullable=False, unique=True),
    sa.Column(
        "discussion_id", sa.Integer, sa.ForeignKey("discussions.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    sa.Column("type", sa.String(24), nullable=False),  # comment, status-change, commit, title-change
    sa.Column("author", sa.String(96), nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
)

# Gated repos: who must ask before downloading, and the requests.
gated_repos = sa.Table(
    "gated_repos",
    metadata,
    sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("mode", sa.String(16), nullable=False),  # auto, manual
)

access_requests = sa.Table(
    "access_requests",
    metadata,
    sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("user", sa.String(96), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # pending, accepted, rejected
    sa.Column("created_at", Time, nullable=False),
    sa.Column("fields", sa.JSON, nullable=True),
)

# Old names of moved repos: requests to an old name reach the repo (until a repo takes the name again).
repo_redirects = sa.Table(
    "repo_redirects",
    metadata,
    sa.Column("name_key", sa.String(220), primary_key=True),
    sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), nullable=False),
)

# --------------------------------------------------------------------------- Xet CAS (storage/xet_index.py)
# Hashes are stored in their text form (64 hex). Which repo may use a xorb is ``repo_objects`` with kind
# "xorb" (uploaded to it) or "xorb-dedup" (granted by a global-dedup answer while readable).

xet_xorbs = sa.Table(
    "xet_xorbs",
    metadata,
    sa.Column("hash", sa.String(64), primary_key=True),
    sa.Column("chunk_count", sa.Integer, nullable=False),
    sa.Column("raw_size", sa.BigInteger, nullable=False),
    sa.Column("stored_size", sa.BigInteger, nullable=False),
    # ChunkTable.to_bytes(): hash, serialized end offset and raw size of every chunk
    sa.Column("chunk_table", sa.LargeBinary, nullable=False),
    sa.Column("created_at", Time, nullable=False),
)

xet_files = sa.Table(
    "xet_files",
    metadata,
    sa.Column("repo_id", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("file_hash", sa.String(64), primary_key=True),
    # verified by the server against the reconstructed bytes before the row is written
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    # the file's terms, 44 bytes each (xorb hash, first chunk, end chunk, raw size)
    sa.Column("terms", sa.LargeBinary, nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Index("ix_xet_files_repo_sha256", "repo_id", "sha256"),
    sa.Index("ix_xet_files_file_hash", "file_hash"),
)

xet_chunks = sa.Table(
    "xet_chunks",
    metadata,
    # the global-dedup index: chunks a client may ask about, and the xorbs holding them
    sa.Column("chunk_hash", sa.String(64), primary_key=True),
    sa.Column("xorb_hash", sa.String(64), sa.ForeignKey("xet_xorbs.hash", ondelete="CASCADE"), primary_key=True),
)
