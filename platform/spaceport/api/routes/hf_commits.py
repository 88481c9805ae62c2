"""Hugging Face's write path: `upload_file`, `upload_folder` and `create_commit`.

The client first asks `preupload` how to send each file (we always answer "regular": inline in
the commit, up to `SPACEPORT_UPLOAD_MAX_FILE_BYTES`; larger files get a clear error instead of
LFS), checks a README with `validate-yaml`, then streams an NDJSON commit. The commit lands in
the Space's git repo exactly as a push would, and a commit to `main` starts a build.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from spaceport.api.deps import Principal, client_address, require_principal, writable_space
from spaceport.api.links import space_url
from spaceport.db.models import Space
from spaceport.db.session import get_session
from spaceport.errors import SpaceportError
from spaceport.front_matter import (
    ConfigError,
    NoAppFile,
    parse_config,
    split_front_matter,
)
from spaceport.git import browse, commits
from spaceport.git.pre_receive import human
from spaceport.git.repos import repo_path
from spaceport.services.file_commits import land_commit
from spaceport.settings import Settings, get_settings

router = APIRouter(tags=["huggingface"])


class TooLarge(SpaceportError):
    status_code = 413


def max_file_bytes(settings: Settings) -> int:
    return min(settings.upload_max_file_bytes, settings.git_max_file_bytes)


def _too_large(path: str, size: int, limit: int) -> TooLarge:
    return TooLarge(
        f"{path} is {human(size)}; Spaceport accepts files up to {human(limit)} through the "
        "Hugging Face API (no LFS). Push larger files with git, up to the node's push limit, "
        "or ask the operator to raise SPACEPORT_UPLOAD_MAX_FILE_BYTES."
    )


class PreuploadFile(BaseModel):
    path: str
    size: int = 0
    sample: str = ""


class Preupload(BaseModel):
    files: list[PreuploadFile]
    gitIgnore: str | None = None


@router.post("/api/spaces/{owner}/{name}/preupload/{revision}")
def preupload(
    revision: str, body: Preupload, space: Space = Depends(writable_space)
) -> dict[str, Any]:
    """How to send each file: always inline ("regular"), whether .gitignore drops it, and the
    blob id already there so the client can skip unchanged files."""
    settings = get_settings()
    limit = max_file_bytes(settings)
    for f in body.files:
        commits.check_path(f.path)
        if f.size > limit:
            raise _too_large(f.path, f.size, limit)
    repo = repo_path(settings, space.owner, space.name)
    sha = browse.require_revision(repo, revision)
    gitignore = body.gitIgnore
    if gitignore is None:
        gitignore = browse.read_text(repo, sha, ".gitignore") or ""
    paths = [f.path for f in body.files]
    ignored = commits.ignored_paths(gitignore, paths)
    answer = []
    for path in paths:
        entry = browse.entry_at(repo, sha, path) if sha else None
        answer.append(
            {
                "path": path,
                "uploadMode": "regular",
                "shouldIgnore": path in ignored,
                "oid": entry.oid if entry is not None and entry.is_file else None,
            }
        )
    return {"files": answer}


@dataclass
class ParsedCommit:
    summary: str = ""
    description: str = ""
    parent: str | None = None
    ops: list[commits.Operation] = field(default_factory=list)

    @property
    def message(self) -> str:
        summary = self.summary.strip() or "Update via the Hugging Face API"
        return summary + ("\n\n" + self.description.strip() if self.description.strip() else "")


class _Reader:
    """Turns NDJSON lines into operations; file contents go to disk as they arrive."""

    def __init__(self, workdir: Path, limit: int) -> None:
        self.workdir, self.limit, self.parsed = workdir, limit, ParsedCommit()

    def line(self, raw: bytes) -> None:
        if not raw.strip():
            return
        try:
            item = json.loads(raw)
            key, value = item["key"], item["value"]
        except (ValueError, KeyError, TypeError):
            raise SpaceportError(
                'commit body must be NDJSON lines of {"key": ..., "value": ...}'
            ) from None
        if key == "header":
            self.parsed.summary = str(value.get("summary") or "")
            self.parsed.description = str(value.get("description") or "")
            self.parsed.parent = value.get("parentCommit")
        elif key == "file":
            self._file(value)
        elif key == "deletedFile":
            self.parsed.ops.append(commits.DeleteFile(commits.check_path(value["path"])))
        elif key == "deletedFolder":
            self.parsed.ops.append(commits.DeleteFolder(commits.check_path(value["path"])))
        elif key == "lfsFile":
            raise SpaceportError(
                f"{value.get('path')}: LFS files are not supported by Spaceport; upload it as a "
                "regular file (preupload answers 'regular' for every file)"
            )
        else:
            raise SpaceportError(f"unknown commit operation {key!r}")

    def _file(self, value: dict[str, Any]) -> None:
        path = commits.check_path(str(value.get("path", "")))
        encoding = value.get("encoding", "base64")
        content = str(value.get("content", ""))
        try:
            data = (
                base64.b64decode(content, validate=True)
                if encoding == "base64"
                else (content.encode())
            )
        except binascii.Error:
            raise SpaceportError(f"{path}: content is not valid base64") from None
        if len(data) > self.limit:
            raise _too_large(path, len(data), self.limit)
        target = self.workdir / f"{len(self.parsed.ops)}.blob"
        target.write_bytes(data)
        self.parsed.ops.append(commits.AddFile(path, target))


async def _read_commit(request: Request, workdir: Path, settings: Settings) -> ParsedCommit:
    limit = max_file_bytes(settings)
    max_line = limit * 4 // 3 + 64 * 1024
    reader, buf, total = _Reader(workdir, limit), bytearray(), 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > settings.git_max_push_bytes:
            raise TooLarge(f"commit larger than the node's push limit ({human(total)})")
        buf += chunk
        while (cut := buf.find(b"\n")) >= 0:
            line = bytes(buf[:cut])
            del buf[: cut + 1]
            await asyncio.to_thread(reader.line, line)
        if len(buf) > max_line:
            raise _too_large("a file", len(buf) * 3 // 4, limit)
    await asyncio.to_thread(reader.line, bytes(buf))
    return reader.parsed


@router.post("/api/spaces/{owner}/{name}/commit/{revision}")
async def commit(
    request: Request,
    revision: str,
    create_pr: str | None = None,
    space: Space = Depends(writable_space),
    who: Principal = Depends(require_principal),
    session: Session = Depends(get_session),
) -> dict[str, Any]:
    if create_pr not in (None, "", "0", "false"):
        raise SpaceportError(
            "Pull requests are not supported by Spaceport: commit to the branch directly "
            "(create_pr=False)"
        )
    settings = get_settings()
    space_pk, space_id = space.id, space.space_id
    # Release the request's write lock (token last-use) before the commit writes in a thread.
    session.commit()
    with tempfile.TemporaryDirectory(prefix="spaceport-commit-") as tmp:
        parsed = await _read_commit(request, Path(tmp), settings)
        sha = await asyncio.to_thread(
            land_commit,
            settings,
            space_pk,
            revision,
            parsed.ops,
            message=parsed.message,
            parent=parsed.parent,
            who=who,
            ip=client_address(request),
        )
    return {
        "success": True,
        "commitOid": sha,
        "commitUrl": f"{space_url(request, space_id)}/commit/{sha}",
        "hookOutput": "",
        "pullRequestUrl": None,
    }


class ValidateYaml(BaseModel):
    content: str
    repo_type: str = Field(default="model", alias="repoType")


@router.post("/api/validate-yaml", response_model=None)
def validate_yaml(body: ValidateYaml) -> dict[str, Any] | JSONResponse:
    """Check a README's front matter before an upload, with the builder's own rules."""
    warnings: list[dict[str, str]] = []
    if body.repo_type != "space":
        return {"errors": [], "warnings": warnings}
    try:
        if "sdk" not in split_front_matter(body.content):
            warnings.append(
                {"message": "no 'sdk' in the front matter: the Space keeps the sdk it has"}
            )
        parse_config(body.content, set(), default_sdk="static")
    except NoAppFile:
        pass  # the file list is checked at build time, not here
    except ConfigError as exc:
        message = str(exc)
        return JSONResponse(
            {"error": message, "errors": [{"message": message}], "warnings": warnings},
            status_code=400,
            headers={"X-Error-Message": message.encode("ascii", "replace").decode()[:500]},
        )
    return {"errors": [], "warnings": warnings}
