"""Run Spaces on a Docker Swarm cluster: each deployment is a Swarm service of one task.

The contract is the one `DockerBackend` keeps (engine/base.py); what is an id there (a
container) is a service id here. Shaped after CapRover, which scales the same way:

- Placement is Swarm's: a service asks for a share of its flavor (`swarm_reservation`) and,
  with GPUs, for n of the `GPU` generic resource its nodes advertise; constraints pin it.
- Images come from the registry (`registry`); the build engine pushed them there.
- The proxy reaches an app at its node's address and a port the node publishes for it (host
  mode: this kernel has no IPVS, so no VIPs or ingress mesh, and the control plane's host is
  not on the overlay). Apps sit on an attachable overlay network of their own.
- Swarm restarts nothing (restart condition `none`), so an app that exits is Spaceport's to
  report and restart with backoff, as on one node. A task lost with its node is the engine's
  to place again: `inspect` notices the node is down and forces a new task elsewhere.
- What only a node can do (freeze a container, copy files in) goes to the engine of the node
  running the task, found through the node's label `org.spaceport.engine`.
"""

from __future__ import annotations

import builtins
import contextlib
import copy
import hashlib
import json
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, cast

import docker
import structlog
from docker.errors import APIError, DockerException, InvalidVersion, NotFound

from spaceport.engine import app_init, cgroup_stats, node_helper, registry_images, zram
from spaceport.engine.base import (
    LABEL_DEPLOYMENT,
    LABEL_INSTANCE,
    LABEL_MANAGED,
    LABEL_SPACE,
    Compressed,
    ContainerSpec,
    ContainerState,
    ImageRef,
    LogStream,
    NodeInfo,
    NodeOps,
    RuntimeBackend,
    RuntimeBackendError,
    Usage,
)
from spaceport.engine.docker_backend import NOT_SQUEEZABLE, DockerBackend
from spaceport.settings import Settings

log = structlog.get_logger(__name__)

LABEL_ENGINE = "org.spaceport.engine"
"""On a Swarm node: the URL of its own engine API (set by `make cluster` or the operator)."""
SERVICE_LABEL = "com.docker.swarm.service.id"
DATA_LABEL_PREFIX = "org.spaceport.data."
"""On a Swarm node, one label per /data disk it holds: its Spaces are pinned there."""
LABEL_RUNS = "org.spaceport.runs"
"""On the service of a standby told to run another version (`took`): that version (JSON: the
task it was told in, the image, the variables that differ), which its next task is made of."""


def data_label(volume: str) -> str:
    return f"{DATA_LABEL_PREFIX}{volume}"


def disk_node_down(node: str) -> str:
    return (
        f"node {node} is down and holds the Space's /data disk: the Space starts again there "
        "when the node is back (its data stays with it)"
    )


GPU_RESOURCE = "GPU"
"""The generic resource GPU nodes advertise, one value per device (env DOCKER_RESOURCE_GPU)."""
ACTIVE = ("new", "pending", "assigned", "accepted", "preparing", "ready", "starting", "running")
START_TIMEOUT_S = 300.0
NODE_TABLE_S = 1.0
USAGE_READERS = 8  # engine calls (a node's list, a container's stats) made at once
USAGE_DEADLINE_S = 10.0
SIZES_DEADLINE_S = 60.0  # sizes take an engine seconds per busy node; a dead one is left out
PENDING_S = 20.0
"""How long a task Swarm cannot place waits (another Space may be stopping) before the start
fails with Swarm's reason."""


def service_name(spec: ContainerSpec) -> str:
    """Swarm names are DNS labels (63 characters at most)."""
    if len(spec.name) <= 63:
        return spec.name
    digest = hashlib.sha1(spec.name.encode()).hexdigest()[:8]
    return f"{spec.name[:54]}-{digest}"


NO_POOL = "a cluster has no node pool (each Space is a service)"


def _config_named(api: Any, name: str) -> str | None:
    """The id of the Swarm config called exactly `name` (the engine filters by prefix)."""
    return next(
        (c["ID"] for c in api.configs(filters={"name": name}) if c["Spec"]["Name"] == name), None
    )


