"""user and organisation names unique regardless of case; sessions tied to the token they were opened with

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 10:00:00

Names that differ only in letter case (``alice`` and ``Alice``, a user and an organisation alike) are reported
and the upgrade is refused: which of them owns what cannot be decided here, so nothing is merged or renamed
silently. Sessions opened before cannot be tied to a token: they end (their users log in again).
"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def name_collisions(conn: sa.Connection) -> list[str]:
    """Each group of user and organisation names equal regardless of case, as one line of text."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for kind, table in (("user", "users"), ("organisation", "orgs")):
        for (name,) in conn.execute(sa.text(f"SELECT name FROM {table}")):  # noqa: S608 - fixed table names
            groups.setdefault(name.lower(), []).append((name, kind))
    lines = []
    for found in sorted(groups.values()):
        if len(found) > 1:
            names = ", ".join(repr(name) for name, _ in sorted(found))
            lines.append(f"{names} ({', '.join(kind for _, kind in sorted(found))})")
    return lines


def upgrade() -> None:
    collisions = name_collisions(op.get_bind())
    if collisions:
        from hub_server.storage.database import ConfigurationError

        raise ConfigurationError(
            "cannot upgrade the database to revision 0003: user and organisation names must differ regardless "
            f"of letter case, and these do not: {'; '.join(collisions)}. Nothing was changed: rename or remove "
            "all but one name of each group, then start the hub again."
        )
    op.create_index("uq_users_name_lower", "users", [sa.text("lower(name)")], unique=True)
    op.create_index("uq_orgs_name_lower", "orgs", [sa.text("lower(name)")], unique=True)
    op.execute(sa.text("DELETE FROM sessions"))
    with warnings.catch_warnings(), op.batch_alter_table("sessions", schema=None) as batch_op:
        # SQLite's batch copy reflects the tables sessions refers to; SQLAlchemy cannot reflect the two
        # expression indexes above (they are not copied: only sessions is rebuilt)
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index")
        batch_op.add_column(sa.Column("token_id", sa.Integer(), nullable=False))
        batch_op.create_index(batch_op.f("ix_sessions_token_id"), ["token_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_sessions_token_id_tokens"), "tokens", ["token_id"], ["id"], ondelete="CASCADE"
        )


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_sessions_token_id_tokens"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_sessions_token_id"))
        batch_op.drop_column("token_id")
    op.drop_index("uq_orgs_name_lower", table_name="orgs")
    op.drop_index("uq_users_name_lower", table_name="users")
