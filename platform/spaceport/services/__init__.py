"""Business logic shared by the HTTP API, git server, console and CLI."""
