"""The ``kubernetes`` target: ``kubernetes.core.k8s`` objects for each service of the stack.

A namespace (the project's own unless ``namespace`` is given), the volumes' claims, and per
service a ConfigMap and a Secret for its environment, a Deployment waited for until rolled out,
and a Service for the ports it listens on or that other services reach it on.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from server.errors import ValidationFailed
from server.stacks.layout import MARKS, Builder, memory
from server.stacks.model import Health, Service


class KubernetesBuilder(Builder):
    """``kubernetes.core.k8s``: namespace, then per service ConfigMap, Secret, PVCs, Deployment, Service."""

    @property
    def namespace(self) -> str:
        return str(self.settings.get("namespace") or self.project)

    def meta(self, name: str, service: Service | None = None) -> dict[str, Any]:
        labels = {"app.kubernetes.io/instance": self.project, "app.kubernetes.io/managed-by": "windflow"}
        if service is not None:
            labels["app.kubernetes.io/name"] = service.name
        return {"name": name, "namespace": self.namespace, "labels": labels}

    def resource(self, verb: str, definition: dict[str, Any], **extra: Any) -> dict[str, Any]:
        name = f"{verb} {definition['kind']} {definition['metadata']['name']}"
        return self.task(name, "kubernetes.core.k8s", {"state": "present", "definition": definition, **extra})

    def deploy_tasks(self) -> list[dict[str, Any]]:
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}
        tasks = [self.resource("Apply", namespace)]
        for volume in self.app.volumes:
            if volume not in self.app.external:
                tasks.append(self.resource("Apply", self.claim(volume)))
        timeout = int(self.settings.get("wait_timeout", 300))
        for service in self.app.services:
            plain, secret = self.split_env(service)
            env_name = k8s_name(f"{service.name}-env")
            if plain:
                config = {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": self.meta(env_name, service),
                    "data": plain,
                }
                tasks.append(self.resource("Apply", config))
            if secret:
                data = {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": self.meta(env_name, service),
                    "type": "Opaque",
                    "stringData": secret,
                }
                tasks.append(self.resource("Apply", data))
            tasks.append(
                self.resource(
                    "Roll out", self.deployment(service, bool(plain), bool(secret)), wait=True, wait_timeout=timeout
                )
            )
            if self.ports_of(service):
                tasks.append(self.resource("Apply", self.service(service)))
        return tasks + self.prune_tasks()

    def prune_tasks(self) -> list[dict[str, Any]]:
        """Remove what an earlier version of the stack made and this one no longer has."""
        expected: dict[str, list[str]] = {"Deployment": [], "Service": [], "ConfigMap": [], "Secret": []}
        for service in self.app.services:
            plain, secret = self.split_env(service)
            expected["Deployment"].append(k8s_name(service.name))
            if self.ports_of(service):
                expected["Service"].append(k8s_name(service.name))
            if plain:
                expected["ConfigMap"].append(k8s_name(f"{service.name}-env"))
            if secret:
                expected["Secret"].append(k8s_name(f"{service.name}-env"))
        tasks = []
        for kind, names in expected.items():
            api = "apps/v1" if kind == "Deployment" else "v1"
            found = f"stack_{kind.lower()}s"
            selector = [f"app.kubernetes.io/instance={self.project}"]
            find = {"api_version": api, "kind": kind, "namespace": self.namespace, "label_selectors": selector}
            tasks.append(
                self.task(f"Find the {kind}s of this deployment", "kubernetes.core.k8s_info", find, register=found)
            )
            remove = {
                "state": "absent",
                "api_version": api,
                "kind": kind,
                "namespace": self.namespace,
                "name": "{{ item.metadata.name }}",
            }
            tasks.append(
                self.task(
                    f"Remove the {kind}s the stack no longer has",
                    "kubernetes.core.k8s",
                    remove,
                    raw=True,
                    loop=f"{{{{ {found}.resources }}}}",
                    loop_control={"label": "{{ item.metadata.name }}"},
                    when="item.metadata.name not in stack_expected",
                    vars={"stack_expected": names},
                )
            )
        return tasks

    def split_env(self, service: Service) -> tuple[dict[str, str], dict[str, str]]:
        plain = {k: v for k, v in service.environment.items() if not MARKS.search(v)}
        secret = {k: v for k, v in service.environment.items() if MARKS.search(v)}
        return plain, secret

    def claim(self, volume: str) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": str(self.settings.get("storage_size") or "1Gi")}},
        }
        if self.settings.get("storage_class"):
            spec["storageClassName"] = self.settings["storage_class"]
        claim = self.claim_name(volume)
        return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": self.meta(claim), "spec": spec}

    def claim_name(self, volume: str) -> str:
        """An external volume is a claim that exists already, by its own name."""
        return k8s_name(volume if volume in self.app.external else f"{self.project}-{volume}")

    def ports_of(self, service: Service) -> tuple[tuple[int, str], ...]:
        """The service's ports, and those other services reach it on (``db:5432`` in their settings).

        Compose lets services reach any port of each other; a Kubernetes Service needs the list.
        """
        found = dict.fromkeys(service.container_ports)
        pattern = re.compile(rf"(?<![\w.-]){re.escape(service.name)}:(\d{{1,5}})\b")
        for other in self.app.services:
            if other is service:
                continue
            texts = [*other.environment.values(), *(other.command or ()), *(other.entrypoint or ())]
            for text in texts:
                for match in pattern.finditer(text):
                    if 1 <= int(match[1]) <= 65535:
                        found.setdefault((int(match[1]), "tcp"), None)
        return tuple(found)

    def deployment(self, service: Service, config: bool, secret: bool) -> dict[str, Any]:
        if any(m.kind == "bind" for m in service.mounts):
            bind = next(i for i, m in enumerate(service.mounts) if m.kind == "bind")
            raise ValidationFailed.for_field(
                f"template.services.{service.name}.volumes.{bind}",
                "a bind mount cannot be deployed to Kubernetes; use a named volume",
            )
        selector = {"app.kubernetes.io/instance": self.project, "app.kubernetes.io/name": service.name}
        container: dict[str, Any] = {
            "name": k8s_name(service.name),
            "image": service.image,
            "imagePullPolicy": self.settings.get("image_pull_policy", "IfNotPresent"),
        }
        if service.entrypoint is not None:
            container["command"] = list(service.entrypoint)
        if service.command is not None:
            container["args"] = list(service.command)
        env_from = []
        if config:
            env_from.append({"configMapRef": {"name": k8s_name(f"{service.name}-env")}})
        if secret:
            env_from.append({"secretRef": {"name": k8s_name(f"{service.name}-env")}})
        if env_from:
            container["envFrom"] = env_from
        if self.ports_of(service):
            container["ports"] = [
                {"containerPort": port, "protocol": protocol.upper()} for port, protocol in self.ports_of(service)
            ]
        if service.working_dir:
            container["workingDir"] = service.working_dir
        limits: dict[str, str] = {}
        if service.cpus:
            limits["cpu"] = f"{round(service.cpus * 1000)}m"
        if service.memory:
            limits["memory"] = memory(service.memory) + "i"
        if limits:
            container["resources"] = {"limits": limits}
        if service.health:
            probe = _probe(service.health)
            # Ready as soon as the check passes; not killed while it starts (compose's start_period).
            container["readinessProbe"] = probe
            container["livenessProbe"] = {**probe, "initialDelaySeconds": max(service.health.start_period or 0, 10)}
        volumes: list[dict[str, Any]] = []
        mounts: list[dict[str, Any]] = []
        for mount in service.mounts:
            claim = self.claim_name(mount.source)
            if claim not in [v["name"] for v in volumes]:
                volumes.append({"name": claim, "persistentVolumeClaim": {"claimName": claim}})
            mounts.append({"name": claim, "mountPath": mount.target, "readOnly": mount.read_only})
        if mounts:
            container["volumeMounts"] = mounts
        pod: dict[str, Any] = {"containers": [container]}
        if service.stop_grace_period is not None:
            pod["terminationGracePeriodSeconds"] = service.stop_grace_period
        if service.hostname:
            pod["hostname"] = re.sub(r"[^a-z0-9-]", "-", service.hostname.lower()).strip("-")[:63] or service.name
        if volumes:
            pod["volumes"] = volumes
        if service.restart == "no":
            pod["restartPolicy"] = "Always"  # a Deployment's pods always restart; compose's "no" has no equivalent
        strategy = {"type": "Recreate"} if service.mounts else {"type": "RollingUpdate"}
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": self.meta(k8s_name(service.name), service),
            "spec": {
                "replicas": service.replicas,
                "strategy": strategy,
                "selector": {"matchLabels": selector},
                "template": {"metadata": self.pod_metadata(service, selector), "spec": pod},
            },
        }

    def pod_metadata(self, service: Service, selector: dict[str, str]) -> dict[str, Any]:
        """Labels, and a checksum of the plain environment: a change of it rolls the pods."""
        metadata: dict[str, Any] = {"labels": {**selector, **dict(service.labels)}}
        plain, _ = self.split_env(service)
        if plain:
            digest = hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:16]
            metadata["annotations"] = {"windflow.io/env-checksum": digest}
        return metadata

    def service(self, service: Service) -> dict[str, Any]:
        kind = str(self.settings.get("service_type") or "ClusterIP")
        ports = []
        for port, protocol in self.ports_of(service):
            entry: dict[str, Any] = {
                "name": f"{protocol}-{port}",
                "port": port,
                "targetPort": port,
                "protocol": protocol.upper(),
            }
            published = next((p.published for p in service.ports if p.target == port and p.protocol == protocol), None)
            if kind == "NodePort" and published is not None and 30000 <= published <= 32767:
                entry["nodePort"] = published
            elif kind == "LoadBalancer" and published is not None:
                entry["port"] = published
            ports.append(entry)
        selector = {"app.kubernetes.io/instance": self.project, "app.kubernetes.io/name": service.name}
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": self.meta(k8s_name(service.name), service),
            "spec": {"type": kind, "selector": selector, "ports": ports},
        }

    def undeploy_tasks(self, remove_volumes: bool) -> list[dict[str, Any]]:
        tasks = []
        for service in reversed(self.app.services):
            for kind, api in (("Service", "v1"), ("Deployment", "apps/v1"), ("Secret", "v1"), ("ConfigMap", "v1")):
                name = k8s_name(service.name if kind in ("Service", "Deployment") else f"{service.name}-env")
                args = {
                    "state": "absent",
                    "api_version": api,
                    "kind": kind,
                    "namespace": self.namespace,
                    "name": name,
                    "wait": True,
                }
                tasks.append(self.task(f"Delete {kind} {name}", "kubernetes.core.k8s", args))
        if remove_volumes:
            for volume in sorted(set(self.app.volumes) - self.app.external, key=self.app.volumes.index):
                name = self.claim_name(volume)
                args = {
                    "state": "absent",
                    "api_version": "v1",
                    "kind": "PersistentVolumeClaim",
                    "namespace": self.namespace,
                    "name": name,
                    "wait": True,
                }
                tasks.append(self.task(f"Delete PersistentVolumeClaim {name}", "kubernetes.core.k8s", args))
            if not self.settings.get("namespace"):
                args = {
                    "state": "absent",
                    "api_version": "v1",
                    "kind": "Namespace",
                    "name": self.namespace,
                    "wait": True,
                }
                tasks.append(self.task(f"Delete Namespace {self.namespace}", "kubernetes.core.k8s", args))
        return tasks


def k8s_name(text: str) -> str:
    """A DNS-1123 label (Kubernetes object names): lower case, digits and '-'."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-") or "x"


def _probe(health: Health) -> dict[str, Any]:
    command = list(health.test[1:]) if health.test[0] == "CMD" else ["/bin/sh", "-c", health.test[1]]
    probe: dict[str, Any] = {"exec": {"command": command}}
    if health.interval:
        probe["periodSeconds"] = health.interval
    if health.timeout:
        probe["timeoutSeconds"] = health.timeout
    if health.retries:
        probe["failureThreshold"] = health.retries
    return probe
