"""Organisations: shared namespaces whose members read (and, with a write or admin role, write) its repos.

A name belongs to a user or to an organisation, never both. A user's role in a namespace is ``admin`` in their
own, their membership role in an organisation's, and None elsewhere.
"""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .. import errors
from . import schema
from .models import utcnow, validate_name
from .sql import name_taken, taken_message

ROLES = ("read", "write", "admin")
WRITE_ROLES = ("write", "admin")


@dataclasses.dataclass(frozen=True)
class Membership:
    """An organisation a user belongs to, and the user's role there."""

    org: str
    fullname: str
    role: str


def check_role(role: str) -> str:
    """``role`` when it is a membership role; BadRequest naming the allowed values otherwise."""
    if role not in ROLES:
        raise errors.BadRequest(f"Invalid role {role!r}: expected one of {', '.join(ROLES)}")
    return role


class SqlOrgStore:
    """Organisations and their members in the metadata database."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def add_org(self, name: str, *, fullname: str | None = None, exist_ok: bool = False) -> None:
        """Create an organisation; Conflict when the name (in any letter case) is a user's, or an organisation's
        (unless it is this one and ``exist_ok``)."""
        validate_name(name, "organisation name")
        with self.engine.begin() as conn:
            taken = name_taken(conn, name)
            if taken == ("organisation", name) and exist_ok:
                return
            if taken == ("organisation", name):
                raise errors.Conflict(f"Organisation {name!r} already exists")
            if taken is not None:
                raise errors.Conflict(taken_message(taken, "an organisation"))
            try:
                with conn.begin_nested():
                    conn.execute(schema.orgs.insert().values(name=name, fullname=fullname or name, created_at=utcnow()))
            except IntegrityError:  # created concurrently
                if not exist_ok:
                    raise errors.Conflict(f"Organisation {name!r} already exists") from None

    def is_org(self, name: str) -> bool:
        """Whether ``name`` is an organisation."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(schema.orgs.c.name).where(schema.orgs.c.name == name)).first() is not None

    def set_member(self, org: str, user: str, role: str = "write") -> None:
        """Add ``user`` to ``org`` with ``role`` (or change the role); NotFound for an unknown org or user."""
        check_role(role)
        m = schema.org_members
        with self.engine.begin() as conn:
            if not conn.execute(sa.select(schema.orgs.c.name).where(schema.orgs.c.name == org)).first():
                raise errors.NotFound(f"Organisation {org!r} does not exist")
            if not conn.execute(sa.select(schema.users.c.name).where(schema.users.c.name == user)).first():
                raise errors.NotFound(f"User {user!r} does not exist")
            conn.execute(m.delete().where(m.c.org == org, m.c.user == user))
            conn.execute(m.insert().values(org=org, user=user, role=role))

    def remove_member(self, org: str, user: str) -> bool:
        """Take ``user`` out of ``org``; False when they were not a member."""
        m = schema.org_members
        with self.engine.begin() as conn:
            return conn.execute(m.delete().where(m.c.org == org, m.c.user == user)).rowcount > 0

    def members(self, org: str) -> dict[str, str]:
        """An organisation's members and their roles."""
        m = schema.org_members
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(m.c.user, m.c.role).where(m.c.org == org).order_by(m.c.user)).all()
        return {row.user: row.role for row in rows}

    def memberships(self, user: str) -> list[Membership]:
        """The organisations ``user`` belongs to, by name."""
        m, o = schema.org_members, schema.orgs
        query = sa.select(o.c.name, o.c.fullname, m.c.role).join(m, m.c.org == o.c.name).where(m.c.user == user)
        with self.engine.connect() as conn:
            return [Membership(r.name, r.fullname, r.role) for r in conn.execute(query.order_by(o.c.name))]

    def role_in(self, namespace: str, user: str | None) -> str | None:
        """``user``'s role in ``namespace``: admin of their own, their role in an organisation's, else None.

        Namespaces compare regardless of case, as repo ids do (names are unique regardless of case).
        """
        if user is None:
            return None
        if user.lower() == namespace.lower():
            return "admin"
        m = schema.org_members
        query = sa.select(m.c.role).where(sa.func.lower(m.c.org) == namespace.lower(), m.c.user == user)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()
