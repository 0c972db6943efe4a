"""The deployment files a new user copies: they lint, validate and agree with the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} missing: pip install -e '.[dev]'"
    return str(path)


def is_setting(env: str) -> bool:
    """GATE_LISTEN, GATE_DRAIN_SECONDS, GATE_<SECTION>_<KEY>: a name Settings reads."""
    name = env.removeprefix("GATE_").lower()
    if name in Settings.model_fields:
        return True
    section, _, key = name.partition("_")
    field = Settings.model_fields.get(section)
    model = field.annotation if field else None
    return isinstance(model, type) and key in getattr(model, "model_fields", {})


# -- Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_passes_hadolint() -> None:
    done = subprocess.run(
        [tool("hadolint"), "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_does_catch_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install gcc\nUSER root\n")
    done = subprocess.run(
        [tool("hadolint"), "--no-color", str(bad)], capture_output=True, text=True, check=False
    )
    assert done.returncode != 0


def _final_stage() -> list[str]:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("FROM ")]
    assert len(starts) >= 2, "the Dockerfile must be multi-stage"
    return lines[starts[-1] :]


def test_final_image_is_slim_non_root_with_healthcheck_and_no_build_tools() -> None:
    stage = "\n".join(_final_stage())
    assert stage.startswith("FROM python:3.11-slim")
    assert re.search(r"^USER 10001", stage, re.M)
    assert "HEALTHCHECK" in stage and "/_auth/healthz" in stage
    assert re.search(r"^EXPOSE 8080 9090$", stage, re.M)
    assert 'ENTRYPOINT ["cognito-gate"]' in stage
    for tooling in ("gcc", "build-essential", "apt-get install", "pip wheel"):
        assert tooling not in stage


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for path in (".git", ".venv", "tests"):
        assert path in ignored
    # What the build stage copies must not be ignored.
    for needed in ("proxy", "pyproject.toml", "README.md"):
        assert needed not in ignored


# -- docker-compose.yml ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_has_proxy_redis_local_cognito_and_demo_app(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"proxy", "redis", "cognito", "demo-app"}
    proxy = compose["services"]["proxy"]
    assert proxy["depends_on"]["redis"]["condition"] == "service_healthy"
    assert proxy["depends_on"]["cognito"]["condition"] == "service_healthy"
    assert "127.0.0.1:8080:8080" in proxy["ports"]


def test_compose_build_contexts_and_volumes_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        build = service.get("build")
        if build is None:
            assert "image" in service, name
            continue
        context = ROOT / build["context"]
        assert (context / build.get("dockerfile", "Dockerfile")).is_file(), name
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in compose["volumes"], (name, volume)


def test_compose_env_names_are_real_settings_and_the_proxy_config_loads(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = compose["services"]["proxy"]["environment"]
    for name in env:
        assert not name.startswith("GATE_") or is_setting(name), name
    # What the local Cognito writes into /shared/cognito.env completes the configuration.
    from proxy.demo import LocalCognito, local_cognito_env

    cognito = LocalCognito("http://x", "us-east-1_abc123", "client123", None, None)
    written = local_cognito_env(cognito, "http://cognito:4566")
    pairs = dict(line.split("=", 1) for line in written.splitlines())
    for name, value in {**env, **pairs}.items():
        if name.startswith("GATE_"):
            assert is_setting(name), name
            value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value))  # compose defaults
            monkeypatch.setenv(name, value)
    from proxy.settings import load_settings

    settings = load_settings()
    assert settings.upstream.url == "http://demo-app:3000"
    assert settings.cognito.endpoint_url == "http://cognito:4566"


def test_compose_commands_are_real_cli_verbs(compose: dict[str, Any]) -> None:
    from proxy.__main__ import main

    for name in ("cognito", "demo-app"):
        argv = compose["services"][name]["command"]
        with pytest.raises(SystemExit) as exc:
            main([argv[0], "--help"])
        assert exc.value.code == 0, name
    assert "cognito-gate serve" in " ".join(compose["services"]["proxy"]["entrypoint"])


# -- Kubernetes ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resources() -> dict[str, dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    found = {}
    for name in kustomization["resources"]:
        doc = yaml.safe_load((K8S / name).read_text())
        found[doc["kind"]] = doc
    return found


def test_every_manifest_validates_against_the_kubernetes_schemas() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = [str(K8S / name) for name in kustomization["resources"]]
    assert len(files) >= 6
    done = subprocess.run(
        [tool("kubernetes-validate"), "--strict", "--quiet", *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schema_check_does_reject_a_wrong_manifest(tmp_path: Path) -> None:
    doc = yaml.safe_load((K8S / "deployment.yaml").read_text())
    doc["spec"]["template"]["spec"]["containers"][1]["readinesProbe"] = {}  # typo
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    done = subprocess.run(
        [tool("kubernetes-validate"), "--strict", "--quiet", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0


def _containers(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    spec = resources["Deployment"]["spec"]["template"]["spec"]
    return {c["name"]: c for c in spec["containers"]}


def test_sidecar_shutdown_timing_fits_the_drain_window(
    resources: dict[str, dict[str, Any]],
) -> None:
    spec = resources["Deployment"]["spec"]["template"]["spec"]
    gate = _containers(resources)["cognito-gate"]
    app = _containers(resources)["app"]
    drain = float(resources["ConfigMap"]["data"]["GATE_DRAIN_SECONDS"])
    gate_pre = gate["lifecycle"]["preStop"]["sleep"]["seconds"]
    # The gate drains, plus its final 5 s grace, before the pod is killed...
    assert spec["terminationGracePeriodSeconds"] > gate_pre + drain + 5
    # ...and the app keeps serving until the gate has drained.
    assert app["lifecycle"]["preStop"]["sleep"]["seconds"] >= gate_pre + drain


def test_sidecar_probes_ports_secrets_and_settings_agree_with_the_code(
    resources: dict[str, dict[str, Any]],
) -> None:
    gate = _containers(resources)["cognito-gate"]
    config = resources["ConfigMap"]["data"]
    assert gate["readinessProbe"]["httpGet"]["path"] == "/_auth/readyz"
    assert gate["livenessProbe"]["httpGet"]["path"] == "/_auth/healthz"
    ports = {p["name"]: p["containerPort"] for p in gate["ports"]}
    assert config["GATE_LISTEN"].endswith(f":{ports['http']}")
    assert config["GATE_METRICS_LISTEN"].endswith(f":{ports['metrics']}")
    assert config["GATE_UPSTREAM_URL"].startswith("http://127.0.0.1:")  # app on localhost only
    assert resources["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    assert gate["securityContext"]["runAsUser"] == 10001
    assert all("requests" in c["resources"] for c in _containers(resources).values())
    sources = {next(iter(s.values()))["name"] for s in gate["envFrom"]}
    assert sources == {
        resources["ConfigMap"]["metadata"]["name"],
        resources["Secret"]["metadata"]["name"],
    }
    for name in [*config, *resources["Secret"]["stringData"]]:
        assert is_setting(name), name
    assert set(resources["Secret"]["stringData"]) >= {"GATE_COOKIE_SECRET"}
    policy = resources["NetworkPolicy"]["spec"]["ingress"]
    assert {p["port"] for rule in policy for p in rule["ports"]} == {8080, 9090}
