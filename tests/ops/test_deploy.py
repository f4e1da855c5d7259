"""deploy/ validated statically: hadolint, kubernetes-validate, and every command, setting and
probe path the files name exists in the code."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from app.cli import cli
from app.config import Settings
from app.main import create_app
from app.security.passwords import MAX_RETRY_AFTER
from app.serving import uvicorn_options
from tests.conftest import REPO, SettingsFactory

DEPLOY = REPO / "deploy"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
ENV_VAR = re.compile(r"\bOMS_AUTH_[A-Z0-9_]+\b")


def _tool(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    assert Path(found).exists(), f"{name} is installed by `make install` (dev extra)"
    return found


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _objects() -> list[dict[str, Any]]:
    return [d for path in MANIFESTS for d in _docs(path)]


def test_hadolint_passes_the_dockerfile() -> None:
    run = subprocess.run(
        [_tool("hadolint"), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_kubernetes_validate_passes_every_manifest() -> None:
    assert len(MANIFESTS) >= 6
    run = subprocess.run(
        [_tool("kubernetes-validate"), "--strict", *map(str, MANIFESTS)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "failed" not in run.stdout.lower(), run.stdout


def test_the_manifests_hold_the_production_shape() -> None:
    kinds = {d["kind"] for d in _objects()}
    assert kinds >= {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "ConfigMap",
        "Job",
    }
    deployment = next(d for d in _objects() if d["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    secrets = [e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e]
    assert {s["key"] for s in secrets} >= {"encryption-key", "database-url", "admin-api-key"}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["policies"] == "/srv/oms-auth/policies"
    job = next(d for d in _objects() if d["kind"] == "Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]


def test_the_policy_configmap_is_the_shipped_policy() -> None:
    maps = [d for d in _objects() if d["kind"] == "ConfigMap"]
    policies = next(d for d in maps if d["metadata"]["name"] == "oms-auth-policies")
    for name, content in policies["data"].items():
        assert content == (REPO / "policies" / name).read_text(), name
    assert set(policies["data"]) == {"model.conf", "policy.csv"}


def test_every_setting_named_in_deploy_files_exists() -> None:
    fields = {f"OMS_AUTH_{name.upper()}" for name in Settings.model_fields}
    files = [p for p in DEPLOY.rglob("*") if p.is_file() and p.suffix != ".json"]
    named: dict[str, list[str]] = {}
    for path in files:
        for var in ENV_VAR.findall(path.read_text(errors="replace")):
            named.setdefault(var, []).append(str(path.relative_to(REPO)))
    assert len(named) >= 10
    unknown = {var: where for var, where in named.items() if var not in fields}
    assert not unknown, f"not settings in app/config.py: {unknown}"


def test_the_image_entrypoint_and_commands_exist() -> None:
    text = DOCKERFILE.read_text()
    entry = re.search(r'^ENTRYPOINT \["([^"]+)"\]', text, re.M)
    command = re.search(r'^CMD \["([^"]+)"\]', text, re.M)
    assert entry and command
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[entry.group(1)] == "app.cli:main"
    compose = yaml.safe_load(COMPOSE.read_text())
    commands = {command.group(1)}
    commands |= {s["command"][0] for s in compose["services"].values() if "command" in s}
    commands -= {"redis-server"}
    commands |= {
        c["args"][0]
        for d in _objects()
        if d["kind"] in ("Deployment", "Job")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert commands == {"serve", "migrate"}
    for name in commands:
        result = CliRunner().invoke(cli, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)


def test_the_image_is_multi_stage_non_root_with_a_healthcheck() -> None:
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM ", text, re.M)
    assert len(stages) >= 2
    final = text[text.rindex("\nFROM ") :]
    assert re.search(r"^USER 10001", final, re.M)
    assert "HEALTHCHECK" in final and "/livez" in final
    assert "apt-get" not in final and "gcc" not in final and "build-essential" not in final
    assert "pip uninstall" in final  # no package installer left in the image
    assert "PYTHONDONTWRITEBYTECODE=1" in final  # nothing written next to the code


def test_compose_runs_two_instances_behind_tls_after_a_one_shot_migration() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert {"postgres", "redis", "migrate", "proxy"} <= set(services)
    instances = [n for n, s in services.items() if s.get("command") is None and "build" in s]
    assert len(instances) == 2
    for name in instances:
        service = services[name]
        assert service["read_only"] is True
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["restart"] == "no"
    nginx = (DEPLOY / "nginx" / "oms-auth.conf").read_text()
    for name in instances:
        assert f"server {name}:8000" in nginx
    assert "listen 443 ssl" in nginx and "return 308 https://" in nginx
    assert "X-Forwarded-For $remote_addr" in nginx  # overwritten, never passed through


def test_the_proxy_closes_idle_upstream_connections_before_the_server_does() -> None:
    """A server closing a keep-alive connection the proxy is about to reuse fails that request
    with a 502: the server's idle timeout must outlive the proxy's (and the longest
    Retry-After, so a client coming back when told finds its connection open)."""
    nginx = (DEPLOY / "nginx" / "oms-auth.conf").read_text()
    upstream = nginx.split("upstream oms_auth {", 1)[1].split("}", 1)[0]
    found = re.search(r"keepalive_timeout\s+(\d+)s;", upstream)
    assert found, "the upstream block must set keepalive_timeout"
    settings = Settings()
    assert uvicorn_options(settings)["timeout_keep_alive"] == settings.keep_alive_timeout
    assert settings.keep_alive_timeout > int(found.group(1))
    assert settings.keep_alive_timeout > MAX_RETRY_AFTER


async def test_probe_paths_exist(make_settings: SettingsFactory) -> None:
    paths = set(create_app(make_settings()).openapi()["paths"])
    assert {"/livez", "/readyz", "/metrics"} <= paths
