"""A one-node Kubernetes 1.20 cluster on loopback: etcd, the control plane and a dockershim kubelet.

Everything listens on 127.0.0.1; the kubelet runs pods in the lab's Docker engine, from local images
only, with no cloud provider (``AWS_EC2_METADATA_DISABLED`` keeps it off the metadata address) and
no kube-proxy, so it touches no iptables. State is fresh on every ``start()``: new keys, new tokens,
an empty etcd. WindFlow reaches the cluster through ``LAB_DIR/kubeconfig`` (an admin token).
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.lab.k8s_build import PAUSE_IMAGE, build_binaries, import_pause_image
from tests.lab.mounts import mountpoints, unmount_under
from tests.lab.paths import LAB_DIR
from tests.lab.pki import LOOPBACK, make_pki
from tests.lab.procs import Daemon, LabError

API_PORT = 16443
SERVICE_RANGE = "10.214.0.0/24"
NODE = "localhost"
CONTROL_PLANE_TIMEOUT = 90
NODE_TIMEOUT = 120
POD_LOG_DIRS = (Path("/var/log/pods"), Path("/var/log/containers"))  # fixed paths in kubelet 1.20
# The kubelet sets these to its own values when it starts (protectKernelDefaults would refuse to run
# instead); the lab puts the machine's values back when it stops.
KERNEL_TUNABLES = tuple(
    Path("/proc/sys", name)
    for name in (
        "vm/overcommit_memory",
        "vm/panic_on_oom",
        "kernel/panic",
        "kernel/panic_on_oops",
        "kernel/keys/root_maxkeys",
        "kernel/keys/root_maxbytes",
        "net/bridge/bridge-nf-call-iptables",  # the kubelet's no-op network plugin asks for 1
    )
)


class KubernetesCluster:
    """``start()`` / ``stop()`` / ``status()`` / ``inventory()`` of the lab cluster."""

    def __init__(self, engine: Any, lab_dir: Path = LAB_DIR) -> None:
        self.engine = engine
        self.dir = lab_dir / "k8s"
        self.pki = self.dir / "pki"
        self.kubelet_root = self.dir / "kubelet"
        self.kubeconfig = lab_dir / "kubeconfig"
        self.server = f"https://{LOOPBACK}:{API_PORT}"
        self.daemons: list[Daemon] = []
        self.timings: dict[str, float] = {}
        self._admin_token = ""
        self.etcd_url = ""
        self._pod_logs_before: set[Path] = set()
        self._tunables_before: dict[Path, str] = {}

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> KubernetesCluster:
        if self.daemons:
            return self
        began = time.monotonic()
        bin_dir = build_binaries()
        self.timings["build_seconds"] = round(time.monotonic() - began, 1)
        if _port_in_use(API_PORT):
            raise LabError(f"127.0.0.1:{API_PORT} is taken: is another lab cluster running?")
        self._reset_state()
        self._import_pause_image()
        tokens = self._write_credentials()
        try:
            began = time.monotonic()
            self._start_etcd()
            self._start_apiserver(bin_dir)
            self._start_controllers(bin_dir, tokens)
            self.timings["control_plane_seconds"] = round(time.monotonic() - began, 1)
            began = time.monotonic()
            self._start_kubelet(bin_dir, tokens["kubelet"])
            self.timings["node_ready_seconds"] = round(time.monotonic() - began, 1)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop in reverse order, then remove pod containers, kubelet mounts and pod log entries."""
        errors = []
        while self.daemons:
            daemon = self.daemons.pop()
            try:
                daemon.stop(timeout=20)
            except Exception as exc:  # noqa: BLE001 - stop the rest, then report
                errors.append(f"{daemon.name}: {exc}")
        try:
            self._remove_pod_containers()
        except Exception as exc:  # noqa: BLE001 - the engine may be gone already; it removes them then
            errors.append(f"pod containers: {exc}")
        unmount_under(self.kubelet_root)
        self._remove_pod_logs()
        self.kubeconfig.unlink(missing_ok=True)  # its token dies with the cluster
        errors.extend(self._restore_tunables())
        if leftovers := mountpoints(self.kubelet_root):
            errors.append(f"still mounted: {leftovers}")
        if errors:
            raise LabError("kubernetes teardown incomplete: " + "; ".join(errors))

    def status(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "target": "kubernetes",
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "daemons": {d.name: d.alive() for d in self.daemons},
            "timings": self.timings,
        }
        info["running"] = bool(self.daemons) and all(info["daemons"].values())
        if info["running"]:
            with contextlib.suppress(LabError, OSError):
                info["node_ready"] = self._node_ready()
                info["version"] = self.api_get("/version").get("gitVersion")
        return info

    def inventory(self) -> dict[str, Any]:
        """Group ``kubernetes``: host ``k8s`` runs ``kubernetes.core`` modules locally."""
        host = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "kubeconfig": str(self.kubeconfig),
            "k8s_auth_kubeconfig": str(self.kubeconfig),
        }
        return {"hosts": {"k8s": host}, "vars": {"k8s_api_server": self.server}}

    # -- API -------------------------------------------------------------------------------------

    def api_get(self, path: str, timeout: float = 5) -> dict[str, Any]:
        """GET a JSON path of the API server as admin."""
        return dict(json.loads(self._get(path, timeout)))

    def _get(self, path: str, timeout: float) -> bytes:
        """GET as admin, with no proxy (loopback only); raises on anything but 2xx."""
        context = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        handlers = (urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
        headers = {"Authorization": f"Bearer {self._admin_token}"}
        request = urllib.request.Request(self.server + path, headers=headers)  # noqa: S310 - https, ours
        with urllib.request.build_opener(*handlers).open(request, timeout=timeout) as response:
            return bytes(response.read())

    def _answers(self, path: str) -> bool:
        try:
            self._get(path, timeout=2)
        except (OSError, urllib.error.URLError):
            return False
        return True

    def _node_ready(self) -> bool:
        try:
            node = self.api_get(f"/api/v1/nodes/{NODE}", timeout=2)
        except (OSError, urllib.error.URLError, ValueError):
            return False
        conditions = node.get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    # -- state and credentials -------------------------------------------------------------------

    def _reset_state(self) -> None:
        unmount_under(self.kubelet_root)
        shutil.rmtree(self.dir, ignore_errors=True)
        for sub in ("pki", "etcd", "kubelet", "kubelet-certs", "dockershim", "volume-plugins", "run"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o700)
        self._pod_logs_before = _pod_log_entries()

    def _import_pause_image(self) -> None:
        with contextlib.closing(self.engine.client()) as client:
            import_pause_image(client)

    def _write_credentials(self) -> dict[str, str]:
        """A CA, the serving and kubelet-client certs, the service-account keys, tokens, kubeconfigs."""
        make_pki(self.pki)
        users = {
            "admin": ("admin", "system:masters"),
            "kubelet": (f"system:node:{NODE}", "system:nodes"),
            "controller-manager": ("system:kube-controller-manager", ""),
            "scheduler": ("system:kube-scheduler", ""),
        }
        tokens = {name: secrets.token_hex(24) for name in users}
        lines = [f'{tokens[name]},{user},{name},"{group}"'.removesuffix(',""') for name, (user, group) in users.items()]
        token_file = self.pki / "tokens.csv"
        token_file.write_text("\n".join(lines) + "\n")
        token_file.chmod(0o600)
        self._admin_token = tokens["admin"]
        for name, token in tokens.items():
            self._write_kubeconfig(self.dir / f"{name}.kubeconfig", name, token)
        self._write_kubeconfig(self.kubeconfig, "admin", tokens["admin"])
        return tokens

    def _write_kubeconfig(self, path: Path, user: str, token: str) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": "lab", "cluster": {"server": self.server, "certificate-authority": str(self.pki / "ca.crt")}}
            ],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": user}}],
            "current-context": "lab",
        }
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o600)

    # -- daemons ---------------------------------------------------------------------------------

    def _daemon(self, name: str, argv: list[str], **env: str) -> Daemon:
        environment = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(self.dir), "LANG": "C.UTF-8", **env}
        daemon = Daemon(name, argv, env=environment, cwd=self.dir)
        daemon.log_path.unlink(missing_ok=True)
        self.daemons.append(daemon.start())
        return daemon

    def _start_etcd(self) -> None:
        client, peer = f"http://{LOOPBACK}:{_free_port()}", f"http://{LOOPBACK}:{_free_port()}"
        self.etcd_url = client
        argv = [
            "etcd",
            "--name=lab",
            f"--data-dir={self.dir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=lab={peer}",
            "--initial-cluster-state=new",
            "--log-level=warn",
            "--logger=zap",
        ]
        etcd = self._daemon("k8s-etcd", argv)
        etcd.wait_until(lambda: _http_ok(f"{client}/health"), timeout=30, what="etcd health")

    def _start_apiserver(self, bin_dir: Path) -> None:
        pki = self.pki
        argv = [
            str(bin_dir / "kube-apiserver"),
            f"--etcd-servers={self.etcd_url}",
            f"--bind-address={LOOPBACK}",
            f"--advertise-address={LOOPBACK}",
            f"--secure-port={API_PORT}",
            "--insecure-port=0",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--token-auth-file={pki / 'tokens.csv'}",
            "--authorization-mode=Node,RBAC",
            "--anonymous-auth=false",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-cluster-ip-range={SERVICE_RANGE}",
            "--endpoint-reconciler-type=none",
            "--kubelet-preferred-address-types=Hostname",
            f"--kubelet-client-certificate={pki / 'kubelet-client.crt'}",
            f"--kubelet-client-key={pki / 'kubelet-client.key'}",
            "--profiling=false",
            f"--cert-dir={self.dir / 'run'}",
        ]
        apiserver = self._daemon("k8s-apiserver", argv)
        apiserver.wait_until(lambda: self._answers("/readyz"), timeout=CONTROL_PLANE_TIMEOUT, what="/readyz")

    def _start_controllers(self, bin_dir: Path, tokens: dict[str, str]) -> None:
        # No serving at all (nothing scrapes them): no ports, no delegated authentication.
        common = ["--leader-elect=false", "--port=0", "--secure-port=0"]
        manager = self.dir / "controller-manager.kubeconfig"
        controller_manager = [
            str(bin_dir / "kube-controller-manager"),
            *common,
            f"--kubeconfig={manager}",
            f"--service-account-private-key-file={self.pki / 'sa.key'}",
            f"--root-ca-file={self.pki / 'ca.crt'}",
            "--use-service-account-credentials=true",
            f"--service-cluster-ip-range={SERVICE_RANGE}",
            "--controllers=*,-nodeipam,-service,-route,-cloud-node-lifecycle",
            f"--flex-volume-plugin-dir={self.dir / 'volume-plugins'}",
            f"--cert-dir={self.dir / 'run'}",
        ]
        scheduler = self.dir / "scheduler.kubeconfig"
        kube_scheduler = [
            str(bin_dir / "kube-scheduler"),
            *common,
            f"--kubeconfig={scheduler}",
            f"--cert-dir={self.dir / 'run'}",
        ]
        daemons = [
            self._daemon("k8s-controller-manager", controller_manager),
            self._daemon("k8s-scheduler", kube_scheduler),
        ]
        # The service-account controller's work shows the controller manager is up; pods need it too.
        daemons[0].wait_until(
            lambda: self._answers("/api/v1/namespaces/default/serviceaccounts/default"),
            timeout=CONTROL_PLANE_TIMEOUT,
            what="the default service account",
        )
        if not daemons[1].alive():
            raise LabError(f"kube-scheduler exited:\n{daemons[1].log_tail()}")

    def _kubelet_config(self) -> Path:
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": LOOPBACK,
            "port": _free_port(),
            "readOnlyPort": 0,
            "healthzBindAddress": LOOPBACK,
            "healthzPort": _free_port(),
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": False},
                "x509": {"clientCAFile": str(self.pki / "ca.crt")},
            },
            "authorization": {"mode": "AlwaysAllow"},  # only the API server holds a client cert of the CA
            "cgroupDriver": "cgroupfs",
            "cgroupsPerQOS": False,
            "enforceNodeAllocatable": [],
            "failSwapOn": False,
            "makeIPTablesUtilChains": False,
            "clusterDNS": [],
            "resolvConf": "",
            "oomScoreAdj": 0,  # root here cannot lower oom_score_adj
            "serializeImagePulls": False,
            "evictionHard": {"memory.available": "50Mi", "nodefs.available": "2%", "imagefs.available": "2%"},
            "imageGCHighThresholdPercent": 99,
            "imageGCLowThresholdPercent": 98,
            # The device manager's socket directory is fixed under /var/lib/kubelet in 1.20.
            "featureGates": {"DevicePlugins": False},
        }
        path = self.dir / "kubelet-config.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def _start_kubelet(self, bin_dir: Path, token: str) -> None:
        run_dir = self.dir / "run"
        argv = [
            str(bin_dir / "kubelet"),
            f"--config={self._kubelet_config()}",
            f"--kubeconfig={self.dir / 'kubelet.kubeconfig'}",
            f"--hostname-override={NODE}",
            "--container-runtime=docker",
            f"--docker-endpoint={self.engine.docker_host}",
            f"--container-runtime-endpoint=unix://{run_dir / 'dockershim.sock'}",
            f"--experimental-dockershim-root-directory={self.dir / 'dockershim'}",
            f"--pod-infra-container-image={PAUSE_IMAGE}",
            f"--root-dir={self.kubelet_root}",
            f"--cert-dir={self.dir / 'kubelet-certs'}",
            f"--volume-plugin-dir={self.dir / 'volume-plugins'}",
            f"--seccomp-profile-root={self.kubelet_root / 'seccomp'}",
            "--cloud-provider=",
            "--enforce-node-allocatable=",
            "--v=1",
        ]
        self._tunables_before = {path: path.read_text().strip() for path in KERNEL_TUNABLES if path.exists()}
        kubelet = self._daemon("k8s-kubelet", argv, AWS_EC2_METADATA_DISABLED="true")
        kubelet.wait_until(self._node_ready, timeout=NODE_TIMEOUT, what=f"node {NODE} Ready")

    # -- teardown --------------------------------------------------------------------------------

    def _remove_pod_containers(self) -> None:
        with contextlib.closing(self.engine.client()) as client:
            for container in client.containers.list(all=True, filters={"name": "k8s_"}):
                if container.name.startswith("k8s_"):
                    container.remove(force=True, v=True)

    def _restore_tunables(self) -> list[str]:
        errors = []
        for path, value in self._tunables_before.items():
            try:
                if path.read_text().strip() != value:
                    path.write_text(value + "\n")
            except OSError as exc:
                errors.append(f"restoring {path}: {exc}")
        self._tunables_before = {}
        return errors

    def _remove_pod_logs(self) -> None:
        """The kubelet's fixed log directories hold nothing of ours afterwards (nor exist, if new)."""
        for entry in _pod_log_entries() - self._pod_logs_before:
            if entry.is_symlink() or entry.is_file():
                entry.unlink(missing_ok=True)
            else:
                shutil.rmtree(entry, ignore_errors=True)
        for directory in POD_LOG_DIRS:
            if directory not in self._pod_logs_before and directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((LOOPBACK, port)) == 0


def _http_ok(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as response:
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _pod_log_entries() -> set[Path]:
    """The log directories that exist and everything in them."""
    existing = {directory for directory in POD_LOG_DIRS if directory.is_dir()}
    return existing | {entry for directory in existing for entry in directory.iterdir()}
