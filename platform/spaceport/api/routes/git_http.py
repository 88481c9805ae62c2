"""Git smart HTTP: `git clone/push {SPACEPORT_URL}/spaces/{owner}/{name}` via `git http-backend`.

The request body and the CGI's answer are streamed, so a large push never sits in memory.
After a receive-pack finishes, a moved `main` starts a build of the new commit.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from spaceport.api.deps import client_address, header_principal
from spaceport.db.session import get_session, session_scope
from spaceport.errors import Unauthorized
from spaceport.git import browse
from spaceport.git.pre_receive import REFUSE_MAIN
from spaceport.git.repos import head_sha, repo_path
from spaceport.services import access, audit, quotas, spaces
from spaceport.settings import get_settings

router = APIRouter(include_in_schema=False)
log = structlog.get_logger(__name__)

GIT_BACKEND = "/usr/lib/git-core/git-http-backend"
SERVICES = {"git-upload-pack", "git-receive-pack"}


def _deny(status: int, message: str) -> Response:
    # git prints a text/plain body as "remote: ..." lines, so the reason reaches the terminal.
    headers = {"WWW-Authenticate": 'Basic realm="Spaceport"'} if status == 401 else {}
    return PlainTextResponse(message + "\n", status_code=status, headers=headers)


def _record_last_use(session: Session) -> None:
    try:
        session.commit()
    except OperationalError as exc:  # locked by a long write elsewhere: skip this once
        session.rollback()
        log.info("git.last_use_skipped", error=str(exc)[:200])


@router.api_route(
    "/spaces/{owner}/{name}/{git_path:path}", methods=["GET", "POST"], name="git_http"
)
async def git_http(
    owner: str,
    name: str,
    git_path: str,
    request: Request,
    session: Session = Depends(get_session),
) -> Response:
    try:
        # git sends credentials only after a 401, so anonymous reads of public repos still
        # work; credentials it does send (URL password after a challenge, CI's extraHeader)
        # are checked. A text/plain body reaches the terminal as "remote: ...".
        user = header_principal(request, session)
    except Unauthorized as exc:
        return _deny(401, f"{exc}: the token is invalid, expired or revoked")
    name = name.removesuffix(".git")
    service = request.query_params.get("service") or git_path.rsplit("/", 1)[-1]
    if git_path not in ("info/refs", "git-upload-pack", "git-receive-pack") or (
        service not in SERVICES
    ):
        return PlainTextResponse("Not found\n", status_code=404)
    space = spaces.find_space(session, owner, name)
    write = service == "git-receive-pack"
    decision = access.git_access(space, user, write=write)
    if decision is not None:
        return _deny(*decision)
    assert space is not None
    settings = get_settings()
    repo = repo_path(settings, space.owner, space.name)
    receiving = write and git_path == "git-receive-pack"
    before = head_sha(repo) if receiving else None
    refs_before = dict(browse.refs(repo)) if receiving else {}
    # A push to main starts a build: over quota, the pre-receive hook refuses main (other
    # branches still land) and git prints why; nothing runs or stops because of it.
    refusal = quotas.build_refusal(session, settings, space) if receiving else None
    space_pk = space.id
    pusher = audit.Actor.of(user, client_address(request))  # plain strings: outlive the session
    # The token's last use (lookup_token), shown on the tokens page: recorded when the
    # database allows, never at the cost of the push or clone (nor of the event loop).
    await asyncio.to_thread(_record_last_use, session)
    session.close()

    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_PROJECT_ROOT": str(settings.repos_dir),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": f"/{space.owner}/{space.name}.git/{git_path}",
        "REQUEST_METHOD": request.method,
        "QUERY_STRING": request.url.query,
        "CONTENT_TYPE": request.headers.get("content-type", ""),
        "REMOTE_USER": user.name if user else "",
        "REMOTE_ADDR": request.client.host if request.client else "",
        "GIT_CONFIG_NOSYSTEM": "1",
        "HOME": str(settings.run_dir),
        # The pre-receive hook reads the node's limits from the same settings.
        **{k: v for k, v in os.environ.items() if k.startswith("SPACEPORT_")},
    }
    if refusal is not None:
        env[REFUSE_MAIN] = refusal
    if pythonpath := os.environ.get("PYTHONPATH"):  # the hook imports the API's own spaceport
        env["PYTHONPATH"] = pythonpath
    if length := request.headers.get("content-length"):
        env["CONTENT_LENGTH"] = length
    if enc := request.headers.get("content-encoding"):
        env["HTTP_CONTENT_ENCODING"] = enc
    if proto := request.headers.get("git-protocol"):
        env["GIT_PROTOCOL"] = proto
    proc = await asyncio.create_subprocess_exec(
        GIT_BACKEND,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin and proc.stdout and proc.stderr
    feeder = asyncio.create_task(_feed(request, proc.stdin))
    stderr_task = asyncio.create_task(_log_stderr(proc.stderr))
    status, headers = await _read_cgi_headers(proc.stdout)

    async def body() -> AsyncIterator[bytes]:
        assert proc.stdout
        while chunk := await proc.stdout.read(65536):
            yield chunk
        # git has answered. Normally the upload is complete too; if git refused it early, the
        # rest of the upload is not worth waiting for: drop it (the connection closes).
        try:
            await asyncio.wait_for(feeder, timeout=2)
        except TimeoutError:
            log.info("git.upload_abandoned")
        await proc.wait()
        await stderr_task
        if git_path == "git-receive-pack":
            await asyncio.to_thread(_after_push, space_pk, before, refs_before, pusher)

    return GitResponse(body(), status_code=status, headers=headers)


class GitResponse(StreamingResponse):
    """Stream git's answer without listening for disconnects.

    Starlette's StreamingResponse watches for a disconnect by calling `receive()`, which would
    swallow request-body chunks our feeder still needs (git answers while the push uploads).
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.stream_response(send)


