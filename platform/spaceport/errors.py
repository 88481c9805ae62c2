"""Typed errors shared by the control plane; the API maps them to HTTP answers in one place."""

from __future__ import annotations


class SpaceportError(Exception):
    """Base class: `str(err)` is a message for the person who can fix it."""

    status_code = 400
    error_code: str | None = None


class NotFound(SpaceportError):
    status_code = 404


class RepoNotFound(NotFound):
    error_code = "RepoNotFound"


class Unauthorized(SpaceportError):
    status_code = 401


class Forbidden(SpaceportError):
    status_code = 403


class Conflict(SpaceportError):
    status_code = 409
