"""Opening the metadata database: engine options per backend, schema migrations, clear errors."""

from __future__ import annotations

import contextlib
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from .. import errors
from .sql import SqlMetadataStore

MIGRATIONS = Path(__file__).parent / "migrations"


class ConfigurationError(errors.HubError):
    """The hub cannot start with this configuration (unreachable database, newer schema…)."""

    status = 500
    code = "ConfigurationError"


def default_database_url(root: Path) -> str:
    """SQLite inside the data directory."""
    return f"sqlite:///{root / 'hub.db'}"


def normalize_url(url: str) -> str:
    """``postgresql://`` / ``postgres://`` use the psycopg (3) driver; other URLs are SQLAlchemy's own."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record) -> None:  # WAL: readers never wait for the writer
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _describe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL SQLAlchemy cannot parse is shown as a placeholder
        return "<invalid database URL>"


def migrate(engine: sa.Engine, store: SqlMetadataStore) -> None:
    """Bring the schema to the newest revision this code knows; refuse a schema written by a newer version."""
    config = _alembic_config()
    scripts = ScriptDirectory.from_config(config)
    with store.lock("schema-migration"), engine.begin() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        if current is not None:
            try:
                scripts.get_revision(current)
            except Exception:  # noqa: BLE001 - alembic raises several types for an unknown revision
                raise ConfigurationError(
                    f"the database schema is at revision {current!r}, newer than this hub knows "
                    f"(up to {scripts.get_current_head()!r}); upgrade the hub"
                ) from None
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def open_metadata(url: str, *, lock_dir: Path) -> SqlMetadataStore:
    """Connect, migrate and return the metadata store; ConfigurationError with one clear line on failure."""
    try:
        engine = _engine(normalize_url(url))
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise ConfigurationError(f"invalid database URL {_describe(url)}: {exc}") from None
    store = SqlMetadataStore(engine, lock_dir=lock_dir)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        migrate(engine, store)
    except sa.exc.OperationalError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ConfigurationError(f"cannot use the database {_describe(url)}: {reason}") from None
    return store


@contextlib.contextmanager
def disposing(store: SqlMetadataStore):
    """Close the store's connections on exit."""
    try:
        yield store
    finally:
        store.engine.dispose()