async def _feed(request: Request, stdin: asyncio.StreamWriter) -> None:
    """Stream the request body to git. If git stops reading (it refused the push, e.g. over the
    size limit, and says why on stdout), keep reading and discarding the rest of the upload so
    the client can finish sending and then read git's answer instead of hanging."""
    accepting = True
    try:
        chunks = request.stream()
        async for chunk in chunks:
            if not accepting:
                continue
            try:
                if stdin.is_closing():
                    raise BrokenPipeError("git closed its input")
                stdin.write(chunk)
                await stdin.drain()
            except (BrokenPipeError, ConnectionResetError, RuntimeError) as exc:
                log.info("git.input_closed", reason=str(exc))
                accepting = False
    except ClientDisconnect:
        log.info("git.client_disconnected")
    finally:
        if not stdin.is_closing():
            stdin.close()


async def _log_stderr(stderr: asyncio.StreamReader) -> None:
    """Drain git's stderr (a full pipe would stall git) into the API log."""
    while line := await stderr.readline():
        log.info("git.stderr", line=line.decode(errors="replace").rstrip())


async def _read_cgi_headers(stdout: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status, headers = 200, dict[str, str]()
    while True:
        line = (await stdout.readline()).decode("latin-1").rstrip("\r\n")
        if not line:
            return status, headers
        key, _, value = line.partition(":")
        if key.lower() == "status":
            status = int(value.strip().split()[0])
        else:
            headers[key.strip()] = value.strip()


def _after_push(
    space_pk: int, before: str | None, refs_before: dict[str, str], pusher: audit.Actor
) -> None:
    """A push moved `main`: record the commit (and who pushed it) and start its build. Other
    branches and tags it moved go to the audit log too."""
    with session_scope() as session:
        spaces.record_other_refs(session, space_pk, refs_before, pusher)
        spaces.on_new_commit(session, space_pk, before, pusher)