class SwarmBackend(RuntimeBackend):
    """A Swarm cluster, driven through a manager's engine API."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = self._manager()
        self.local = DockerBackend(settings)  # the build engine: images are made here
        self._nodes: dict[str, DockerBackend] = {}
        self._lock = threading.Lock()
        self._reschedules: dict[str, float] = {}
        self._node_table: tuple[float, dict[str, dict[str, Any]]] = (0.0, {})
        self._init_config_id: tuple[str, str] | None = None  # (name, Swarm config id)

    def _manager(self) -> docker.DockerClient:
        urls: builtins.list[str | None] = [*self.settings.swarm_managers] or [None]
        errors = []
        for url in urls:
            try:
                client = docker.DockerClient(base_url=url, timeout=60) if url else docker.from_env()
                if client.info().get("Swarm", {}).get("ControlAvailable"):
                    return client
                errors.append(f"{url or 'DOCKER_HOST'}: not a Swarm manager")
            except DockerException as exc:
                errors.append(f"{url or 'DOCKER_HOST'}: {exc}")
        raise RuntimeBackendError(
            "no Swarm manager answers (SPACEPORT_SWARM_MANAGERS): " + "; ".join(errors)
        )

    def _api(self) -> Any:
        """The manager's low-level API; another manager when this one stopped answering."""
        try:
            self.client.api.ping()
        except DockerException:
            self.client = self._manager()
        return self.client.api

    def node_ops(self) -> NodeOps:
        return SwarmNodeOps(self)

    # --- images and networks ----------------------------------------------------------------

    def image(self, image: str) -> str:
        """The registry's name of a build's image (what the nodes pull)."""
        return registry_images.pulled_as(self.settings.registry, image)

    def network_name(self, egress: bool = True) -> str:
        return self.settings.app_network if egress else f"{self.settings.app_network}-offline"

    def ensure_network(self, egress: bool = True) -> str:
        name = self.network_name(egress)
        api = self._api()
        if not api.networks(names=[name], filters={"driver": "overlay"}):
            try:
                api.create_network(
                    name,
                    driver="overlay",
                    attachable=True,
                    internal=not egress,
                    labels={LABEL_MANAGED: "true"},
                )
            except APIError as exc:
                if exc.status_code != 409:
                    raise RuntimeBackendError(f"could not create network {name}: {exc}") from exc
        return name

    # --- workloads ---------------------------------------------------------------------------

    def _task_template(self, spec: ContainerSpec) -> dict[str, Any]:
        image = self.image(spec.image)
        env = dict(spec.env)
        mounts: list[dict[str, Any]] = []
        container: dict[str, Any] = {
            "Image": image,
            "Env": [f"{k}={v}" for k, v in env.items()],
            "User": "1000:1000",
            "CapabilityDrop": ["ALL"],
            "Labels": self._labels(spec),
            "Init": False,
        }
        entrypoint = self._entrypoint(spec.image, spec.command)
        if entrypoint is not None:
            container["Command"], container["Args"] = entrypoint
        elif spec.command is not None:
            container["Args"] = spec.command
        if app_init.enabled(self.settings) and entrypoint is not None:
            container["Configs"] = [self._init_config()]
        if spec.data_volume:
            mounts.append({"Type": "volume", "Source": spec.data_volume, "Target": "/data"})
        container["Mounts"] = mounts
        share = self.settings.swarm_reservation
        cpus = min(spec.cpus, self._node_cpus())  # an engine refuses more than its machine has
        limits: dict[str, Any] = {
            "NanoCPUs": int(cpus * 1e9),
            "MemoryBytes": spec.memory_bytes,
            "Pids": spec.pids,
        }
        reservations: dict[str, Any] = {
            "NanoCPUs": int(cpus * share * 1e9),
            "MemoryBytes": int(spec.memory_bytes * share),
        }
        if spec.gpus:
            reservations["GenericResources"] = [
                {"DiscreteResourceSpec": {"Kind": GPU_RESOURCE, "Value": len(spec.gpus)}}
            ]
        # A task holding generic resources (GPUs) stays off the overlay: attaching an overlay
        # updates the node, and Swarm 20.10's constraint enforcer then rejects that task
        # ("assigned node no longer meets constraints"). The proxy reaches it the same way,
        # through its node's published port.
        networks = [] if spec.gpus else [{"Target": self.ensure_network(spec.egress)}]
        return {
            "ContainerSpec": container,
            "Resources": {"Limits": limits, "Reservations": reservations},
            "RestartPolicy": {"Condition": "none"},
            "Networks": networks,
            "Placement": {"Constraints": self._constraints(spec)},
            "LogDriver": {
                "Name": "json-file",
                "Options": {"max-size": "10m", "max-file": "2", "mode": "non-blocking"},
            },
        }

    def _node_cpus(self) -> float:
        """The CPUs of the smallest node (a flavor asking more is capped to it, as on one
        machine)."""
        counts = [
            n.get("Description", {}).get("Resources", {}).get("NanoCPUs", 0) / 1e9
            for n in self._api().nodes()
        ]
        return min((c for c in counts if c > 0), default=1.0)

    def _constraints(self, spec: ContainerSpec) -> list[str]:
        """GPUs booked by the allocator are on one node: the service goes there, and Swarm
        hands it that many of the node's `GPU` resources (env DOCKER_RESOURCE_GPU)."""
        nodes = {g.node for g in spec.gpus or [] if g.node}
        pins = [f"node.hostname=={node}" for node in sorted(nodes)]
        if spec.data_volume:  # on the node that holds its disk
            pins.append(f"node.labels.{data_label(spec.data_volume)}==true")
        return pins

    def _labels(self, spec: ContainerSpec) -> dict[str, str]:
        return {
            LABEL_MANAGED: "true",
            LABEL_INSTANCE: self.settings.instance,
            LABEL_SPACE: spec.space_id,
            LABEL_DEPLOYMENT: str(spec.deployment_id),
            **spec.labels,
        }

    def _entrypoint(
        self, image: str, command: builtins.list[str] | None
    ) -> tuple[builtins.list[str], builtins.list[str]] | None:
        """The image's entrypoint and `command` (None: its own) under spaceport-init."""
        if not app_init.enabled(self.settings):
            return None
        config = self.image_config(image)
        entrypoint = list(config.get("Entrypoint") or [])
        command = command if command is not None else list(config.get("Cmd") or [])
        if not entrypoint and not command:
            return None
        return app_init.command(self.settings, entrypoint), command

    def image_config(self, image: str) -> dict[str, Any]:
        """A build's image's `Config`, read from the build engine's copy (the nodes may not
        have pulled it yet), or from the registry when a build worker elsewhere made it ({}:
        neither has it)."""
        try:
            return dict(self.local.client.api.inspect_image(image).get("Config") or {})
        except DockerException:
            registry = self.registry_read()
            return (registry and registry_images.image_config(registry, image)) or {}

    def registry_read(self) -> str | None:
        """Where this process reads the registry (the address it pushes to, when it has one)."""
        return self.settings.registry_push or self.settings.registry or None

    def _init_config(self) -> dict[str, Any]:
        """spaceport-init as a Swarm config (a static binary, under Swarm's 1000 KB limit): the
        managers hand it to whichever node runs the task, which shares no disk with this
        machine. One config per build of the init (its name carries the binary's digest;
        configs cannot change), made on first use."""
        try:
            binary = app_init.binary(self.settings)
        except app_init.AppInitError as exc:
            raise RuntimeBackendError(str(exc)) from exc
        name = binary.name  # spaceport-init-<digest of its source>
        if self._init_config_id is None or self._init_config_id[0] != name:
            api = self._api()
            config_id = _config_named(api, name)
            if config_id is None:
                try:
                    config_id = api.create_config(
                        name, binary.read_bytes(), labels={LABEL_INSTANCE: self.settings.instance}
                    )["ID"]
                except APIError as exc:
                    config_id = _config_named(api, name) if exc.status_code == 409 else None
                    if config_id is None:  # (409: made meanwhile by another process)
                        raise RuntimeBackendError(f"could not store spaceport-init: {exc}") from exc
            self._init_config_id = (name, str(config_id))
        return {
            "File": {"Name": app_init.PATH, "UID": "0", "GID": "0", "Mode": 0o555},
            "ConfigID": self._init_config_id[1],
            "ConfigName": name,
        }

    def _create(self, spec: ContainerSpec, replicas: int) -> str:
        api = self._api()
        labels = self._labels(spec)
        for attempt in (1, 2):
            try:
                created = api.create_service(
                    self._task_template(spec),
                    name=service_name(spec),
                    labels=labels,
                    mode={"Replicated": {"Replicas": replicas}},
                    endpoint_spec={
                        "Mode": "dnsrr",
                        "Ports": [
                            {"Protocol": "tcp", "TargetPort": spec.port, "PublishMode": "host"}
                        ],
                    },
                )
                return str(created["ID"])
            except APIError as exc:
                if attempt == 1 and "config" in str(exc.explanation).lower():
                    self._init_config_id = None  # removed meanwhile: look it up or make it again
                    continue
                raise RuntimeBackendError(
                    f"could not create a service of {self.image(spec.image)}: {exc.explanation}"
                ) from exc
        raise AssertionError("unreachable")

    def create(self, spec: ContainerSpec) -> ContainerState:
        service = self._create(spec, replicas=0)
        return self._require(service)

    def start(self, spec: ContainerSpec) -> ContainerState:
        service = self._create(spec, replicas=1)
        try:
            state = self._wait_running(service)
        except RuntimeBackendError:
            self.stop(service, timeout=0)
            raise
        self._on_its_node(service, spec.cpu_shares)
        return state

    def _on_its_node(self, service: str, cpu_shares: int | None) -> None:
        """What a service cannot say of its task, set by the task's node's engine: no swap of
        its own (Swarm gives twice its memory), a standby's low CPU weight."""
        located = self.container_of(service)
        if located is None:
            return
        engine, container = located
        with contextlib.suppress(RuntimeBackendError):
            engine.no_swap_of_its_own(container)
        if cpu_shares is not None:
            with contextlib.suppress(RuntimeBackendError):
                engine.set_cpu_shares(container, cpu_shares)

    def took(self, container_id: str, spec: ContainerSpec) -> None:
        """The service's spec still says the standby's image and launcher: a new task (a
        restart, a wake from deep sleep, its node lost or drained) would wait for a go file
        forever. Changing the spec now would replace the task that serves, so the version it
        runs is noted in a label of the service (not of its task: nothing restarts), and its
        next task is made of that version (`_update`; `_state` when Swarm made one itself)."""
        try:
            task = self._task(container_id)
            template = self._api().inspect_service(container_id)["Spec"]["TaskTemplate"]
        except DockerException as exc:
            raise RuntimeBackendError(f"service {container_id[:12]}: {exc}") from exc
        env = _env(template)
        runs = {
            "task": str((task or {}).get("ID", "")),
            "image": spec.image,
            "env": {k: v for k, v in spec.env.items() if env.get(k) != v},
        }
        self._update(container_id, runs=runs)

    def _wait_running(self, service: str) -> ContainerState:
        """Until the service's task runs, or says why it cannot (no node with the flavor's
        resources left: Swarm keeps it pending, and so does this, with the reason)."""
        started = time.monotonic()
        deadline = started + START_TIMEOUT_S
        while True:
            task = self._task(service)
            state = (task or {}).get("Status", {}).get("State", "")
            if task is not None and state == "running":
                return self._require(service)
            err = (task or {}).get("Status", {}).get("Err") or ""
            if state == "pending" and err and time.monotonic() - started > PENDING_S:
                raise RuntimeBackendError(  # e.g. no node with room left for its reservation
                    f"no node can take the app ({err}): free a node, add one, or lower "
                    "SPACEPORT_SWARM_RESERVATION"
                )
            if task is not None and state in ("failed", "rejected", "complete", "shutdown"):
                status = task.get("Status", {})
                why = status.get("Err") or status.get("Message") or state
                raise RuntimeBackendError(f"the app's task {state}: {why}")
            if time.monotonic() > deadline:
                why = (task or {}).get("Status", {}).get("Err") or state or "not scheduled"
                raise RuntimeBackendError(f"the app did not start on any node: {why}")
            time.sleep(0.2)

    def _require(self, service: str) -> ContainerState:
        state = self.inspect(service)
        if state is None:
            raise RuntimeBackendError(f"service {service[:12]} is gone")
        return state

    def _tasks(self, service: str) -> builtins.list[dict[str, Any]]:
        try:
            tasks = self._api().tasks(filters={"service": service})
        except NotFound:
            return []
        return sorted(tasks, key=lambda t: (t.get("CreatedAt") or "", t.get("ID")), reverse=True)

    def _task(self, service: str) -> dict[str, Any] | None:
        """The service's current task: the newest one meant to run, else the newest."""
        tasks = self._tasks(service)
        for task in tasks:
            if task.get("DesiredState") == "running":
                return task
        return tasks[0] if tasks else None

    def _node(self, node_id: str, *, fresh: bool = False) -> dict[str, Any]:
        """A node as the Swarm last saw it. One listing serves a whole reconciler pass (it
        is read again after NODE_TABLE_S, or at once when `fresh`), not one call per Space."""
        if not node_id:  # a task not yet placed
            return {}
        fetched, table = self._node_table
        if fresh or time.monotonic() - fetched > NODE_TABLE_S or node_id not in table:
            try:
                table = {str(n["ID"]): n for n in self._api().nodes()}
            except APIError:
                return {}
            self._node_table = (time.monotonic(), table)
        return table.get(node_id, {})

    def node_engine(self, node_id: str) -> DockerBackend | None:
        """The engine of one node (its label `org.spaceport.engine`), for node-local work."""
        node = self._node(node_id)
        url = (node.get("Spec", {}).get("Labels") or {}).get(LABEL_ENGINE)
        if not url or node.get("Status", {}).get("State") != "ready":
            return None
        with self._lock:
            if url not in self._nodes:
                try:
                    self._nodes[url] = DockerBackend(self.settings, base_url=url)
                except RuntimeBackendError:  # died since Swarm last heard from it
                    return None
            return self._nodes[url]

    def container_of(self, service: str) -> tuple[DockerBackend, str] | None:
        """The node engine and container id running a service's task (None: none runs)."""
        task = self._task(service)
        if task is None or task.get("DesiredState") != "running":
            return None
        return self._task_container(task)

    def _task_container(self, task: dict[str, Any]) -> tuple[DockerBackend, str] | None:
        """The engine of the task's node and its container id (None: no container, or its
        node cannot be reached)."""
        container = task.get("Status", {}).get("ContainerStatus", {}).get("ContainerID")
        engine = self.node_engine(task.get("NodeID", ""))
        if not container or engine is None:
            return None
        return engine, container

    def inspect(self, container_id: str) -> ContainerState | None:
        try:
            service = self._api().inspect_service(container_id)
        except NotFound:
            return None
        except APIError as exc:
            raise RuntimeBackendError(
                f"could not inspect service {container_id[:12]}: {exc}"
            ) from exc
        return self._state(service)

    def _state(self, service: dict[str, Any]) -> ContainerState:
        service_id = str(service["ID"])
        spec = service.get("Spec", {})
        labels = dict(spec.get("Labels") or {})
        replicas = spec.get("Mode", {}).get("Replicated", {}).get("Replicas", 1)
        task = self._task(service_id)
        base = {"id": service_id, "name": spec.get("Name", ""), "labels": labels}
        base["created"] = str(service.get("CreatedAt", ""))
        if task is None or replicas == 0:
            return ContainerState(
                running=False, status="created" if replicas else "exited", exit_code=0,
                upstream=None, **base,
            )  # fmt: skip
        status = task.get("Status", {})
        state = status.get("State", "")
        # Swarm stopping a task its node has not reported stopped: most often because that
        # node just died, so its state is read now, not from a listing older than the task.
        stopping = task.get("DesiredState") != "running" and state in ACTIVE
        node = self._node(task.get("NodeID", ""), fresh=stopping) if task.get("NodeID") else {}
        node_name = node.get("Description", {}).get("Hostname", "")
        node_down = bool(node) and node.get("Status", {}).get("State") != "ready"
        pinned = self._pinned_to(spec)
        if node_down and pinned:
            return ContainerState(
                running=False, status="node-down", exit_code=None, upstream=None,
                node=node_name, reason=disk_node_down(node_name),
                **base,
            )  # fmt: skip
        lost = node_down and (task.get("DesiredState") == "running" or state == "running")
        if lost or self._made_by_swarm(labels, task):
            # Lost with its node: placed again on a live one (see the module's docstring); or
            # a taken standby's made again of the standby (`took`): made of its version.
            self._reschedule(service_id, node_name)
            return ContainerState(
                running=True, status="rescheduling", exit_code=None, upstream=None,
                node=node_name, **base,
            )  # fmt: skip
        if task.get("DesiredState") == "running" and state in ACTIVE:
            upstream = None
            paused = False
            if state == "running":
                upstream = self._upstream(node, status)
                paused = self._paused(task)
            return ContainerState(
                running=not paused, status="paused" if paused else state, exit_code=None,
                upstream=upstream, paused=paused, node=node_name, **base,
            )  # fmt: skip
        if state == "shutdown" or stopping:
            # Stopped by Swarm, not ended by the app (a drain, an update): a new task comes,
            # or is made to come.
            self._reschedule(service_id, node_name)
            return ContainerState(
                running=True, status="rescheduling", exit_code=None, upstream=None,
                node=node_name, **base,
            )  # fmt: skip
        exit_code = status.get("ContainerStatus", {}).get("ExitCode")
        return ContainerState(
            running=False, status="exited", exit_code=exit_code, upstream=None,
            node=node_name, **base,
        )  # fmt: skip

    @staticmethod
    def _pinned_to(spec: dict[str, Any]) -> bool:
        """Whether a service may only run where its /data disk is."""
        constraints = spec.get("TaskTemplate", {}).get("Placement", {}).get("Constraints") or []
        return any(c.startswith(f"node.labels.{DATA_LABEL_PREFIX}") for c in constraints)

    def volume_node(self, name: str) -> dict[str, Any] | None:
        """The node holding a Space's /data disk (its label says so, down or not)."""
        label = data_label(name)
        for node in self._api().nodes():
            if (node.get("Spec", {}).get("Labels") or {}).get(label) == "true":
                return cast(dict[str, Any], node)
        return None

    def label_node(self, node: dict[str, Any], label: str, value: str | None) -> None:
        spec = dict(node["Spec"])
        labels = dict(spec.get("Labels") or {})
        if value is None:
            labels.pop(label, None)
        else:
            labels[label] = value
        spec["Labels"] = labels
        self._api().update_node(node["ID"], node["Version"]["Index"], spec)

    def _reschedule(self, service: str, node: str) -> None:
        now = time.monotonic()
        if now - self._reschedules.get(service, 0.0) < 10:
            return
        self._reschedules[service] = now
        try:
            self._update(service, force=True)
            log.info("swarm.rescheduled", service=service[:12], lost_node=node)
        except RuntimeBackendError as exc:
            log.warning("swarm.reschedule_failed", service=service[:12], error=str(exc))

    def _update(
        self,
        service: str,
        *,
        replicas: int | None = None,
        force: bool = False,
        runs: dict[str, Any] | None = None,
    ) -> None:
        """Change a service; a taken standby's (`took`) is made of the version it runs, so that
        a task Swarm makes from now on runs that (`runs`: note it, and change nothing else)."""
        api = self._api()
        try:
            current = api.inspect_service(service)
            spec = current["Spec"]
            template = spec["TaskTemplate"]
            labels = dict(spec.get("Labels") or {})
            if runs is not None:
                labels[LABEL_RUNS] = json.dumps(runs)
            elif LABEL_RUNS in labels:
                noted = labels.pop(LABEL_RUNS)
                try:
                    template = self._running(template, json.loads(noted))
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    # (written by `took`: only a hand-edited label gets here) not a version
                    # to run: the service stays as it was, without it.
                    log.warning("swarm.bad_runs_label", service=service[:12], error=repr(exc))
            if force:
                template["ForceUpdate"] = int(template.get("ForceUpdate") or 0) + 1
            mode = spec.get("Mode")
            if replicas is not None:
                mode = {"Replicated": {"Replicas": replicas}}
            api.update_service(
                service,
                version=current["Version"]["Index"],
                task_template=template,
                name=spec.get("Name"),
                labels=labels,
                mode=mode,
                endpoint_spec=spec.get("EndpointSpec"),
            )
        except NotFound as exc:
            raise RuntimeBackendError(f"service {service[:12]} is gone") from exc
        except APIError as exc:
            raise RuntimeBackendError(f"could not update service {service[:12]}: {exc}") from exc

    def _running(self, template: dict[str, Any], runs: dict[str, Any]) -> dict[str, Any]:
        """The task template of the version a taken standby runs: its image, run as a deploy
        would have run it (its own command, under spaceport-init), with its variables."""
        template = copy.deepcopy(template)
        container = template["ContainerSpec"]
        container["Image"] = self.image(runs["image"])
        env = {**_env(template), **runs.get("env", {})}
        container["Env"] = [f"{k}={v}" for k, v in env.items()]
        container.pop("Command", None)
        container.pop("Args", None)
        entrypoint = self._entrypoint(runs["image"], None)
        if entrypoint is not None:
            container["Command"], container["Args"] = entrypoint
        return template

    def _made_by_swarm(self, labels: dict[str, str], task: dict[str, Any] | None) -> bool:
        """A taken standby's service whose task is not the one told to run its version: Swarm
        made it of the standby's spec (a drain moved it), and it waits for a go file."""
        runs = labels.get(LABEL_RUNS)
        if not runs or task is None or task.get("DesiredState") != "running":
            return False
        try:
            told = str(json.loads(runs).get("task", ""))
        except ValueError:
            return False
        return bool(told) and str(task.get("ID", "")) != told

    def _upstream(self, node: dict[str, Any], status: dict[str, Any]) -> str | None:
        addr = node.get("Status", {}).get("Addr")
        for port in (status.get("PortStatus") or {}).get("Ports") or []:
            if port.get("PublishMode") == "host" and port.get("PublishedPort") and addr:
                return f"{addr}:{port['PublishedPort']}"
        return None

    def _paused(self, task: dict[str, Any]) -> bool:
        located = self._task_container(task)
        if located is None:
            return False
        engine, container = located
        state = engine.inspect(container)
        return bool(state and state.paused)

    def restart(self, container_id: str) -> ContainerState:
        self._update(container_id, replicas=1, force=True)
        state = self._wait_running(container_id)
        self._on_its_node(container_id, None)
        return state

    def stop(self, container_id: str, timeout: int = 10) -> None:
        located = self.container_of(container_id) if timeout > 0 else None
        if located is not None:  # the app's grace, as on one node
            engine, container = located
            with contextlib.suppress(RuntimeBackendError, DockerException):
                engine.halt(container, timeout=timeout)
        containers = self._containers(container_id)
        try:
            self._api().remove_service(container_id)
        except NotFound:
            pass
        except APIError as exc:
            raise RuntimeBackendError(
                f"could not remove service {container_id[:12]}: {exc}"
            ) from exc
        self._wait_gone(containers, timeout_s=60)

    def _containers(self, service: str) -> builtins.list[tuple[DockerBackend, str]]:
        """Every container of a service's tasks on a live node (to wait for their removal)."""
        located = (self._task_container(task) for task in self._tasks(service))
        return [found for found in located if found is not None]

    def _wait_gone(
        self, containers: builtins.list[tuple[DockerBackend, str]], timeout_s: float
    ) -> None:
        """A stop answers once the app's containers are gone (the node agents remove them a
        moment after the service): its GPU and its /data are free then."""
        deadline = time.monotonic() + timeout_s
        for engine, container in containers:
            while time.monotonic() < deadline:
                try:
                    if engine.inspect(container) is None:
                        break
                except DockerException:
                    break  # the node went away: nothing of it runs anywhere we can see
                time.sleep(0.1)

    def halt(self, container_id: str, timeout: int = 10) -> None:
        """Scale to zero: the service (and its placement) stays, no task runs."""
        containers = self._containers(container_id)
        self._update(container_id, replicas=0)
        self._wait_gone(containers, timeout_s=timeout + 30)

    def pause(self, container_id: str) -> None:
        located = self.container_of(container_id)
        if located is None:
            raise RuntimeBackendError(f"service {container_id[:12]} runs no task to freeze")
        engine, container = located
        engine.pause(container)

    def unpause(self, container_id: str) -> None:
        located = self.container_of(container_id)
        if located is None:
            raise RuntimeBackendError(f"service {container_id[:12]} runs no task")
        engine, container = located
        engine.unpause(container)

    def logs(self, container_id: str, tail: int = 50) -> str:
        """The last lines of the service's task, read from its node's engine: through the
        manager (`service_logs`), a read waits, with no timeout, for a node that died until it
        comes back, and holds whoever asked (the reconciler) that long."""
        task = self._task(container_id)
        located = self._task_container(task) if task is not None else None
        if located is None:
            return ""  # no task ran, or its node cannot be reached
        engine, container = located
        try:
            return engine.logs(container, tail=tail)
        except (RuntimeBackendError, DockerException):
            return ""  # the node died since Swarm last heard from it

    def stream_logs(self, container_id: str, tail: int | str = "all") -> LogStream:
        try:
            stream = self._api().service_logs(
                container_id, stdout=True, stderr=True, tail=tail, follow=True, timestamps=True
            )
        except (APIError, NotFound) as exc:
            raise RuntimeBackendError(f"no logs for {container_id[:12]}: {exc}") from exc
        return cast(LogStream, _Stream(stream))

    def list(
        self, space_id: str | None = None, label: str | None = None
    ) -> builtins.list[ContainerState]:
        labels = [f"{LABEL_INSTANCE}={self.settings.instance}"]
        if space_id:
            labels.append(f"{LABEL_SPACE}={space_id}")
        if label:
            labels.append(label)
        services = self._api().services(filters={"label": labels})
        return [self._state(s) for s in services]

    # --- the cluster's nodes ---------------------------------------------------------------

    def node_ids(self) -> builtins.list[str]:
        return [str(n["ID"]) for n in self._api().nodes()]

    def nodes(self) -> builtins.list[NodeInfo]:
        api = self._api()
        tasks = [
            t
            for t in api.tasks(filters={"desired-state": "running"})
            if _container_labels(t).get(LABEL_INSTANCE) == self.settings.instance
        ]
        out = []
        for node in api.nodes():
            desc = node.get("Description", {})
            resources = desc.get("Resources", {})
            mine = [t for t in tasks if t.get("NodeID") == node["ID"]]
            held = self._gpus_held(node["ID"], mine)
            gpus = [
                (value, held.get(value, ""))
                for value in map(_resource_value, resources.get("GenericResources") or [])
                if value
            ]
            out.append(
                NodeInfo(
                    name=desc.get("Hostname", ""),
                    state=node.get("Status", {}).get("State", "unknown"),
                    availability=node.get("Spec", {}).get("Availability", ""),
                    role=node.get("Spec", {}).get("Role", ""),
                    address=node.get("Status", {}).get("Addr", ""),
                    cpus=resources.get("NanoCPUs", 0) / 1e9,
                    memory_bytes=int(resources.get("MemoryBytes", 0)),
                    gpus=gpus,
                    spaces=sorted({_container_labels(t).get(LABEL_SPACE, "") for t in mine}),
                )
            )
        return sorted(out, key=lambda n: n.name)

    def _gpus_held(self, node_id: str, tasks: builtins.list[dict[str, Any]]) -> dict[str, str]:
        """Device -> Space, from what Swarm handed each GPU task: its container's
        DOCKER_RESOURCE_GPU (this engine's API does not show a task's assigned resources)."""
        held: dict[str, str] = {}
        gpu_tasks = [t for t in tasks if _reserves_gpus(t)]
        engine = self.node_engine(node_id) if gpu_tasks else None
        for task in gpu_tasks:
            container = task.get("Status", {}).get("ContainerStatus", {}).get("ContainerID")
            if engine is None or not container:
                continue
            try:
                env = engine.client.api.inspect_container(container)["Config"]["Env"] or []
            except DockerException:
                continue
            for item in env:
                if item.startswith("DOCKER_RESOURCE_GPU="):
                    for device in item.partition("=")[2].split(","):
                        held[device] = _container_labels(task).get(LABEL_SPACE, "")
        return held

    def move_volume(self, name: str, node: str, image: str) -> None:
        source = self.volume_node(name)
        if source is None:
            raise RuntimeBackendError("the Space has no /data disk on any node yet")
        target = next(
            (n for n in self._api().nodes() if n.get("Description", {}).get("Hostname") == node),
            None,
        )
        if target is None:
            raise RuntimeBackendError(f"no node {node!r} in the Swarm")
        if target["ID"] == source["ID"]:
            return
        ops = SwarmNodeOps(self)
        src, dst = ops._volume_engine(source), ops._volume_engine(target)
        image = self.image(image)
        labels = {LABEL_MANAGED: "true", LABEL_INSTANCE: self.settings.instance}
        space_id = ""
        with contextlib.suppress(DockerException):
            space_id = (src.client.volumes.get(name).attrs.get("Labels") or {}).get(LABEL_SPACE, "")
        dst.ensure_volume(name, space_id, image, 0)
        helpers: builtins.list[tuple[DockerBackend, str]] = []
        try:
            for engine in (src, dst):
                with contextlib.suppress(DockerException):
                    engine.client.images.pull(image)
                created = engine.client.api.create_container(
                    image,
                    command=["true"],
                    user="1000:1000",
                    labels=labels,
                    host_config=engine.client.api.create_host_config(
                        binds={name: {"bind": "/data"}}
                    ),
                )
                helpers.append((engine, created["Id"]))
            stream, _ = src.client.api.get_archive(helpers[0][1], "/data")
            dst.client.api.put_archive(helpers[1][1], "/", b"".join(stream))
        except DockerException as exc:
            raise RuntimeBackendError(f"could not copy /data to {node}: {exc}") from exc
        finally:
            for engine, helper in helpers:
                with contextlib.suppress(DockerException):
                    engine.client.api.remove_container(helper, force=True)
        self.label_node(self._api().inspect_node(target["ID"]), data_label(name), "true")
        self.label_node(self._api().inspect_node(source["ID"]), data_label(name), None)
        src.remove_volume(name)
        log.info("swarm.volume_moved", volume=name, to=node)

    def set_availability(self, node: str, availability: str) -> None:
        """Draining moves every task off the node: Swarm starts each elsewhere and stops the
        old one; `active` takes the node back (Swarm does not rebalance onto it by itself)."""
        if availability not in ("active", "drain", "pause"):
            raise RuntimeBackendError("availability is one of: active, drain, pause")
        api = self._api()
        for found in api.nodes():
            if found.get("Description", {}).get("Hostname") != node:
                continue
            spec = dict(found["Spec"])
            spec["Availability"] = availability
            api.update_node(found["ID"], found["Version"]["Index"], spec)
            return
        raise RuntimeBackendError(f"no node {node!r} in the Swarm")


