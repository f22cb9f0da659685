"""The JSON API, git and LFS routes: one router per resource under ``routes/``, composed in ``main``."""
