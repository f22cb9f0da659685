"""The sniffer parses, never guesses (hardening round 2): a stream that parses as a complete pickle is a pickle even
when it names nothing, every pickle in a file is read, and text that merely starts with an opcode letter is text."""

from __future__ import annotations

import base64
import io
import os
import pickle
import random

import pytest
import torch
from test_hub_scan_content import evil_pickle, refused

from hub_server.scanning.detect import sniff
from hub_server.scanning.emulator import scan_pickle_bytes

os_module = os.system.__module__  # posix (or nt): where pickle finds os.system


@pytest.mark.parametrize("first", [b"I1001\n.", b"N.", pickle.dumps(1001, protocol=0), pickle.dumps(2**70, protocol=1)])
def test_a_first_pickle_that_names_nothing_does_not_hide_the_next(repo, first):
    """torch's legacy format is several pickles in a row: a loader reads the second one too."""
    api, repo_id = repo
    data = first + evil_pickle(protocol=2)
    assert sniff(data) == "pickle"
    assert [os_module, "system"] in scan_pickle_bytes(data)["globals"]
    message = refused(api, repo_id, data, "pytorch_model.bin")
    assert "system" in message


def test_a_legacy_torch_checkpoint_is_still_accepted(repo):
    api, repo_id = repo
    buffer = io.BytesIO()
    state = {"weight": torch.arange(12, dtype=torch.float32).reshape(3, 4), "bias": torch.zeros(3)}
    torch.save(state, buffer, _use_new_zipfile_serialization=False)
    data = buffer.getvalue()
    assert sniff(data) == "pickle" and scan_pickle_bytes(data)["pickles"] >= 4
    api.upload_file(path_or_fileobj=data, path_in_repo="legacy.bin", repo_id=repo_id)
    reloaded = torch.load(api.hf_hub_download(repo_id, "legacy.bin"), weights_only=True)
    assert torch.equal(reloaded["weight"], state["weight"])


def _text(letter: bytes, seed: int) -> bytes:
    """A one-line text file over 1 MiB (base64 or hex of seeded bytes) that starts with ``letter``."""
    rng = random.Random(seed)
    body = base64.b64encode(rng.randbytes(900_000)) if seed % 2 else rng.randbytes(600_000).hex().encode()
    return letter + body


@pytest.mark.parametrize("letter", [b"c", b"i", b"S", b"L", b"I", b"F", b"V", b"g"])
def test_long_text_that_starts_with_an_opcode_letter_is_accepted(repo, letter):
    api, repo_id = repo
    for seed in (1, 2):
        data = _text(letter, seed)
        assert len(data) > 1 << 20
        api.upload_file(path_or_fileobj=data, path_in_repo=f"dump-{seed}.txt", repo_id=repo_id)
    [info] = api.get_paths_info(repo_id, ["dump-1.txt"], expand=True)
    assert info.size == len(_text(letter, 1))


def test_a_pickle_followed_by_raw_data_is_read_and_judged(repo):
    """A complete pickle, then bytes that are no pickle (a legacy checkpoint's storages): judged by its globals."""
    api, repo_id = repo
    tail = random.Random(3).randbytes(100_000)
    api.upload_file(path_or_fileobj=b"I1001\n." + tail, path_in_repo="raw.bin", repo_id=repo_id)
    data = pickle.dumps({"a": 1}, protocol=0) + evil_pickle(protocol=0) + tail
    assert "system" in refused(api, repo_id, data, "model.bin")