def _read_stats(engine: DockerBackend, container: str, service: str) -> tuple[str, Usage | None]:
    try:
        try:
            stats = engine.client.api.stats(container, stream=False, one_shot=True)
        except InvalidVersion:  # an engine older than API 1.41: its sampled stats
            stats = engine.client.api.stats(container, stream=False)
    except DockerException:
        return service, None
    return service, cgroup_stats.usage_from_stats(stats)


def _env(template: dict[str, Any]) -> dict[str, str]:
    """A task template's variables."""
    pairs = (item.partition("=") for item in template["ContainerSpec"].get("Env") or [])
    return {key: value for key, _, value in pairs}


def _container_labels(task: dict[str, Any]) -> dict[str, str]:
    return dict(task.get("Spec", {}).get("ContainerSpec", {}).get("Labels") or {})


def _reserves_gpus(task: dict[str, Any]) -> bool:
    reservations = task.get("Spec", {}).get("Resources", {}).get("Reservations") or {}
    return any(
        (r.get("DiscreteResourceSpec") or {}).get("Kind") == GPU_RESOURCE
        for r in reservations.get("GenericResources") or []
    )


def _resource_value(resource: dict[str, Any]) -> str:
    """A GPU generic resource's device id ("" for other kinds or counted ones)."""
    named = resource.get("NamedResourceSpec") or {}
    return str(named.get("Value", "")) if named.get("Kind") == GPU_RESOURCE else ""


