"""Request bodies several route modules read (Hugging Face's shapes, as huggingface_hub sends
them); a body only one route reads stays next to that route."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from spaceport.errors import SpaceportError
from spaceport.services.space_setup import EnvEntry


class EnvItem(BaseModel):
    key: str
    value: str = ""
    description: str | None = None

    def entry(self) -> EnvEntry:
        return EnvEntry(self.key, self.value, self.description)


class SpaceOptions(BaseModel):
    """What create_repo and duplicate_repo send beside the name."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    private: bool | None = None
    visibility: str | None = None
    hardware: str | None = None
    sleep_time: int | None = Field(default=None, alias="sleepTimeSeconds")
    secrets: list[EnvItem] = Field(default_factory=list)
    variables: list[EnvItem] = Field(default_factory=list)

    def is_private(self, default: bool = False) -> bool:
        """`visibility` (clients 1.x+) or `private` (older clients); `protected` is refused."""
        if self.visibility is not None:
            if self.visibility not in ("public", "private"):
                raise SpaceportError(
                    f"visibility {self.visibility!r} is not supported: use 'public' or 'private'"
                )
            return self.visibility == "private"
        return default if self.private is None else self.private

    def refuse_unsupported(self) -> None:
        extra = self.model_extra or {}
        for key, what in (("template", "Space templates"), ("volumes", "Space volumes")):
            if extra.get(key):
                raise SpaceportError(f"{what} are not supported by Spaceport (got {key!r})")
