"""Map typed errors to HTTP answers in one place, in the shape huggingface_hub reads.

The client reads `X-Error-Code` (e.g. RepoNotFound) and `X-Error-Message` headers and the
JSON body's `error` field to build its own exceptions.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

from spaceport.errors import SpaceportError
from spaceport.names import InvalidName


def error_response(
    status: int, message: str, code: str | None = None, **extra: object
) -> JSONResponse:
    # A header value must be printable ASCII: the message may quote what the caller sent
    # (control characters, newlines, unicode); escaped, never a broken response.
    headers = {"X-Error-Message": message.encode("unicode_escape").decode("ascii")[:500]}
    if code:
        headers["X-Error-Code"] = code
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(SpaceportError)
    async def _spaceport_error(_: Request, exc: SpaceportError) -> JSONResponse:
        return error_response(exc.status_code, str(exc), exc.error_code)

    # Connection-level database failures (server gone, refused, locked): a clear 503. Errors
    # in a query (a bug) stay 500s, logged with their traceback.
    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(DisconnectionError)
    async def _database_down(_: Request, exc: Exception) -> JSONResponse:
        response = error_response(
            503,
            "The database does not answer right now (restarting or unreachable); nothing was "
            "changed. Try again in a moment.",
        )
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(InvalidName)
    async def _invalid_name(_: Request, exc: InvalidName) -> JSONResponse:
        return error_response(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{loc}: {err.get('msg')}")
        return error_response(422, "Invalid request: " + "; ".join(parts))
