"""Property-based requests generated from the server's OpenAPI schema never produce a 5xx."""

from __future__ import annotations

import itertools

import pytest

schemathesis = pytest.importorskip("schemathesis")
import base64  # noqa: E402
import json  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402

from hub_server import running_hub  # noqa: E402


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx, value) -> bytes:
    """Half the bodies as raw text, half as a well-formed commit whose file path is the generated text."""
    text = value if isinstance(value, str) else json.dumps(value)
    if len(text) % 2:
        return text.encode("utf-8", "surrogatepass")
    lines = [
        {"key": "header", "value": {"summary": "fuzz"}},
        {
            "key": "file",
            "value": {"path": text, "content": base64.b64encode(text.encode()).decode(), "encoding": "base64"},
        },
    ]
    return "\n".join(json.dumps(line) for line in lines).encode()


@schemathesis.serializer("application/x-git-upload-pack-request")
def _git_request(ctx, value) -> bytes:
    """Generated text as the negotiation body."""
    return (value if isinstance(value, str) else json.dumps(value)).encode("utf-8", "surrogatepass")


EXAMPLES_PER_OPERATION = 40
MIN_REQUESTS = 1000


@pytest.mark.slow
def test_generated_requests_never_get_a_5xx(tmp_path):
    from huggingface_hub import HfApi

    with running_hub(tmp_path / "root") as hub:
        token = hub.add_user("fuzzer")
        api = HfApi(endpoint=hub.url, token=token)
        api.create_repo("repo")
        api.upload_file(path_or_fileobj=b"hello", path_in_repo="dir/a.txt", repo_id="fuzzer/repo")
        api.upload_file(path_or_fileobj=b"\0" * 300, path_in_repo="w.bin", repo_id="fuzzer/repo")
        api.create_tag("fuzzer/repo", tag="v1")
        schema = schemathesis.openapi.from_url(f"{hub.url}/api/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) > 20
        counter = itertools.count()
        server_errors: list[str] = []
        sent = 0

        for operation in operations:

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy())
            def check(case) -> None:
                nonlocal sent
                n = next(counter)
                # Point half the requests at a real repo so they reach past the repo lookup.
                if n % 2 and case.path_parameters and "namespace" in case.path_parameters:
                    case.path_parameters["namespace"] = "fuzzer"
                    case.path_parameters["name"] = "repo"
                headers = {"Authorization": f"Bearer {token}"} if n % 3 else {}
                response = case.call(headers=headers, timeout=30)
                sent += 1
                if response.status_code >= 500:
                    server_errors.append(
                        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}"
                    )

            check()
        assert not server_errors, "\n".join(server_errors[:20])
        assert sent >= MIN_REQUESTS
        assert api.list_repo_files("fuzzer/repo")
