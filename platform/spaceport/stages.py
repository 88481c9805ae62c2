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


# What an app's status page says in each stage (the proxy sends visitors there while the app has
# no live route), and whether the page waits for the app (True) or the owner must act (False).
STATUS_MESSAGES: dict[Stage, tuple[str, bool]] = {
    Stage.BUILDING: ("This Space is building. It will start as soon as the build is done.", True),
    Stage.RUNNING_BUILDING: ("A new version is building.", True),
    Stage.APP_STARTING: ("The app is starting.", True),
    Stage.RUNNING_APP_STARTING: ("The app is starting.", True),
    Stage.RUNNING: ("The app is starting.", True),
    Stage.SLEEPING: ("This Space is asleep: waking it up.", True),
    Stage.PAUSED: ("This Space has been paused by its owner.", False),
    Stage.STOPPED: ("This Space is stopped.", False),
    Stage.BUILD_ERROR: ("The build failed.", False),
    Stage.CONFIG_ERROR: ("The Space's configuration has an error.", False),
    Stage.RUNTIME_ERROR: ("The app crashed.", False),
    Stage.NO_APP_FILE: ("No app yet: push an app file to this Space.", False),
    Stage.DELETING: ("This Space is being deleted.", False),
}
# Where the console knows more than an app host's status page (which says "starting" for
# RUNNING because it is only reached before the route exists).
CONSOLE_MESSAGES: dict[str, str] = {
    Stage.RUNNING: "The app is running.",
    Stage.RUNNING_BUILDING: "The current version keeps serving while a new one builds.",
    Stage.RUNNING_APP_STARTING: "The current version keeps serving while the new one starts.",
}


def console_message(stage: str) -> str:
    """The sentence the console and CLI show under a stage's label ("" for an unknown stage)."""
    if stage in CONSOLE_MESSAGES:
        return CONSOLE_MESSAGES[stage]
    try:
        return STATUS_MESSAGES.get(Stage(stage), ("", False))[0]
    except ValueError:
        return ""


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
