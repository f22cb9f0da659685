"""The hub's code keeps its rooms: routes declare decoded parameters, modules and functions stay small,
routes use the store interfaces, and the migrations build exactly the declared schema."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hubtools import app_routes

import hub_server
from hub_server import create_app
from hub_server.storage.database import open_metadata
from hub_server.storage.schema import metadata

SRC = Path(hub_server.__file__).parent
CONVERTORS = {"seg", "rpath", "repo", "rtype"}


def test_every_path_parameter_is_decoded_by_a_convertor(tmp_path):
    app = create_app(hub_server.HubStorage(tmp_path))
    bare = []
    routes = app_routes(app.routes)  # through included routers: FastAPI keeps them nested
    assert len(routes) > 60
    for _, path in routes:
        if not path.startswith("/api/docs"):
            for name, convertor in re.findall(r"{(\w+)(?::(\w+))?}", path):
                if convertor not in CONVERTORS:
                    bare.append(f"{path} ({name})")
    assert not bare, bare


def test_modules_and_functions_stay_small():
    too_big = []
    for path in SRC.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        text = path.read_text("utf-8")
        if len(text.splitlines()) > 500:
            too_big.append(f"{path.relative_to(SRC)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= 60:
                too_big.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name}")
    assert not too_big, too_big


def test_routes_talk_to_store_interfaces_only():
    offenders = []
    for path in (SRC / "api").rglob("*.py"):
        text = path.read_text("utf-8")
        if re.search(r"storage\._|lfs_path|\.root\b", text):
            offenders.append(str(path.relative_to(SRC)))
    assert not offenders, offenders


def test_migrations_build_the_declared_schema(tmp_path):
    store = open_metadata(f"sqlite:///{tmp_path / 'hub.db'}", lock_dir=tmp_path / "locks")
    try:
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
    finally:
        store.engine.dispose()


def test_a_schema_from_a_newer_release_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    open_metadata(url, lock_dir=tmp_path / "locks").engine.dispose()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999_future'"))
    engine.dispose()
    try:
        open_metadata(url, lock_dir=tmp_path / "locks")
    except hub_server.errors.HubError as exc:
        assert "newer than this hub" in exc.message and "9999_future" in exc.message
    else:
        raise AssertionError("a newer schema was accepted")
