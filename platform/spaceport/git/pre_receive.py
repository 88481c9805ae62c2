"""The platform's own pre-receive hook: refuse a push, during the push, when it breaks a limit.

Git keeps the pushed objects in quarantine until this hook accepts, so a refused push leaves
the repository exactly as it was. Users' own hooks never run (the hooks path is ours).
Checked: only `main` and other branches, file size, file count, symlinks leaving the repo,
and a new head of `main` when the API says it may not build now (REFUSE_MAIN: a quota).
"""

from __future__ import annotations

import os
import posixpath
import stat
import subprocess
import sys
from dataclasses import dataclass

ZERO = "0" * 40
# Set by the API for a push that may not start a build (a quota): why, said to the pusher.
REFUSE_MAIN = "SPACEPORT_PUSH_REFUSE_MAIN"


@dataclass
class Limits:
    max_file_bytes: int
    max_files: int


def _git(*args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], input=input, capture_output=True, check=True).stdout


def human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{n} B"
        size /= 1024
    return f"{n} B"


def check_ref(old: str, new: str, ref: str, limits: Limits) -> list[str]:
    """Problems with one ref update, each a sentence telling the user what to fix."""
    if new == ZERO:
        return [] if ref != "refs/heads/main" else ["Deleting the main branch is not allowed."]
    if not ref.startswith("refs/heads/"):
        return [f"Only branches can be pushed (got {ref})."]
    problems: list[str] = []
    # Every new blob: size limit (history included, or the repository still grows).
    revs = [new, "--not", "--all"] if old == ZERO else [f"{old}..{new}"]
    objects = _git("rev-list", "--objects", *revs)
    batch = _git(
        "cat-file",
        "--batch-check=%(objecttype) %(objectsize) %(objectname)",
        input=b"\n".join(line.split(b" ", 1)[0] for line in objects.splitlines()),
    )
    names = {
        ln.split(b" ", 1)[0]: (ln.split(b" ", 1)[1] if b" " in ln else b"")
        for ln in objects.splitlines()
    }
    for line in batch.splitlines():
        kind, size, sha = line.decode().split()
        if kind == "blob" and int(size) > limits.max_file_bytes:
            path = names.get(sha.encode(), b"?").decode(errors="replace")
            problems.append(
                f"{path} is {human(int(size))}; files over {human(limits.max_file_bytes)} are not "
                "accepted (operator setting SPACEPORT_GIT_MAX_FILE_BYTES). Remove it from the "
                "history or host it elsewhere."
            )
    # The tip's tree: file count and symlinks pointing outside the repo.
    tree = _git("ls-tree", "-r", "-z", "--full-tree", new).split(b"\0")
    entries = [e for e in tree if e]
    if len(entries) > limits.max_files:
        problems.append(
            f"The commit has {len(entries)} files; at most {limits.max_files} are accepted "
            "(SPACEPORT_GIT_MAX_FILES). Remove generated files or use .gitignore."
        )
    for entry in entries:
        meta, _, path_b = entry.partition(b"\t")
        mode, _, sha = meta.decode().split(" ")
        if int(mode, 8) & 0o170000 == stat.S_IFLNK:
            target = _git("cat-file", "blob", sha).decode(errors="replace")
            path = path_b.decode(errors="replace")
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
            if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
                problems.append(
                    f"{path} is a symlink to {target!r}, outside the repository: symlinks must "
                    "point to files inside the Space."
                )
    return problems


def main() -> int:
    from spaceport.settings import Settings

    settings = Settings()
    limits = Limits(max_file_bytes=settings.git_max_file_bytes, max_files=settings.git_max_files)
    problems: list[str] = []
    refuse_main = os.environ.get(REFUSE_MAIN)
    for line in sys.stdin.read().splitlines():
        old, new, ref = line.split(" ", 2)
        if refuse_main and ref == "refs/heads/main" and new not in (ZERO, old):
            problems.append(refuse_main)
        problems += check_ref(old, new, ref, limits)
    if problems:
        print("Push refused by Spaceport:", file=sys.stderr)
        for p in problems[:20]:
            print(f"  - {p}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
