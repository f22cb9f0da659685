#!/usr/bin/env python
"""Hub compatibility suite: the installed ``huggingface_hub``'s own tests, run against a fresh hub.

The tests come from the client's sdist on the package index (downloaded once with pip into ``.compat/``,
never committed). Only what they need from outside is provided: a ``conftest.py`` (``api``,
``repo_factory``, marker handling) and the constants of ``testing_constants.py`` (endpoint, users and
tokens, created with ``python -m hub_server add-user``). The hub listens on 127.0.0.1 on a free port.

Every test is in scope except those matching ``OUT_OF_SCOPE`` (features the hub does not offer by
design, and tests that read production repos). The run fails when an in-scope test fails or errors and
is not one of the documented ``DELIBERATE`` differences (at most 5).

Usage: ``.venv/bin/python scripts/hub_compat.py [-k EXPR] [--keep]``
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.metadata
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".compat"
SELECTION = [
    "test_hf_api.py",
    "test_file_download.py",
    "test_snapshot_download.py",
    "test_hf_file_system.py",
    "test_commit_api.py",
    "test_lfs.py",
]
USERS = {"USER": "hub-ci-user", "OTHER_USER": "DVUser", "ENTERPRISE_USER": "EnterpriseAdmin"}
ORG = ("valid_org_hub", "Dummy Hub Org", "hub-ci-user:admin")  # the organisation whoami's test expects
TOKENS = {"USER": "TOKEN", "OTHER_USER": "OTHER_TOKEN", "ENTERPRISE_USER": "ENTERPRISE_TOKEN"}

# Out of scope (test id patterns, fnmatch): what the hub does not offer, and what needs huggingface.co itself.
OUT_OF_SCOPE: list[tuple[str, str]] = [
    ("*Inference*", "inference"),
    ("*inference*", "inference"),
    ("*Space*", "Spaces runtime"),
    ("*space_*", "Spaces runtime"),
    ("*_space*", "Spaces runtime"),
    ("*Job*", "jobs"),
    ("*job*", "jobs"),
    ("*Webhook*", "webhooks"),
    ("*webhook*", "webhooks"),
    ("*Billing*", "billing"),
    ("*enterprise*", "enterprise"),
    ("*Enterprise*", "enterprise"),
    ("*private_by_default*", "enterprise (organisation default visibility)"),
    ("*Collection*", "collections"),
    ("*collection*", "collections"),
    ("*Like*", "likes"),
    ("*like*", "likes"),
    ("*Bucket*", "buckets (storage buckets are an enterprise product)"),
    ("*bucket*", "buckets (storage buckets are an enterprise product)"),
]
# Skip reasons (set by the conftest) that make a test out of scope.
OUT_OF_SCOPE_SKIPS = ("production Hub", "api_prod")

# In-scope tests that fail on purpose: test id pattern -> reason (documented in the README's table).
DELIBERATE: dict[str, str] = {
    "tests/test_file_download.py::TestHfHubDownloadRelativePaths::*": (
        "paths with backslashes are refused (422): on Windows they name other folders, so a repo could not be "
        "used safely there; the fixture of these tests uploads `folder/..\\..\\..\\file`"
    ),
}
MAX_DELIBERATE = 5  # tests, not patterns
# In-scope tests that still fail, each tied to the work item that will make it pass (listed, never hidden).
KNOWN_OPEN: dict[str, str] = {}


CONFTEST = '''\
"""Fixtures the client's tests expect (written by scripts/hub_compat.py of the hub's repo)."""

import os

import pytest

from huggingface_hub import HfApi

from .testing_constants import ENDPOINT_STAGING, TOKEN
from .testing_utils import repo_name


@pytest.fixture(scope="session")
def api() -> HfApi:
    return HfApi(endpoint=ENDPOINT_STAGING, token=TOKEN)


@pytest.fixture
def api_prod():
    pytest.skip("api_prod: needs the production Hub")


class RepoFactory:
    """Create repos for a test (``repo_factory("dataset", repo_id=..., token=...)``); deleted afterwards."""

    def __init__(self) -> None:
        self.created = []

    def __call__(self, repo_type=None, *, repo_id=None, token=TOKEN, **kwargs):
        api = HfApi(endpoint=ENDPOINT_STAGING, token=token)
        url = api.create_repo(repo_id=repo_id or repo_name(), repo_type=repo_type, **kwargs)
        self.created.append((api, url.repo_id, url.repo_type))
        return url

    def cleanup(self) -> None:
        for api, repo_id, repo_type in self.created:
            try:
                api.delete_repo(repo_id=repo_id, repo_type=repo_type, missing_ok=True)
            except Exception:
                pass


@pytest.fixture
def repo_factory():
    factory = RepoFactory()
    yield factory
    factory.cleanup()


def _has_xet() -> bool:
    try:
        import hf_xet  # noqa: F401
    except ImportError:
        return False
    return True


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("production") is not None:
            item.add_marker(pytest.mark.skip(reason="production Hub: reads repos of huggingface.co"))
        if item.get_closest_marker("vcr") is not None:
            item.add_marker(pytest.mark.skip(reason="production Hub: replays recorded huggingface.co answers"))
        if item.get_closest_marker("git_lfs") is not None and not os.environ.get("RUN_GIT_LFS_TESTS"):
            item.add_marker(pytest.mark.skip(reason="git-lfs tests need RUN_GIT_LFS_TESTS"))
        if item.get_closest_marker("xet") is not None and not _has_xet():
            item.add_marker(pytest.mark.skip(reason="needs hf_xet"))
        if item.get_closest_marker("no_xet") is not None and _has_xet():
            item.add_marker(pytest.mark.skip(reason="runs without hf_xet only"))
'''

PYTEST_INI = """\
[pytest]
markers =
    api: api suite
    transfer: transfer suite
    inference: inference suite
    xet: needs hf_xet
    no_xet: without hf_xet
    production: production Hub
    deprecated: expects a FutureWarning
    git_lfs: needs git-lfs
    vcr: recorded answers
