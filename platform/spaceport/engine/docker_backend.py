"""Run Spaces on one Docker Engine through the docker SDK.

Every app container is locked down the same way: uid 1000, all capabilities dropped,
no-new-privileges, memory/CPU/pids limits, a port published on 127.0.0.1 only, and a network
of its own where apps cannot talk to each other.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import posixpath
import re
import tarfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar, NamedTuple, cast

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container
from docker.models.networks import Network

from spaceport.engine import (
    app_init,
    cgroup_stats,
    data_disks,
    image_files,
    memory_squeeze,
    network_policy,
)
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
    NodeOps,
    RuntimeBackend,
    RuntimeBackendError,
    Usage,
)
from spaceport.engine.gpus.attach import attachment
from spaceport.engine.gpus.shared import shared_attachment
from spaceport.settings import Settings

LIVE_STATES = ["running", "paused", "restarting"]
EXIT_CODE = re.compile(r"Exited \((-?\d+)\)")  # a summary's "Exited (143) 2 minutes ago"


class DockerBackend(RuntimeBackend, NodeOps):
    """One Docker engine: the workloads of this node and the node itself."""

    def __init__(self, settings: Settings, base_url: str | None = None) -> None:
        """`base_url`: another engine than DOCKER_HOST's (a cluster node's, engine/swarm)."""
        self.settings = settings
        self._ncpu: float | None = None
        try:
            self.client = (
                docker.DockerClient(base_url=base_url, timeout=120)
                if base_url
                else docker.from_env(timeout=120)
            )
        except DockerException as exc:
            raise RuntimeBackendError(
                f"cannot reach the Docker engine ({exc}); start dockerd or set DOCKER_HOST"
            ) from exc

    def node_ops(self) -> NodeOps:
        return self

    def network_name(self, egress: bool = True) -> str:
        """The apps' network: the operator's outbound policy applies on it; apps whose README
        says `egress: false` sit on a twin network with no outbound access at all."""
        return self.settings.app_network if egress else f"{self.settings.app_network}-offline"

    def ensure_network(self, egress: bool = True) -> str:
        name = self.network_name(egress)
        try:
            self._isolate(self.client.networks.get(name), egress)
        except NotFound:
            try:
                self.client.networks.create(
                    name,
                    driver="bridge",
                    labels={LABEL_MANAGED: "true"},
                    options={"com.docker.network.bridge.enable_icc": "false"},
                )
            except APIError as exc:  # another process created it meanwhile
                if exc.status_code != 409:
                    raise
            self._isolate(self.client.networks.get(name), egress)
        return name

    _isolated: ClassVar[set[str]] = set()

    def _isolate(self, network: Network, egress: bool) -> None:
        """Firewall the apps' bridge once per process (see engine/network_policy.py)."""
        options = network.attrs.get("Options") or {}
        bridge = options.get("com.docker.network.bridge.name") or f"br-{(network.id or '')[:12]}"
        if bridge in self._isolated:
            return
        egress = self.settings.app_egress and egress
        network_policy.apply(
            bridge,
            egress=egress,
            egress_ports=self.settings.app_egress_ports,
            # Apps that may talk to anyone reach the node's own public entry point too, as a
            # visitor does (one Space calling another); apps that may not, do not.
            entry_ports=self.settings.entry_ports if egress else (),
        )
        self._isolated.add(bridge)

    def _gateway(self, network_name: str) -> str:
        """The host's address on the apps' bridge: where their node names lead (its
        firewall opens the entry point there); the engine's host-gateway if it has none."""
        network = self.client.networks.get(network_name)
        for config in (network.attrs.get("IPAM") or {}).get("Config") or []:
            if config.get("Gateway") and ":" not in config["Gateway"]:
                return str(config["Gateway"])
        return "host-gateway"

    def host_cpus(self) -> float:
        """The engine's CPU count: a flavor's CPUs are capped to it (the engine refuses more)."""
        if self._ncpu is None:
            self._ncpu = float(self.client.info().get("NCPU") or 1)
        return self._ncpu

    def _runtime(self, spec: ContainerSpec) -> str | None:
        """The OCI runtime of this container: its flavor's, else the node's, else the engine's."""
        return spec.runtime or self.settings.app_runtime

    def _run_options(self, spec: ContainerSpec) -> dict[str, Any]:
        labels = {
            LABEL_MANAGED: "true",
            LABEL_INSTANCE: self.settings.instance,
            LABEL_SPACE: spec.space_id,
            LABEL_DEPLOYMENT: str(spec.deployment_id),
            **spec.labels,
        }
        volumes: dict[str, dict[str, str]] = {}
        if spec.data_volume:
            volumes[spec.data_volume] = {"bind": "/data", "mode": "rw"}
        env = dict(spec.env)
        options: dict[str, Any] = {}
        runtime = self._runtime(spec)
        if runtime:  # e.g. runsc: gVisor between the app and the kernel
            options["runtime"] = runtime
        gpus = attachment(self.settings, spec.gpus or [])  # the engine's own GPU options
        if spec.shared_gpu:  # no GPU of its own: the broker lends one per call
            gpus = shared_attachment(self.settings)
        if gpus is not None:
            env.update(gpus.env)
            volumes.update(gpus.volumes)
            if gpus.device_requests:
                options["device_requests"] = gpus.device_requests
            if gpus.devices:
                options["devices"] = gpus.devices
            if gpus.device_cgroup_rules:
                options["device_cgroup_rules"] = gpus.device_cgroup_rules
        network = self.ensure_network(spec.egress)
        if spec.node_hosts and spec.egress and self.settings.app_egress:
            gateway = self._gateway(network)
            options["extra_hosts"] = {name: gateway for name in spec.node_hosts}
        return {
            "name": spec.name,
            "user": "1000:1000",
            "environment": env,
            "labels": labels,
            "ports": {f"{spec.port}/tcp": ("127.0.0.1", None)},
            "network": network,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges:true"],
            "nano_cpus": int(min(spec.cpus, self.host_cpus()) * 1e9),
            "mem_limit": spec.memory_bytes,
            "memswap_limit": spec.memory_bytes,
            "pids_limit": spec.pids,
            "volumes": volumes,
            "init": False,
            # A log flood is capped on disk (2 files of 10 MB, rotated) and never blocks the
            # app or the engine: past a 4 MB buffer, lines are dropped instead of waited for.
            "log_config": {
                "type": "json-file",
                "config": {
                    "max-size": "10m",
                    "max-file": "2",
                    "mode": "non-blocking",
                    "max-buffer-size": "4m",
                },
            },
            **({"command": spec.command} if spec.command is not None else {}),
            **({"cpu_shares": spec.cpu_shares} if spec.cpu_shares is not None else {}),
            **options,
        }

    def create(self, spec: ContainerSpec) -> ContainerState:
        options = self._run_options(spec)
        init: bytes | None = None
        if app_init.enabled(self.settings) and self._under_init(spec, options):
            try:
                init = app_init.archive(self.settings)
            except app_init.AppInitError as exc:
                raise RuntimeBackendError(str(exc)) from exc
        try:
            container = self.client.containers.create(spec.image, **options)
        except (APIError, ImageNotFound) as exc:
            hint = ""
            runtime = self._runtime(spec)
            if runtime and "runtime" in str(exc).lower():
                where = (
                    f"the flavor's runtime: {runtime}"
                    if spec.runtime
                    else f"SPACEPORT_APP_RUNTIME={runtime}"
                )
                hint = (
                    f' ({where}: install it and register it under "runtimes" in the '
                    "engine's daemon.json, or unset it)"
                )
            raise RuntimeBackendError(
                f"could not create a container of {spec.image}: {exc}{hint}"
            ) from exc
        if init is not None:
            try:
                self.client.api.put_archive(container.id, "/", init)
            except (APIError, NotFound) as exc:
                self.stop(container.id or "", timeout=0)
                raise RuntimeBackendError(f"could not copy spaceport-init in: {exc}") from exc
        return self._state(container)

    def start(self, spec: ContainerSpec) -> ContainerState:
        state = self.create(spec)
        container = self.client.containers.get(state.id)
        try:
            container.start()
        except APIError as exc:
            self.stop(state.id, timeout=0)
            raise RuntimeBackendError(f"could not start {spec.image}: {exc.explanation}") from exc
        container.reload()
        return self._state(container)

    def _under_init(self, spec: ContainerSpec, options: dict[str, Any]) -> bool:
        """Run the image's entrypoint and command under spaceport-init (engine/app_init.py):
        it comes first, the rest keeps its order. False when the image names no program."""
        try:
            config = self.client.api.inspect_image(spec.image).get("Config") or {}
        except (APIError, ImageNotFound):
            return False  # creating the container says what is wrong with the image
        entrypoint = list(config.get("Entrypoint") or [])
        command = spec.command if spec.command is not None else list(config.get("Cmd") or [])
        if not entrypoint and not command:
            return False
        options["entrypoint"] = app_init.command(self.settings, entrypoint)
        options["command"] = command
        return True

    def inspect(self, container_id: str) -> ContainerState | None:
        try:
            container = self.client.containers.get(container_id)
        except NotFound:
            return None
        return self._state(container)

    def pid(self, container_id: str) -> int | None:
        try:
            attrs = self.client.api.inspect_container(container_id)
        except (NotFound, APIError):
            return None
        return int(attrs.get("State", {}).get("Pid") or 0) or None

    def restart(self, container_id: str) -> ContainerState:
        try:
            container = self.client.containers.get(container_id)
            self._mount_disks(container)
            container.start()
        except (APIError, NotFound) as exc:
            raise RuntimeBackendError(
                f"could not start container {container_id[:12]}: {exc}"
            ) from exc
        container.reload()
        return self._state(container)

    def _mount_disks(self, container: Container) -> None:
        """A kept container's /data disk, mounted again if the node rebooted meanwhile."""
        for mount in container.attrs.get("Mounts") or []:
            if mount.get("Type") == "volume" and mount.get("Name"):
                try:
                    data_disks.mount_existing(self.settings, mount["Name"])
                except data_disks.DataDiskError as exc:
                    raise RuntimeBackendError(f"could not mount the /data disk: {exc}") from exc

    def stop(self, container_id: str, timeout: int = 10) -> None:
        try:
            container = self.client.containers.get(container_id)
            if container.status == "paused":
                container.unpause()
                container.reload()
            if timeout > 0 and container.status == "running":
                container.stop(timeout=timeout)
            container.remove(force=True)
        except NotFound:
            pass
        except APIError as exc:
            if exc.status_code != 404 and "removal" not in str(exc):
                raise
            # Another process (the janitor, a concurrent delete) is removing it: it is gone
            # only when that ends, and what comes next (its volume's removal) depends on it.
            self._wait_gone(container_id, timeout_s=60)

    def _wait_gone(self, container_id: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                self.client.containers.get(container_id)
            except NotFound:
                return
            time.sleep(0.1)
        raise RuntimeBackendError(f"container {container_id[:12]} was not removed in {timeout_s} s")

    def halt(self, container_id: str, timeout: int = 10) -> None:
        try:
            container = self.client.containers.get(container_id)
            if container.status == "paused":
                container.unpause()
            container.stop(timeout=timeout)
        except NotFound:
            pass
        except APIError as exc:
            raise RuntimeBackendError(f"could not stop {container_id[:12]}: {exc}") from exc

    def pause(self, container_id: str) -> None:
        try:
            self.client.api.pause(container_id)
        except APIError as exc:
            raise RuntimeBackendError(f"could not freeze {container_id[:12]}: {exc}") from exc

    def unpause(self, container_id: str) -> None:
        try:
            self.client.api.unpause(container_id)
        except NotFound as exc:
            raise RuntimeBackendError(f"container {container_id[:12]} is gone") from exc
        except APIError as exc:
            if "not paused" not in str(exc):
                raise RuntimeBackendError(f"could not thaw {container_id[:12]}: {exc}") from exc

    def logs(self, container_id: str, tail: int = 50) -> str:
        try:
            raw = self.client.containers.get(container_id).logs(tail=tail)
        except NotFound:
            return ""
        return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)

    def stream_logs(self, container_id: str, tail: int | str = "all") -> LogStream:
        try:
            stream = self.client.api.logs(
                container_id, stream=True, follow=True, timestamps=True, tail=tail
            )
        except (APIError, NotFound) as exc:
            raise RuntimeBackendError(f"no logs for {container_id[:12]}: {exc}") from exc
        return cast(LogStream, stream)

    def list(self, space_id: str | None = None, label: str | None = None) -> list[ContainerState]:
        labels = [f"{LABEL_INSTANCE}={self.settings.instance}"]
        if space_id:
            labels.append(f"{LABEL_SPACE}={space_id}")
        if label:
            labels.append(label)
        out = []
        # The engine's summaries in one call (the SDK's list inspects each container: a
        # second per pass at a thousand kept containers); only the live ones are inspected,
        # for what a summary lacks (their process, their address on the apps' network).
        for row in self.client.api.containers(all=True, filters={"label": labels}):
            if row.get("State") in LIVE_STATES:
                with contextlib.suppress(NotFound):
                    out.append(self._state(self.client.containers.get(row["Id"])))
            else:
                out.append(self._summary_state(row))
        return out

    def live_states(self, container_ids: Iterable[str]) -> dict[str, ContainerState]:
        wanted = set(container_ids)
        if not wanted:
            return {}
        rows = self.client.api.containers(
            filters={"label": f"{LABEL_INSTANCE}={self.settings.instance}", "status": LIVE_STATES}
        )
        return {row["Id"]: self._live_summary(row) for row in rows if row["Id"] in wanted}

    def _live_summary(self, row: dict[str, Any]) -> ContainerState:
        """A running or frozen container from the engine's list summary: its address as
        `_upstream` finds it in an inspect (the summary lists ports, not a port map)."""
        ports: dict[str, list[dict[str, str]]] = {}
        for p in row.get("Ports") or []:
            bindings = ports.setdefault(f"{p.get('PrivatePort')}/{p.get('Type', 'tcp')}", [])
            if p.get("PublicPort"):
                bindings.append({"HostIp": p.get("IP", ""), "HostPort": str(p["PublicPort"])})
        network = {"Ports": ports, "Networks": (row.get("NetworkSettings") or {}).get("Networks")}
        paused = row.get("State") == "paused"
        return replace(
            self._summary_state(row),
            running=not paused,
            paused=paused,
            exit_code=None,
            upstream=self._upstream(network),
        )

    @staticmethod
    def _summary_state(row: dict[str, Any]) -> ContainerState:
        """A container that does not run, from the engine's list summary."""
        exited = EXIT_CODE.match(str(row.get("Status", "")))
        created = row.get("Created")
        return ContainerState(
            id=str(row["Id"]),
            name=str((row.get("Names") or ["/"])[0]).lstrip("/"),
            running=False,
            status=str(row.get("State", "unknown")),
            exit_code=int(exited.group(1)) if exited else None,
            upstream=None,
            labels=dict(row.get("Labels") or {}),
            created=datetime.fromtimestamp(created, UTC).isoformat() if created else "",
        )

    def usage(self, containers: Iterable[ContainerState]) -> dict[str, Usage]:
        """From each container's cgroup files (engine/cgroup_stats.py: a file read, not the
        engine's second-long sample)."""
        out = {}
        for container in containers:
            found = cgroup_stats.usage_of(container.pid) if container.pid else None
            if found is not None:
                out[container.id] = found
        return out

    def writable_sizes(self) -> dict[str, int]:
        # `docker ps --size`: the engine walks each writable layer (cost grows with its files).
        rows = self.client.api.containers(
            size=True, filters={"label": f"{LABEL_INSTANCE}={self.settings.instance}"}
        )
        return {row["Id"]: int(row.get("SizeRw") or 0) for row in rows}

    def remove_image(self, image: str) -> None:
        try:
            self.client.images.remove(image, force=False, noprune=False)
        except (ImageNotFound, NotFound):
            pass
        except APIError:
            pass  # still used by a running container: the next cleanup gets it

    def images(self) -> builtins.list[ImageRef]:
        # The low-level list: one engine call (images.list() inspects every image again).
        found = self.client.api.images(
            filters={"label": f"{LABEL_INSTANCE}={self.settings.instance}"}
        )
        return [
            ImageRef(
                str(i["Id"]),
                [t for t in i.get("RepoTags") or () if t != "<none>:<none>"],
                dict(i.get("Labels") or {}),
            )
            for i in found
        ]

    def ensure_volume(self, name: str, space_id: str, image: str, size_bytes: int) -> None:
        existing = None
        with contextlib.suppress(NotFound):
            existing = self.client.volumes.get(name)
        try:
            has_disk = data_disks.image_path(self.settings, name).exists()
            if has_disk or (existing is None and data_disks.enabled(self.settings)):
                mount = data_disks.ensure(self.settings, name, size_bytes)
                if existing is None:  # the engine binds the disk's filesystem at /data
                    opts = {"type": "none", "o": "bind", "device": str(mount)}
                    self._create_volume(name, space_id, opts)
                return
        except data_disks.DataDiskError as exc:
            raise RuntimeBackendError(f"could not prepare the /data disk: {exc}") from exc
        if existing is not None:
            return  # a plain volume (made while disks were off): kept as it is
        labels = self._create_volume(name, space_id, None)
        try:  # a new volume is root's: hand it to the app's uid once
            self.client.containers.run(
                image,
                entrypoint=["chown", "1000:1000", "/data"],
                command=[],
                user="0:0",
                volumes={name: {"bind": "/data", "mode": "rw"}},
                cap_drop=["ALL"],
                cap_add=["CHOWN"],
                network_disabled=True,
                remove=True,
                labels=labels,
            )
        except DockerException as exc:
            self.remove_volume(name)
            raise RuntimeBackendError(
                f"could not prepare the /data volume with {image} (it needs `chown`): {exc}"
            ) from exc

    def _create_volume(
        self, name: str, space_id: str, driver_opts: dict[str, str] | None
    ) -> dict[str, str]:
        labels = {LABEL_MANAGED: "true", LABEL_INSTANCE: self.settings.instance}
        self.client.volumes.create(
            name, driver_opts=driver_opts or {}, labels={**labels, LABEL_SPACE: space_id}
        )
        return labels

    def volume_size(self, name: str) -> int | None:
        return data_disks.size(self.settings, name)

    def remove_volume(self, name: str) -> None:
        try:
            self.client.volumes.get(name).remove(force=True)
        except NotFound:
            pass
        except APIError as exc:
            raise RuntimeBackendError(f"could not remove volume {name}: {exc}") from exc
        try:
            data_disks.remove(self.settings, name)
        except data_disks.DataDiskError as exc:
            raise RuntimeBackendError(f"could not remove the /data disk {name}: {exc}") from exc

    def volumes(self) -> builtins.list[str]:
        found = self.client.volumes.list(
            filters={"label": f"{LABEL_INSTANCE}={self.settings.instance}"}
        )
        # A disk whose engine volume is gone (a crash between the two steps) is ours too.
        return sorted({v.name for v in found if v.name} | set(data_disks.names(self.settings)))

    def _upstream(self, network: dict[str, Any]) -> str | None:
        """Where the proxy reaches the app: its IP on the apps' network and its own port, a
        direct path (no userland proxy) whose port stays the same from one container of a
        Space to the next, so the proxy moves traffic without a reload; else (a container
        off that network) its port published on loopback."""
        ports = network.get("Ports") or {}
        networks = network.get("Networks") or {}
        app_net = networks.get(self.network_name()) or networks.get(self.network_name(False)) or {}
        # The app's port is the one published (an image may EXPOSE others: nginx's 80); the
        # same one whatever order the engine lists them in (its list summary has none).
        tcp = sorted((k for k in ports if k.endswith("/tcp")), key=lambda k: (not ports[k], k))
        port = tcp[0].split("/")[0] if tcp else None
        if app_net.get("IPAddress") and port:
            return f"{app_net['IPAddress']}:{port}"
        for bindings in ports.values():
            for b in bindings or []:
                if b.get("HostIp") in ("127.0.0.1", "0.0.0.0", ""):
                    return f"127.0.0.1:{b['HostPort']}"
        return None

    def _state(self, container: Container) -> ContainerState:
        attrs = container.attrs
        state = attrs.get("State", {})
        upstream = self._upstream(attrs.get("NetworkSettings") or {})
        return ContainerState(
            id=container.id or "",
            name=container.name or "",
            running=bool(state.get("Running")) and not state.get("Paused"),
            status=str(state.get("Status", "unknown")),
            exit_code=state.get("ExitCode"),
            upstream=upstream,
            labels=dict(attrs.get("Config", {}).get("Labels") or {}),
            paused=bool(state.get("Paused")),
            oom_killed=bool(state.get("OOMKilled")),
            created=str(attrs.get("Created", "")),
            pid=int(state.get("Pid") or 0),
        )

    def image_layers(self, image: str) -> builtins.list[str]:
        try:
            attrs = self.client.api.inspect_image(image)
        except (NotFound, ImageNotFound, APIError):
            return []
        return [str(layer) for layer in (attrs.get("RootFS") or {}).get("Layers") or []]

    def image_command(self, image: str) -> builtins.list[str]:
        try:
            attrs = self.client.api.inspect_image(image)
        except (NotFound, ImageNotFound, APIError) as exc:
            raise RuntimeBackendError(f"no image {image}: {exc}") from exc
        return [str(part) for part in (attrs.get("Config") or {}).get("Cmd") or []]

    def copy_from_image(
        self, image: str, path: str, container_id: str, then: dict[str, bytes] | None = None
    ) -> None:
        self.put_dir(self.image_dir(image, path, container_id), path, container_id, then)

    def put_dir(
        self, archive: bytes, path: str, container_id: str, then: dict[str, bytes] | None = None
    ) -> None:
        """Unpack `archive` (the directory `path` as the engine archives it: `image_dir`) into
        the same place of a running container, then write the files `then`, in one step."""
        try:
            if then:  # one archive from the root: the engine mounts the container once
                archive = _rooted(archive, posixpath.dirname(path), then)
                self.client.api.put_archive(container_id, "/", archive)
            else:
                self.client.api.put_archive(container_id, posixpath.dirname(path), archive)
        except (APIError, NotFound, tarfile.TarError) as exc:
            raise RuntimeBackendError(f"could not copy {path} into the container: {exc}") from exc

    def keep_image_dir(self, image: str, path: str) -> None:
        image_id = self._image_id(image, path)
        if not image_files.known(self.settings, image_id, path):
            with self._image_dir_stream(image_id, path, None) as chunks:
                image_files.keep(self.settings, image_id, path, chunks)

    def image_dir(self, image: str, path: str, container_id: str | None = None) -> bytes:
        """`path` of `image` as the engine archives it: the archive kept on disk for the image
        (`keep_image_dir`, engine/image_files.py), else read from the image."""
        image_id = self._image_id(image, path)
        kept = image_files.read(self.settings, image_id, path)
        if kept is not None:
            return kept
        with self._image_dir_stream(image_id, path, container_id) as chunks:
            return b"".join(chunks)

    def _image_id(self, image: str, path: str) -> str:
        try:
            return str(self.client.api.inspect_image(image)["Id"])
        except (APIError, NotFound, ImageNotFound) as exc:
            raise RuntimeBackendError(f"could not read {path} of {image}: {exc}") from exc

    @contextlib.contextmanager
    def _image_dir_stream(
        self, image: str, path: str, container_id: str | None
    ) -> Iterator[Iterator[bytes]]:
        """The archive of `path` in `image`, as the engine streams it from a container made of
        the image (never started), removed after."""
        # The source is a container of this node too: labelled as one, with the Space of the
        # container it serves, so whatever lists the node's containers sees it.
        labels = {LABEL_MANAGED: "true", LABEL_INSTANCE: self.settings.instance}
        with contextlib.suppress(APIError, NotFound):
            target = self.client.api.inspect_container(container_id) if container_id else {}
            space = ((target.get("Config") or {}).get("Labels") or {}).get(LABEL_SPACE)
            if space:
                labels[LABEL_SPACE] = space
        try:
            source = self.client.api.create_container(
                image, command=["true"], user="1000:1000", labels=labels
            )
        except (APIError, ImageNotFound) as exc:
            raise RuntimeBackendError(f"could not read {path} of {image}: {exc}") from exc
        try:
            stream, _ = self.client.api.get_archive(source["Id"], path)
            yield stream
        except (APIError, NotFound) as exc:
            raise RuntimeBackendError(f"could not read {path} of {image}: {exc}") from exc
        finally:
            with contextlib.suppress(APIError, NotFound):
                self.client.api.remove_container(source["Id"], force=True)

    def put_file(self, container_id: str, path: str, data: bytes) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(posixpath.basename(path))
            info.size, info.uid, info.gid, info.mtime = len(data), 1000, 1000, int(time.time())
            tar.addfile(info, io.BytesIO(data))
        try:
            self.client.api.put_archive(container_id, posixpath.dirname(path), buf.getvalue())
        except (APIError, NotFound) as exc:
            raise RuntimeBackendError(f"could not write {path}: {exc}") from exc

    def set_cpu_shares(self, container_id: str, shares: int) -> None:
        try:
            self.client.api.update_container(container_id, cpu_shares=shares)
        except (APIError, NotFound) as exc:
            raise RuntimeBackendError(f"could not reweigh {container_id[:12]}: {exc}") from exc

    def no_swap_of_its_own(self, container_id: str, host: dict[str, Any] | None = None) -> None:
        """Memory and swap together no more than the memory limit, as containers made here
        have it: the app never swaps by itself, only a squeeze moves its pages to zram
        (engine/memory_squeeze.py). Swarm's tasks get twice their memory (swap as much).
        `host`: the container's HostConfig, when the caller has just read it."""
        try:
            if host is None:
                host = self.client.api.inspect_container(container_id).get("HostConfig") or {}
            memory = int(host.get("Memory") or 0)
            if memory and int(host.get("MemorySwap") or 0) != memory:
                self.client.api.update_container(
                    container_id, mem_limit=memory, memswap_limit=memory
                )
        except (APIError, NotFound) as exc:
            raise RuntimeBackendError(f"could not limit {container_id[:12]}: {exc}") from exc

    def set_limits(
        self, container_id: str, cpus: float, memory_bytes: int, cpu_shares: int
    ) -> None:
        try:
            # The engine's update takes NanoCpus (the container was made with them: a CPU
            # period/quota pair would conflict); docker-py's update_container does not.
            api = self.client.api
            url = api._url("/containers/{0}/update", container_id)
            limits = {
                "NanoCpus": int(min(cpus, self.host_cpus()) * 1e9),
                "Memory": memory_bytes,
                "MemorySwap": memory_bytes,
                "CpuShares": cpu_shares,
            }
            api._raise_for_status(api._post_json(url, data=limits))
        except (APIError, NotFound) as exc:
            raise RuntimeBackendError(f"could not limit {container_id[:12]}: {exc}") from exc

    def rename(self, container_id: str, name: str) -> None:
        try:
            self.client.api.rename(container_id, name)
        except (APIError, NotFound) as exc:
            raise RuntimeBackendError(f"could not rename {container_id[:12]}: {exc}") from exc

    def squeeze_target(self, container_id: str) -> SqueezeTarget | None:
        """What a squeeze of the container needs (its main pid, its own memory limit, its
        full id); None when it is not running or has no limit to restore."""
        try:
            attrs = self.client.api.inspect_container(container_id)
        except (APIError, NotFound) as exc:
            raise RuntimeBackendError(f"container {container_id[:12]} is gone: {exc}") from exc
        host = attrs.get("HostConfig") or {}
        pid = int((attrs.get("State") or {}).get("Pid") or 0)
        limit = int(host.get("Memory") or 0)
        return SqueezeTarget(pid, limit, str(attrs["Id"]), host) if pid and limit else None

    def compress_memory(self, container_id: str) -> Compressed:
        target = self.squeeze_target(container_id)
        if target is None:
            return Compressed(0, skipped=NOT_SQUEEZABLE)
        try:
            done = memory_squeeze.squeeze(target.pid, target.limit, container_id=target.id)
        except memory_squeeze.SqueezeSkipped as exc:
            return Compressed(0, skipped=str(exc))
        except OSError as exc:
            raise RuntimeBackendError(f"could not compress {container_id[:12]}: {exc}") from exc
        return Compressed(done.moved_bytes, done.resident_bytes)


class SqueezeTarget(NamedTuple):
    pid: int  # the container's main process, as its engine's machine numbers it
    limit: int  # its own memory limit, which it gets back after the squeeze
    id: str  # its full id (its cgroup names it)
    host: dict[str, Any]  # its HostConfig


NOT_SQUEEZABLE = "not running, or no memory limit to restore"


def _rooted(archive: bytes, parent: str, then: dict[str, bytes]) -> bytes:
    """`archive` (as the engine reads a directory of `parent`) with its paths from the root,
    followed by the files `then` (path: content, owned by uid 1000), in that order."""
    prefix = parent.strip("/")
    out = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(archive)) as src,
        tarfile.open(fileobj=out, mode="w") as dst,
    ):
        for member in src:
            data = src.extractfile(member) if member.isfile() else None
            member.name = posixpath.join(prefix, member.name)
            if member.islnk():  # a hard link names a member of the same archive
                member.linkname = posixpath.join(prefix, member.linkname)
            dst.addfile(member, data)
        for path, content in then.items():
            info = tarfile.TarInfo(path.strip("/"))
            info.size, info.uid, info.gid, info.mtime = len(content), 1000, 1000, int(time.time())
            dst.addfile(info, io.BytesIO(content))
    return out.getvalue()
