import os
from pathlib import Path

from fastapi import FastAPI

app = FastAPI(title="Docker FastAPI")


@app.get("/")
def index() -> dict[str, str]:
    return {
        "message": f"{os.environ.get('GREETING', 'Hello')} from a Docker Space",
        "build_token_sha256": Path("build_token.sha256").read_text().strip(),
        "user": str(os.getuid()),
    }


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}
