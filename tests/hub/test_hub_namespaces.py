"""Namespaces keep their repos (hardening round 2): only a namespace's admins move repos out of it, an old name
never leads into a namespace that took the repo away, and user and organisation names are unique regardless
of case (migration 0003 refuses a database where they are not)."""

from __future__ import annotations

import httpx2 as httpx
import pytest
import sqlalchemy as sa
from alembic import command
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from hub_server import errors
from hub_server.storage import database
from hub_server.storage.models import utcnow


def _status(call) -> int:
    with pytest.raises(HfHubHTTPError) as info:
        call()
    return info.value.response.status_code


@pytest.fixture(scope="module")
def relay(hub) -> dict[str, str]:
    """Organisation ``relay`` with members of its own (the shared users' organisations stay as other tests
    expect them): rhea is its admin, rob writes. Their tokens by role."""
    admin, writer = hub.add_user("rhea"), hub.add_user("rob")
    hub.add_org("relay", {"rhea": "admin", "rob": "write"})
    return {"admin": admin, "writer": writer}


# --------------------------------------------------------------------------- 4. moves across namespaces


def test_a_write_member_cannot_move_the_organisations_repos_away(make_api, relay, repo_name):
    source = f"relay/{repo_name}"
    admin, writer = make_api(relay["admin"]), make_api(relay["writer"])
    admin.create_repo(source, private=True)
    assert _status(lambda: writer.move_repo(source, f"rob/{repo_name}")) == 403
    assert admin.model_info(source).private is True, "the repo stayed where it was"
    with pytest.raises(RepositoryNotFoundError):
        writer.model_info(f"rob/{repo_name}")
    assert _status(lambda: make_api().move_repo(source, f"rob/{repo_name}")) == 401
    # renaming inside the organisation stays a writer's right, and the old name keeps leading to the repo
    writer.move_repo(source, f"relay/{repo_name}-renamed")
    assert writer.model_info(source).id == f"relay/{repo_name}-renamed"


def test_an_old_name_never_leads_into_another_namespace(hub, make_api, relay, repo_name):
    source = f"relay/{repo_name}"
    admin, writer = make_api(relay["admin"]), make_api(relay["writer"])
    admin.create_repo(source)
    admin.upload_file(path_or_fileobj=b"reviewed", path_in_repo="code.py", repo_id=source)
    admin.move_repo(source, f"rhea/{repo_name}")  # the organisation's admin may move it out
    assert admin.model_info(f"rhea/{repo_name}").id == f"rhea/{repo_name}"
    for api in (admin, writer, make_api()):  # the organisation's old name is not rhea's repo
        with pytest.raises(RepositoryNotFoundError):
            api.model_info(source)
    assert httpx.get(f"{hub.url}/{source}/resolve/main/code.py").status_code == 404
    # the organisation can use the name again
    writer.create_repo(source)
    assert writer.list_repo_files(source) == [".gitattributes"]


def test_moving_into_a_namespace_needs_write_there(make_api, alice, relay, repo_name):
    writer = make_api(relay["writer"])
    writer.create_repo(f"rob/{repo_name}")
    assert _status(lambda: writer.move_repo(f"rob/{repo_name}", f"alice/{repo_name}")) == 403
    writer.move_repo(f"rob/{repo_name}", f"relay/{repo_name}")  # his own repo, into an org he writes
    assert make_api(relay["admin"]).model_info(f"relay/{repo_name}").id == f"relay/{repo_name}"


# --------------------------------------------------------------------------- 11. names regardless of case


def test_a_name_in_another_letter_case_cannot_squat_a_namespace(hub, make_api, alice, bob, relay, repo_name):
    with pytest.raises(errors.Conflict, match="'alice'"):
        hub.storage.orgs.add_org("Alice")
    with pytest.raises(errors.Conflict, match="'alice'"):
        hub.storage.add_user("ALICE")
    with pytest.raises(errors.Conflict, match="'alice'"):
        hub.storage.add_user("Alice", exist_ok=True)
    hub.add_org(f"Caps-{repo_name}", {"rob": "write"})
    with pytest.raises(errors.Conflict, match=f"'Caps-{repo_name}'"):
        hub.storage.orgs.add_org(f"caps-{repo_name}")
    # a role is asked as repo ids are: regardless of case
    member = make_api(relay["writer"])
    member.create_repo(f"caps-{repo_name}/model", private=True)
    assert member.model_info(f"CAPS-{repo_name}/model").private is True
    alice_api = make_api(alice)
    alice_api.create_repo(f"ALICE/{repo_name}", private=True)
    assert alice_api.model_info(f"alice/{repo_name}").private is True
    assert f"ALICE/{repo_name}" in [m.id for m in alice_api.list_models(author="alice")]
    with pytest.raises(RepositoryNotFoundError):
        make_api(bob).model_info(f"alice/{repo_name}")


@pytest.fixture
def database_url(tmp_path, hub_backends) -> str:
    """A fresh database of the backend under test (SQLite, or PostgreSQL with ``--hub-backend postgres-s3``)."""
    return hub_backends.postgres.new_database() if hub_backends is not None else f"sqlite:///{tmp_path / 'hub.db'}"


def _database_at_0002(url: str) -> sa.Engine:
    engine = sa.create_engine(database.normalize_url(url))
    config = database._alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
    return engine


def _insert(engine: sa.Engine, table: str, **values) -> None:
    with engine.begin() as conn:
        conn.execute(sa.table(table, *map(sa.column, values)).insert().values(**values))


def test_migration_0003_refuses_names_that_differ_only_in_case(tmp_path, database_url):
    url, engine = database_url, _database_at_0002(database_url)
    for name in ("olga", "Olga", "pat"):
        _insert(engine, "users", name=name, created_at=utcnow())
    _insert(engine, "orgs", name="PAT", fullname="P", created_at=utcnow())
    with pytest.raises(errors.HubError) as refused:
        database.open_metadata(url, lock_dir=tmp_path / "locks")
    message = refused.value.message
    assert "'Olga', 'olga'" in message and "'PAT', 'pat'" in message and "rename" in message
    with engine.connect() as conn:  # nothing was changed: still at 0002, both users kept
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar() == "0002"
        assert conn.execute(sa.text("SELECT count(*) FROM users")).scalar() == 3
    with engine.begin() as conn:  # the operator renames one of each pair, then the upgrade runs
        conn.execute(sa.text("DELETE FROM users WHERE name = 'Olga'"))
        conn.execute(sa.text("UPDATE orgs SET name = 'pat-org' WHERE name = 'PAT'"))
    engine.dispose()
    store = database.open_metadata(url, lock_dir=tmp_path / "locks")
    try:
        with pytest.raises(errors.Conflict, match="'olga'"):
            store.add_user("OLGA")
        with pytest.raises(sa.exc.IntegrityError):  # the database itself holds the rule
            _insert(store.engine, "users", name="OLGA", created_at=utcnow())
    finally:
        store.engine.dispose()


def test_migration_0003_on_a_clean_database(tmp_path, database_url):
    url, engine = database_url, _database_at_0002(database_url)
    _insert(engine, "users", name="olga", created_at=utcnow())
    _insert(engine, "orgs", name="lab", fullname="Lab", created_at=utcnow())
    engine.dispose()
    store = database.open_metadata(url, lock_dir=tmp_path / "locks")
    try:
        assert store.list_users() == ["olga"]
        token = store.create_token("olga")
        assert store.token_info(token).user == "olga"
    finally:
        store.engine.dispose()
