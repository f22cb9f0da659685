"""Errors the CLI reports as one line on stderr with exit status 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: a wrong argument, a missing file, a refused action."""


class CheckFailed(Exception):
    """A check ran and its answer is no (parity broken, code differs): exit status 1."""
