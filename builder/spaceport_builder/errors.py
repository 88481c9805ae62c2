"""Typed errors of the builder that more than one module raises."""

from __future__ import annotations


class BaseImageError(RuntimeError):
    """A base image could not be made; the message says what to do about it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