class _Stream:
    """A service's log stream as `LogStream` (closable from another thread)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._chunks)

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):
                close()


class SwarmNodeOps(NodeOps):
    """Node-local work, on the engine of the node that runs the service's task; images on
    the build engine (where builds leave them)."""

    def __init__(self, swarm: SwarmBackend) -> None:
        self.swarm = swarm

    def _located(self, service: str) -> tuple[DockerBackend, str]:
        located = self.swarm.container_of(service)
        if located is None:
            raise RuntimeBackendError(f"service {service[:12]} runs no task")
        return located

    def pid(self, container_id: str) -> int | None:
        return None  # not a process of this machine: sleep wakes through the proxy

    def usage(self, containers: Iterable[ContainerState]) -> dict[str, Usage]:
        """From each node's engine: its containers of these services (the nodes listed at
        once), then each one's stats (one-shot: the engine answers at once instead of sampling
        for a second), a few at a time. What is not read within USAGE_DEADLINE_S (a node dead
        but not yet known to Swarm as down) is left out, rather than hold the scrape or the
        sampler."""
        wanted = {c.id for c in containers}
        engines = [e for n in self.swarm.node_ids() if (e := self.swarm.node_engine(n))]
        deadline = time.monotonic() + USAGE_DEADLINE_S
        out: dict[str, Usage] = {}
        pool = ThreadPoolExecutor(max_workers=USAGE_READERS)
        try:
            listed, _ = wait(
                [pool.submit(self._listed, e, wanted) for e in engines], USAGE_DEADLINE_S
            )
            found = [item for future in listed for item in future.result()]
            reads = [pool.submit(_read_stats, *item) for item in found]
            done, _ = wait(reads, timeout=max(0.0, deadline - time.monotonic()))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        for future in done:
            service, use = future.result()
            if use is not None:  # (a service's two containers, for a moment: summed)
                out[service] = out[service] + use if service in out else use
        return out

    def _listed(
        self, engine: DockerBackend, wanted: set[str]
    ) -> builtins.list[tuple[DockerBackend, str, str]]:
        """A node's running containers of the `wanted` services: (its engine, id, service)."""
        try:
            rows = engine.client.api.containers(filters={"label": self._mine()})
        except DockerException:
            return []
        services = ((row, (row.get("Labels") or {}).get(SERVICE_LABEL)) for row in rows)
        return [(engine, str(row["Id"]), svc) for row, svc in services if svc in wanted]

    def _mine(self) -> str:
        return f"{LABEL_INSTANCE}={self.swarm.settings.instance}"

    def writable_sizes(self) -> dict[str, int]:
        """Every node asked at once (each engine sums its containers' files, seconds on a busy
        node); a node that does not answer is left out until the next check."""
        engines = [e for n in self.swarm.node_ids() if (e := self.swarm.node_engine(n))]
        sizes: dict[str, int] = {}
        if not engines:
            return sizes
        pool = ThreadPoolExecutor(max_workers=USAGE_READERS)
        try:
            asked = [pool.submit(self._sizes_on, e) for e in engines]
            done, _ = wait(asked, timeout=SIZES_DEADLINE_S)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        for future in done:
            sizes.update(future.result())
        return sizes

    def _sizes_on(self, engine: DockerBackend) -> dict[str, int]:
        """One node's tasks' writable-layer sizes, by service ({} when it does not answer)."""
        try:
            rows = engine.client.api.containers(size=True, filters={"label": self._mine()})
        except (DockerException, OSError) as exc:
            log.warning("swarm.sizes_unread", engine=engine.client.api.base_url, error=str(exc))
            return {}
        services = ((row, (row.get("Labels") or {}).get(SERVICE_LABEL)) for row in rows)
        return {svc: int(row.get("SizeRw") or 0) for row, svc in services if svc}

    def remove_image(self, image: str) -> None:
        self.swarm.local.remove_image(image)

    def images(self) -> builtins.list[ImageRef]:
        return self.swarm.local.images()

    def _volume_engine(self, node: dict[str, Any]) -> DockerBackend:
        """The node's engine, as a plain-volume one (its /data disks are its own, not this
        machine's loop devices)."""
        name = node.get("Description", {}).get("Hostname", "?")
        url = (node.get("Spec", {}).get("Labels") or {}).get(LABEL_ENGINE)
        if not url or node.get("Status", {}).get("State") != "ready":
            raise RuntimeBackendError(disk_node_down(name))
        plain = self.swarm.settings.model_copy(update={"data_disks": "off"})
        return DockerBackend(plain, base_url=url)

    def ensure_volume(self, name: str, space_id: str, image: str, size_bytes: int) -> None:
        """On the node already holding it, else on the ready node running the fewest
        Spaces; that node is labelled, and the Space's services pinned there."""
        node = self.swarm.volume_node(name)
        if node is None:
            ready = [
                n for n in self.swarm.nodes() if n.state == "ready" and n.availability == "active"
            ]
            if not ready:
                raise RuntimeBackendError("no ready node to hold the Space's /data disk")
            chosen = min(ready, key=lambda n: (len(n.spaces), n.name)).name
            node = next(
                n
                for n in self.swarm._api().nodes()
                if n.get("Description", {}).get("Hostname") == chosen
            )
            self._volume_engine(node).ensure_volume(
                name, space_id, self.swarm.image(image), size_bytes
            )
            self.swarm.label_node(node, data_label(name), "true")
            return
        self._volume_engine(node).ensure_volume(name, space_id, self.swarm.image(image), size_bytes)

    def volume_size(self, name: str) -> int | None:
        return None  # plain volumes on the nodes: no size limit to grow

    def remove_volume(self, name: str) -> None:
        node = self.swarm.volume_node(name)
        if node is None:
            return
        engine = self._volume_engine(node)
        deadline = time.monotonic() + 30
        while True:
            try:
                engine.remove_volume(name)
                break
            except RuntimeBackendError:
                # Swarm removes a service's containers a moment after the service, and keeps
                # exited ones of older tasks: those may still name the volume.
                if time.monotonic() > deadline:
                    raise
                for container in engine.client.containers.list(all=True, filters={"volume": name}):
                    if container.status != "running":  # a running one: its removal is coming
                        with contextlib.suppress(DockerException):
                            container.remove(force=True)
                time.sleep(0.5)
        fresh = self.swarm._api().inspect_node(node["ID"])
        self.swarm.label_node(fresh, data_label(name), None)

    def volumes(self) -> builtins.list[str]:
        names = set()
        for node in self.swarm._api().nodes():
            for label in node.get("Spec", {}).get("Labels") or {}:
                if label.startswith(DATA_LABEL_PREFIX):
                    names.add(label[len(DATA_LABEL_PREFIX) :])
        return sorted(names)

    def image_layers(self, image: str) -> builtins.list[str]:
        """The build engine's copy's layers, else the registry's (a build worker elsewhere
        made it): the same digests either way."""
        layers = self.swarm.local.image_layers(image)
        registry = self.swarm.registry_read()
        if not layers and registry:
            layers = registry_images.image_layers(registry, image) or []
        return layers

    def image_command(self, image: str) -> builtins.list[str]:
        config = self.swarm.image_config(image)
        if not config:
            raise RuntimeBackendError(f"no image {image} on the build engine or the registry")
        return [str(part) for part in config.get("Cmd") or []]

    def copy_from_image(
        self, image: str, path: str, container_id: str, then: dict[str, bytes] | None = None
    ) -> None:
        """From the build engine's copy of the image when it has one (as on one node: no pull,
        and the archive it keeps, `keep_image_dir`); else the node pulls the image and copies
        from its own."""
        engine, container = self._located(container_id)
        try:
            archive = self.swarm.local.image_dir(image, path)
        except RuntimeBackendError:
            remote = self.swarm.image(image)
            try:
                engine.client.images.pull(remote)
            except DockerException as exc:
                raise RuntimeBackendError(f"the node could not pull {remote}: {exc}") from exc
            engine.copy_from_image(remote, path, container, then)
            return
        engine.put_dir(archive, path, container, then)

    def keep_image_dir(self, image: str, path: str) -> None:
        self.swarm.local.keep_image_dir(image, path)

    def put_file(self, container_id: str, path: str, data: bytes) -> None:
        engine, container = self._located(container_id)
        engine.put_file(container, path, data)

    def set_cpu_shares(self, container_id: str, shares: int) -> None:
        engine, container = self._located(container_id)
        engine.set_cpu_shares(container, shares)

    def set_limits(
        self, container_id: str, cpus: float, memory_bytes: int, cpu_shares: int
    ) -> None:
        # A service's task cannot change its service: the node pool is one engine's.
        raise RuntimeBackendError(NO_POOL)

    def rename(self, container_id: str, name: str) -> None:
        raise RuntimeBackendError(NO_POOL)

    def _helper(
        self, engine: DockerBackend, module: str, args: list[str], also: list[str]
    ) -> dict[str, Any]:
        """`module` run on the node `engine` reaches, from the published helper image."""
        image, image_id = node_helper.published(self.swarm.settings)
        return node_helper.run_module(engine.client, image, image_id, module, args, also)

    def node_zram(self, node_id: str) -> zram.ZramSwap | None:
        """The node's zram swap, as its own kernel says (a helper on its engine), None when
        it has none; RuntimeBackendError when the node cannot be asked."""
        engine = self.swarm.node_engine(node_id)
        if engine is None:
            raise RuntimeBackendError(f"node {node_id[:12]} has no reachable engine")
        found = self._helper(engine, "zram", [], [])
        try:
            return zram.ZramSwap(**found) if found else None
        except TypeError as exc:
            raise RuntimeBackendError(f"the node's helper said {found!r}") from exc

    def compress_memory(self, container_id: str) -> Compressed:
        """On the task's node (its cgroup and zram are there, and its pid is that node's): the
        same squeeze as on one machine, run by a helper container (engine/node_helper.py)."""
        engine, container = self._located(container_id)
        target = engine.squeeze_target(container)
        if target is None:
            return Compressed(0, skipped=NOT_SQUEEZABLE)
        with contextlib.suppress(RuntimeBackendError):  # a task Swarm made by itself
            engine.no_swap_of_its_own(container, target.host)
        args = [str(target.pid), str(target.limit), node_helper.HOST_CGROUP, target.id]
        done = self._helper(engine, "memory_squeeze", args, ["zram"])
        if done.get("skipped"):
            return Compressed(0, skipped=str(done["skipped"]))
        try:
            return Compressed(int(done["moved_bytes"]), int(done["resident_bytes"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise RuntimeBackendError(f"the node's helper said {done!r}") from exc