"""


def log(message: str) -> None:
    print(f"[hub-compat] {message}", flush=True)


def sdist_tests(version: str) -> Path:
    """The ``tests/`` folder of the client's sdist, downloaded once into ``.compat/``."""
    CACHE.mkdir(exist_ok=True)
    archive = CACHE / f"huggingface_hub-{version}.tar.gz"
    if not archive.exists():
        log(f"downloading the huggingface_hub {version} sdist")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", f"huggingface_hub=={version}", "--no-binary", ":all:"]
            + ["--no-deps", "--no-build-isolation", "-q", "-d", str(CACHE)],
            check=True,
        )
    source = CACHE / f"huggingface_hub-{version}"
    if not (source / "tests").is_dir():
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(f"huggingface_hub-{version}/tests/")]
            tar.extractall(CACHE, members=members, filter="data")
    return source / "tests"


def plugin_dir() -> Path:
    """pytest-mock (the tests' ``mocker`` fixture), installed once into ``.compat/deps``."""
    target = CACHE / "deps"
    if not (target / "pytest_mock").is_dir():
        log("installing pytest-mock into .compat/deps")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), "pytest-mock"],
            check=True,
        )
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def add_user(root: Path, name: str) -> str:
    """A user and write token, through the hub's own command line."""
    out = subprocess.run(
        [sys.executable, "-m", "hub_server", "add-user", name, "--root", str(root)],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def add_org(root: Path, name: str, fullname: str, member: str) -> None:
    """An organisation with one member, through the hub's own command line."""
    command = ["add-org", name, "--fullname", fullname, "--member", member, "--root", str(root)]
    subprocess.run([sys.executable, "-m", "hub_server", *command], check=True, capture_output=True, text=True)


def start_hub(root: Path, port: int, logfile) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hub_server", "serve", "--root", str(root), "--port", str(port)]
        + ["--log-level", "warning"],
        stdout=logfile,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the hub exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the hub did not start within 60 s")


def prepare(tests: Path, work: Path, endpoint: str, tokens: dict[str, str]) -> Path:
    """A copy of the client's tests with our conftest and constants."""
    dest = work / "tests"
    shutil.copytree(tests, dest)
    (work / "pytest.ini").write_text(PYTEST_INI)
    (dest / "conftest.py").write_text(CONFTEST)
    (dest / "__init__.py").touch()
    constants = dest / "testing_constants.py"
    text = constants.read_text()
    values = {"ENDPOINT_STAGING": endpoint, "FULL_NAME": USERS["USER"], **USERS}
    values.update({TOKENS[k]: tokens[k] for k in USERS})
    for name, value in values.items():
        text, count = re.subn(rf"^{name} = .*$", f"{name} = {value!r}", text, flags=re.M)
        if count != 1:
            raise RuntimeError(f"testing_constants.py has no single {name} assignment")
    constants.write_text(text)
    return dest


def classify(nodeid: str, skip_message: str | None) -> str | None:
    """The out-of-scope reason of a test, or None when it is in scope."""
    for pattern, reason in OUT_OF_SCOPE:
        if fnmatch.fnmatchcase(nodeid, pattern):
            return reason
    if skip_message and any(s in skip_message for s in OUT_OF_SCOPE_SKIPS):
        return "reads production repos"
    return None


def listed(table: dict[str, str], nodeid: str) -> str | None:
    """The reason ``table`` gives for a test, or None."""
    return next((reason for pattern, reason in table.items() if fnmatch.fnmatchcase(nodeid, pattern)), None)


def read_results(junit: Path) -> list[tuple[str, str, str]]:
    """``(test id, outcome, message)`` per test case of a junit xml report."""
    out = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        nodeid = f"{case.get('classname', '').replace('.', '/')}::{case.get('name')}"
        nodeid = re.sub(r"^tests/(test_\w+)/", r"tests/\1.py::", nodeid)
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (element.get("message") or "").splitlines()[0][:200] if element.get("message") else ""
                break
        out.append((nodeid, outcome, message))
    return out


def report(results: list[tuple[str, str, str]]) -> int:
    counts: dict[str, dict[str, int]] = {"in": {}, "out": {}}
    failing: dict[str, list[str]] = {"unexpected": [], "deliberate": [], "open": [], "stale": []}
    for nodeid, outcome, message in results:
        scope = "out" if classify(nodeid, message if outcome == "skipped" else None) else "in"
        counts[scope][outcome] = counts[scope].get(outcome, 0) + 1
        if scope == "in" and outcome in ("failed", "error"):
            kind = (
                "deliberate" if listed(DELIBERATE, nodeid) else "open" if listed(KNOWN_OPEN, nodeid) else "unexpected"
            )
            failing[kind].append(f"{nodeid} [{outcome}] {message}")
        elif scope == "in" and outcome == "passed" and listed({**DELIBERATE, **KNOWN_OPEN}, nodeid):
            failing["stale"].append(nodeid)  # listed as failing, yet passes: the list must say what is true
    for line in sorted(failing["unexpected"]):
        log(f"FAIL {line}")
    for line in sorted(failing["deliberate"]):
        log(f"deliberate difference: {line.split(' [')[0]} ({listed(DELIBERATE, line.split(' [')[0])})")
    for line in sorted(failing["open"]):
        log(f"known open: {line.split(' [')[0]} ({listed(KNOWN_OPEN, line.split(' [')[0])})")
    total_in, passed = sum(counts["in"].values()), counts["in"].get("passed", 0)
    log(
        f"in scope: {total_in} tests, {passed} passed, {len(failing['deliberate'])} deliberate differences, "
        f"{len(failing['open'])} known open, {len(failing['unexpected'])} failing, "
        f"{counts['in'].get('skipped', 0)} skipped"
    )
    log(f"out of scope: {sum(counts['out'].values())} tests ({counts['out']})")
    if len(failing["deliberate"]) > MAX_DELIBERATE:
        log(f"too many deliberate differences ({len(failing['deliberate'])} > {MAX_DELIBERATE})")
        return 1
    for nodeid in sorted(failing["stale"]):
        log(f"STALE {nodeid} passes: take it off DELIBERATE / KNOWN_OPEN")
    return 1 if failing["unexpected"] or failing["stale"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", help="pytest -k expression (a subset, for debugging)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (printed)")
    parser.add_argument("--timeout", type=int, default=1500, help="seconds before the test run is stopped")
    parser.add_argument("--no-xet", action="store_true", help="run the client with HF_HUB_DISABLE_XET=1 (LFS uploads)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    version = importlib.metadata.version("huggingface_hub")
    tests = sdist_tests(version)
    deps = plugin_dir()
    work = Path(tempfile.mkdtemp(prefix="hub-compat-", dir=CACHE))
    try:
        hub_root = work / "hub"
        tokens = {key: add_user(hub_root, name) for key, name in USERS.items()}
        add_org(hub_root, *ORG)
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        dest = prepare(tests, work, endpoint, tokens)
        with open(work / "hub.log", "wb") as hub_log:
            hub = start_hub(hub_root, port, hub_log)
            try:
                junit = work / "junit.xml"
                env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
                env.update(
                    HF_ENDPOINT=endpoint,
                    HF_HOME=str(work / "hf-home"),
                    HF_HUB_DISABLE_TELEMETRY="1",
                    DISABLE_SYMLINKS_IN_WINDOWS_TESTS="1",
                    PYTHONPATH=os.pathsep.join([str(deps), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
                    NO_PROXY="127.0.0.1,localhost",
                )
                if args.no_xet:
                    env["HF_HUB_DISABLE_XET"] = "1"
                command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "pytest_mock"]
                command += ["--junitxml", str(junit), "-o", "junit_family=xunit1", "--rootdir", str(work)]
                command += [str(dest / name) for name in SELECTION] + (["-k", args.k] if args.k else [])
                log(f"huggingface_hub {version} tests against {endpoint} ({', '.join(SELECTION)})")
                with open(work / "pytest.log", "wb") as out:
                    subprocess.run(
                        command, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=args.timeout
                    )
            finally:
                hub.terminate()
                hub.wait(timeout=30)
        if not junit.exists():
            log(f"pytest wrote no report; see {work / 'pytest.log'}" if args.keep else "pytest wrote no report")
            return 1
        status = report(read_results(junit))
        log(f"runtime {time.monotonic() - started:.0f} s" + (f"; logs in {work}" if args.keep else ""))
        return status
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
