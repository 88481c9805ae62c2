"""Space stages: Hugging Face's names, the one list every component imports."""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    NO_APP_FILE = "NO_APP_FILE"
    CONFIG_ERROR = "CONFIG_ERROR"
    BUILDING = "BUILDING"
    BUILD_ERROR = "BUILD_ERROR"
    APP_STARTING = "APP_STARTING"
    RUNNING = "RUNNING"
    RUNNING_BUILDING = "RUNNING_BUILDING"
    RUNNING_APP_STARTING = "RUNNING_APP_STARTING"
    RUNTIME_ERROR = "RUNTIME_ERROR"
    SLEEPING = "SLEEPING"
    PAUSED = "PAUSED"
    STOPPED = "STOPPED"
    DELETING = "DELETING"


# What a person reads for each stage: the console (badges, runtime card, status box), the app
# status page's title and the CLI all show these; APIs and `--json` keep Hugging Face's names.
LABELS: dict[Stage, str] = {
    Stage.NO_APP_FILE: "No app file",
    Stage.CONFIG_ERROR: "Config error",
    Stage.BUILDING: "Building",
    Stage.BUILD_ERROR: "Build error",
    Stage.APP_STARTING: "Starting",
    Stage.RUNNING: "Running",
    Stage.RUNNING_BUILDING: "Running · building",
    Stage.RUNNING_APP_STARTING: "Running · starting",
    Stage.RUNTIME_ERROR: "Runtime error",
    Stage.SLEEPING: "Sleeping",
    Stage.PAUSED: "Paused",
    Stage.STOPPED: "Stopped",
    Stage.DELETING: "Deleting",
}


def label(stage: str) -> str:
    """The human label of a stage (`RUNNING_APP_STARTING` -> `Running · starting`)."""
    try:
        return LABELS[Stage(stage)]
    except ValueError:
        return stage.replace("_", " ").capitalize()


# Stages in which a previous version keeps serving traffic.
SERVING = frozenset({Stage.RUNNING, Stage.RUNNING_BUILDING, Stage.RUNNING_APP_STARTING})


def building_stage(serving: bool) -> Stage:
    """The stage while a build runs: a serving Space keeps serving (RUNNING_BUILDING)."""
    return Stage.RUNNING_BUILDING if serving else Stage.BUILDING


def starting_stage(serving: bool) -> Stage:
    return Stage.RUNNING_APP_STARTING if serving else Stage.APP_STARTING


class BuildStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class DeploymentStatus(StrEnum):
    STARTING = "starting"
    ACTIVE = "active"
    FAILED = "failed"
    STOPPED = "stopped"
    STANDBY = "standby"  # a pre-warmed container waiting for the Space's next version
