"""organisations and their members

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 01:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orgs",
        sa.Column("name", sa.String(length=96), nullable=False),
        sa.Column("fullname", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_orgs")),
    )
    op.create_table(
        "org_members",
        sa.Column("org", sa.String(length=96), nullable=False),
        sa.Column("user", sa.String(length=96), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["org"], ["orgs.name"], name=op.f("fk_org_members_org_orgs"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user"], ["users.name"], name=op.f("fk_org_members_user_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("org", "user", name=op.f("pk_org_members")),
    )
    with op.batch_alter_table("org_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_org_members_user"), ["user"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("org_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_org_members_user"))
    op.drop_table("org_members")
    op.drop_table("orgs")
