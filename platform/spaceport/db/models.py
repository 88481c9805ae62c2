"""Database models: the desired and observed state of every Space lives here.

The reconciler makes Docker and the proxy match these rows, so any process can restart
without losing anything.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from spaceport.stages import BuildStatus, DeploymentStatus, Stage


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(96), unique=True, index=True)
    fullname: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(200))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # A deactivated user keeps their name, Spaces and history; their tokens stop working.
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime)

    tokens: Mapped[list[Token]] = relationship(back_populates="user", cascade="all, delete")
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete"
    )


class Token(Base):
    """An access token; only its SHA-256 is stored, the token is shown once."""

    __tablename__ = "tokens"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    role: Mapped[str] = mapped_column(String(10), default="write")  # "read" | "write"
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Fine-grained tokens: None reaches all the user may; else a list of "space:owner/name"
    # and "org:name" entries (auth/scopes.py). An expired token is no token at all.
    scope: Mapped[list[str] | None] = mapped_column(JSON)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    # A console session signed in with a token: that token's id. The session works while the
    # token does; its row gone (revoked) or unusable, the session is too.
    signed_in_with: Mapped[int | None] = mapped_column(Integer, index=True)

    user: Mapped[User] = relationship(back_populates="tokens")
    source: Mapped[Token | None] = relationship(
        "Token",
        primaryjoin="foreign(Token.signed_in_with) == remote(Token.id)",
        viewonly=True,
    )


class Space(Base):
    __tablename__ = "spaces"
    __table_args__ = (
        UniqueConstraint("owner", "name", name="uq_space_owner_name"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    owner: Mapped[str] = mapped_column(String(96), index=True)
    name: Mapped[str] = mapped_column(String(96))
    sdk: Mapped[str | None] = mapped_column(String(20))
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    card_data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    hardware_requested: Mapped[str | None] = mapped_column(String(40))
    hardware_current: Mapped[str | None] = mapped_column(String(40))
    sleep_time: Mapped[int | None] = mapped_column(Integer)
    storage: Mapped[str | None] = mapped_column(String(20))
    # What the runtime drives it towards: see spaceport.lifecycle.desired.Desired.
    desired: Mapped[str] = mapped_column(String(20), default="running")
    stage: Mapped[str] = mapped_column(String(30), default=Stage.NO_APP_FILE.value)
    error_message: Mapped[str | None] = mapped_column(Text)
    head_sha: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    last_request_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Crash handling: consecutive failed starts/exits, and when the runtime tries again
    # (also the queue position of a Space waiting for a free GPU).
    crash_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    retry_at: Mapped[datetime | None] = mapped_column(DateTime)
    # Who created it: an organization's "contributor" may change the Spaces they created.
    created_by: Mapped[str | None] = mapped_column(String(96))

    builds: Mapped[list[Build]] = relationship(back_populates="space", cascade="all, delete")
    deployments: Mapped[list[Deployment]] = relationship(
        back_populates="space", cascade="all, delete"
    )
    variables: Mapped[list[SpaceVariable]] = relationship(
        back_populates="space", cascade="all, delete"
    )
    domains: Mapped[list[SpaceDomain]] = relationship(
        back_populates="space", cascade="all, delete", order_by="SpaceDomain.id"
    )

    @property
    def space_id(self) -> str:
        return f"{self.owner}/{self.name}"


class Build(Base):
    __tablename__ = "builds"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), index=True)
    commit_sha: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default=BuildStatus.QUEUED.value, index=True)
    no_cache: Mapped[bool] = mapped_column(Boolean, default=False)
    image: Mapped[str | None] = mapped_column(String(300))
    error_message: Mapped[str | None] = mapped_column(Text)
    log: Mapped[str] = mapped_column(Text, default="")
    cache_report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    task_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)

    space: Mapped[Space] = relationship(back_populates="builds")


class Deployment(Base):
    """One container run of one build; at most one is ACTIVE (receiving traffic) per Space."""

    __tablename__ = "deployments"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), index=True)
    build_id: Mapped[int | None] = mapped_column(ForeignKey("builds.id", ondelete="SET NULL"))
    image: Mapped[str] = mapped_column(String(300))
    commit_sha: Mapped[str | None] = mapped_column(String(40))
    container_id: Mapped[str | None] = mapped_column(String(80))
    upstream: Mapped[str | None] = mapped_column(String(100))
    node: Mapped[str | None] = mapped_column(String(100))  # its cluster node (cluster mode)
    status: Mapped[str] = mapped_column(
        String(20), default=DeploymentStatus.STARTING.value, index=True
    )
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ready_at: Mapped[datetime | None] = mapped_column(DateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime)

    space: Mapped[Space] = relationship(back_populates="deployments")


class SpaceVariable(Base):
    """A variable (public env) or secret (value encrypted at rest, never returned)."""

    __tablename__ = "space_variables"
    __table_args__ = (UniqueConstraint("space_id", "key", name="uq_space_variable_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    is_secret: Mapped[bool] = mapped_column(Boolean, default=False)
    value: Mapped[str | None] = mapped_column(Text)
    encrypted_value: Mapped[bytes | None] = mapped_column(LargeBinary)
    description: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    space: Mapped[Space] = relationship(back_populates="variables")


class SpaceDomain(Base):
    """A custom domain an owner gave a Space (services/domains.py). It routes only once
    `verified_at` is set: a request for it reached this node and got `token` back, so its DNS
    points here. The unique domain means two Spaces never claim one name."""

    __tablename__ = "space_domains"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    space_id: Mapped[int] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"), index=True)
    domain: Mapped[str] = mapped_column(String(253), unique=True)
    token: Mapped[str] = mapped_column(String(64))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime)
    checked_at: Mapped[datetime | None] = mapped_column(DateTime)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    space: Mapped[Space] = relationship(back_populates="domains")


class GpuAllocation(Base):
    """A GPU of a node given to one deployment; the unique key makes double-booking impossible."""

    __tablename__ = "gpu_allocations"
    __table_args__ = (UniqueConstraint("node", "device_uuid", name="uq_gpu_allocation_device"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node: Mapped[str] = mapped_column(String(64))
    device_uuid: Mapped[str] = mapped_column(String(100))
    space_id: Mapped[int] = mapped_column(ForeignKey("spaces.id", ondelete="CASCADE"))
    deployment_id: Mapped[int] = mapped_column(
        ForeignKey("deployments.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Organization(Base):
    """An organization: a namespace (shared with user names) whose members own its Spaces."""

    __tablename__ = "organizations"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(96), unique=True, index=True)
    fullname: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    members: Mapped[list[Membership]] = relationship(
        back_populates="org", cascade="all, delete", order_by="Membership.id"
    )


class Membership(Base):
    """A user's role in an organization: read, contributor, write or admin (Hugging Face's)."""

    __tablename__ = "org_members"
    __table_args__ = (UniqueConstraint("org_id", "user_id", name="uq_org_member"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    org: Mapped[Organization] = relationship(back_populates="members")
    user: Mapped[User] = relationship(back_populates="memberships")


class Invitation(Base):
    """A sign-up link (only its digest stored): a new user, optionally joining an organization."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    role: Mapped[str | None] = mapped_column(String(12))
    created_by: Mapped[str] = mapped_column(String(96))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)
    used_by: Mapped[str | None] = mapped_column(String(96))

    org: Mapped[Organization | None] = relationship()


class Quota(Base):
    """An admin's limits for one namespace (a user or an organization); None is unlimited."""

    __tablename__ = "quotas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    namespace: Mapped[str] = mapped_column(String(96), unique=True, index=True)
    spaces: Mapped[int | None] = mapped_column(Integer)
    cpu: Mapped[float | None] = mapped_column(Float)
    memory_gb: Mapped[float | None] = mapped_column(Float)
    gpus: Mapped[int | None] = mapped_column(Integer)
    storage_gb: Mapped[float | None] = mapped_column(Float)
    builds_per_hour: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class AuditEvent(Base):
    """One change someone made: names are copied in, so deleting a user or Space loses nothing.
    Secrets and variables appear by name, never by value."""

    __tablename__ = "audit_events"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor: Mapped[str | None] = mapped_column(String(96), index=True)
    token_name: Mapped[str | None] = mapped_column(String(100))
    ip: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(60), index=True)
    namespace: Mapped[str | None] = mapped_column(String(96), index=True)
    space: Mapped[str | None] = mapped_column(String(200), index=True)
    target: Mapped[str | None] = mapped_column(String(300))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
