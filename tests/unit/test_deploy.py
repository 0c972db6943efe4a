"""The deployment files a new user copies: they lint, validate and agree with the code."""

from __future__ import annotations

import re
import shutil
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


def _stages() -> dict[str, str]:
    """Stage name (or "final") -> its text, from ``FROM`` to the next one."""
    text = (ROOT / "Dockerfile").read_text()
    parts = re.split(r"^(?=FROM )", text, flags=re.M)[1:]
    stages: dict[str, str] = {}
    for part in parts:
        head = part.splitlines()[0].split()
        stages[head[3] if len(head) == 4 and head[2].upper() == "AS" else "final"] = part
    return stages


def test_image_is_debian_python_in_a_venv_multi_stage_without_build_tools() -> None:
    stages = _stages()
    assert set(stages) == {"runtime", "build", "final"}, "runtime, build, and the final stage"
    runtime, build, final = stages["runtime"], stages["build"], stages["final"]
    assert runtime.startswith("FROM debian:bookworm-slim AS runtime")
    assert build.startswith("FROM runtime AS build") and final.startswith("FROM runtime\n")
    # The runtime packages are Python and the CA store, nothing else; the venv is copied.
    installed = re.findall(r"apt-get install -y --no-install-recommends ([^\\&]+)", runtime)
    assert [i.split() for i in installed] == [["python3.11", "ca-certificates"]]
    assert "COPY --from=build /opt/cognito-gate /opt/cognito-gate" in final
    assert "--only-binary=:all:" in build  # no sdist is compiled, so no compiler is needed
    for tooling in ("gcc", "build-essential", "python3-dev", "apt-get", "pip "):
        assert tooling not in final, tooling
    for tooling in ("gcc", "build-essential", "python3-dev"):
        assert tooling not in runtime + build, tooling


def test_final_image_is_non_root_with_healthcheck_and_stop_signal() -> None:
    final = _stages()["final"]
    assert re.search(r"^USER 10001:10001$", final, re.M)
    assert "useradd --uid 10001" in _stages()["runtime"]
    assert "HEALTHCHECK" in final and "/_auth/healthz" in final
    assert re.search(r"^STOPSIGNAL SIGTERM$", final, re.M)
    assert re.search(r"^EXPOSE 8080 9090$", final, re.M)
    assert 'ENTRYPOINT ["cognito-gate"]' in final
    for label in ("title", "description", "licenses", "version", "revision"):
        assert f"org.opencontainers.image.{label}=" in final, label


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
    assert "127.0.0.1:${COGNITO_GATE_PORT:-8080}:8080" in proxy["ports"]
    # The proxy, the local Cognito and the demo app run the project's one image, hardened.
    for name in ("proxy", "cognito", "demo-app"):
        service = compose["services"][name]
        assert service["image"] == "localhost/cognito-gate:local", name
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"], name
    assert compose["services"]["redis"]["command"][1:3] == ["--appendonly", "yes"]


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
    from proxy.demo import DEMO_SITES, double_env, start_demo_cognito

    cognito = start_demo_cognito(DEMO_SITES[:1], public_url="http://cognito:4566")
    try:
        written = double_env(cognito)
    finally:
        cognito.stop()
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

# The preStop sleep action is on by default from 1.30; kubernetes-validate knows up to 1.37.
SUPPORTED_KUBERNETES = [f"1.{minor}.0" for minor in range(30, 38)]
OVERLAYS = {"base": K8S, "sidecar": K8S / "sidecar"}


def kustomize(path: Path) -> str:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl missing: apt-get install kubectl (.ci/run does)"
    done = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, dict[str, Any]]]:
    """overlay -> kind -> the one resource of that kind it renders (NetworkPolicy: by name)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for overlay, path in OVERLAYS.items():
        found: dict[str, dict[str, Any]] = {}
        for doc in yaml.safe_load_all(kustomize(path)):
            key = doc["kind"]
            if key == "NetworkPolicy":
                key = f"NetworkPolicy/{doc['metadata']['name']}"
            assert key not in found, (overlay, key)
            found[key] = doc
        out[overlay] = found
    return out


def _validate(files: list[str], version: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("kubernetes-validate"), "--strict", "--quiet", "-k", version, *files],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_rendered_manifests_validate_for_every_supported_kubernetes(
    overlay: str, tmp_path: Path
) -> None:
    out = tmp_path / f"{overlay}.yaml"
    out.write_text(kustomize(OVERLAYS[overlay]))
    for version in SUPPORTED_KUBERNETES:
        done = _validate([str(out)], version)
        assert done.returncode == 0, f"{overlay} on {version}:\n{done.stdout}{done.stderr}"


def test_the_schema_check_does_reject_a_wrong_manifest(tmp_path: Path) -> None:
    doc = yaml.safe_load((K8S / "base" / "deployment.yaml").read_text())
    doc["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}  # typo
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    assert _validate([str(bad)], SUPPORTED_KUBERNETES[0]).returncode != 0
    # ...and the versions left out do lack what the manifests use: 1.28's schema has no preStop
    # sleep action (1.29's has it, behind a feature gate that is off by default).
    good = tmp_path / "good.yaml"
    good.write_text(kustomize(K8S))
    assert _validate([str(good)], "1.28.0").returncode != 0


def test_kubectl_kustomize_of_the_directory_renders_the_base(
    rendered: dict[str, dict[str, dict[str, Any]]],
) -> None:
    assert yaml.safe_load_all(kustomize(K8S)) and set(rendered["base"]) == {
        "ServiceAccount",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy/cognito-gate",
        "NetworkPolicy/legacy-app-only-through-the-gate",
    }
    assert set(rendered["sidecar"]) == set(rendered["base"]) - {
        "NetworkPolicy/legacy-app-only-through-the-gate"
    }


def _pod(resources: dict[str, dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = resources["Deployment"]["spec"]["template"]["spec"]
    return spec


def _containers(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in _pod(resources)["containers"]}


def _image_user() -> tuple[int, int]:
    user = re.search(r"^USER (\d+):(\d+)$", _stages()["final"], re.M)
    assert user
    return int(user.group(1)), int(user.group(2))


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_the_gate_runs_as_the_image_user_read_only_without_capabilities(
    overlay: str, rendered: dict[str, dict[str, dict[str, Any]]]
) -> None:
    resources = rendered[overlay]
    pod = _pod(resources)
    gate = _containers(resources)["cognito-gate"]
    uid, gid = _image_user()
    context = {**pod["securityContext"], **gate["securityContext"]}
    assert (context["runAsUser"], context["runAsGroup"]) == (uid, gid)
    assert context["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], container["name"]
        assert "requests" in container["resources"], container["name"]
    assert gate["image"].startswith("registry.example.com/cognito-gate:")


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_shutdown_timing_fits_the_drain_window(
    overlay: str, rendered: dict[str, dict[str, dict[str, Any]]]
) -> None:
    resources = rendered[overlay]
    containers = _containers(resources)
    drain = float(resources["ConfigMap"]["data"]["GATE_DRAIN_SECONDS"])
    gate_pre = containers["cognito-gate"]["lifecycle"]["preStop"]["sleep"]["seconds"]
    # The gate drains, plus its final 5 s grace, before the pod is killed...
    assert _pod(resources)["terminationGracePeriodSeconds"] > gate_pre + drain + 5
    if "app" in containers:
        # ...and an app in the same Pod keeps serving until the gate has drained.
        assert containers["app"]["lifecycle"]["preStop"]["sleep"]["seconds"] >= gate_pre + drain


@pytest.mark.parametrize("overlay", sorted(OVERLAYS))
def test_probes_ports_secrets_and_settings_agree_with_the_code(
    overlay: str, rendered: dict[str, dict[str, dict[str, Any]]]
) -> None:
    resources = rendered[overlay]
    gate = _containers(resources)["cognito-gate"]
    config = resources["ConfigMap"]["data"]
    assert gate["readinessProbe"]["httpGet"]["path"] == "/_auth/readyz"
    assert gate["livenessProbe"]["httpGet"]["path"] == "/_auth/healthz"
    assert gate["startupProbe"]["httpGet"]["path"] == "/_auth/healthz"
    ports = {p["name"]: p["containerPort"] for p in gate["ports"]}
    assert config["GATE_LISTEN"].endswith(f":{ports['http']}")
    assert config["GATE_METRICS_LISTEN"].endswith(f":{ports['metrics']}")
    assert resources["Service"]["spec"]["ports"][0]["targetPort"] == "http"
    labels = resources["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert resources["Service"]["spec"]["selector"].items() <= labels.items()
    sources = {next(iter(s.values()))["name"] for s in gate["envFrom"]}
    assert sources == {
        resources["ConfigMap"]["metadata"]["name"],
        resources["Secret"]["metadata"]["name"],
    }
    for name in [*config, *resources["Secret"]["stringData"]]:
        assert is_setting(name), name
    assert set(resources["Secret"]["stringData"]) >= {"GATE_COOKIE_SECRET"}
    # Into the gate's pods: the gate's port (ingress controller) and metrics, nothing else.
    policy = resources["NetworkPolicy/cognito-gate"]["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert {p["port"] for rule in policy["ingress"] for p in rule["ports"]} == {8080, 9090}


def test_base_app_is_reachable_only_from_the_gate(
    rendered: dict[str, dict[str, dict[str, Any]]],
) -> None:
    resources = rendered["base"]
    assert set(_containers(resources)) == {"cognito-gate"}
    upstream = resources["ConfigMap"]["data"]["GATE_UPSTREAM_URL"]
    app_port = int(upstream.rsplit(":", 1)[1])
    fence = resources["NetworkPolicy/legacy-app-only-through-the-gate"]["spec"]
    gate_labels = resources["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert fence["policyTypes"] == ["Ingress"]
    [rule] = fence["ingress"]
    [source] = rule["from"]
    assert set(source) == {"podSelector"}  # no namespaceSelector, no ipBlock
    assert source["podSelector"]["matchLabels"].items() <= gate_labels.items()
    assert [p["port"] for p in rule["ports"]] == [app_port]


def test_sidecar_app_is_bound_to_the_pods_loopback(
    rendered: dict[str, dict[str, dict[str, Any]]],
) -> None:
    resources = rendered["sidecar"]
    app = _containers(resources)["app"]
    env = {e["name"]: e["value"] for e in app["env"]}
    assert env["HOST"] == "127.0.0.1"
    assert resources["ConfigMap"]["data"]["GATE_UPSTREAM_URL"] == f"http://127.0.0.1:{env['PORT']}"
    assert "ports" not in app  # nothing declares the app's port to the cluster
