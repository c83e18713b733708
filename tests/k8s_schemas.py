"""Offline validation of rendered manifests, the way an API server with `kubectl apply`'s
default strict field validation would judge them (as far as schemas can tell).

- Built-in kinds: the strict JSON schemas shipped by `kubernetes-validate` (unknown fields
  are errors).
- `ray.io/v1` kinds: the KubeRay CRD openAPIV3Schema vendored in deploy/crds/. Its
  `x-k8s-definition: NAME` markers (embedded core types, see deploy/crds/README.md) become
  references to NAME in kubernetes-validate's strict definitions for the same Kubernetes
  version; objects with `properties` get `additionalProperties: false` (the server rejects
  unknown fields of a structural schema); `nullable` becomes a null type; `metadata` is
  checked as ObjectMeta, as the server does for every object.
- Rules the API server enforces in code rather than in schemas and that the schemas
  therefore miss: every container names an image.

CEL rules (`x-kubernetes-validations`), defaults and int32 ranges are not evaluated.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import yaml
from referencing import Registry, Resource

try:
    import kubernetes_validate
except ImportError as exc:  # pragma: no cover - exercised only on a machine without [dev]
    raise ImportError("kubernetes-validate is missing: install the project's [dev] extra "
                      "(pip install -e '.[dev]')") from exc

ROOT = Path(__file__).resolve().parents[1]
CRD_DIR = ROOT / "deploy" / "crds"
DEFS_ID = "https://kubernetes.io/api/_definitions.json"
# Oldest Kubernetes release deploy/README.md supports, and the newest the package ships.
MIN_K8S = "1.30.0"
K8S_VERSIONS = (MIN_K8S, kubernetes_validate.utils.latest_version())
CRD_FILES = {("ray.io/v1", "RayCluster"): "ray.io_rayclusters.yaml",
             ("ray.io/v1", "RayJob"): "ray.io_rayjobs.yaml"}


def describe(obj: dict) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def validate(obj: dict, k8s_version: str = MIN_K8S) -> list[str]:
    """Every problem found in one object, as `Kind/name: path: message` lines."""
    key = (obj.get("apiVersion"), obj.get("kind"))
    if key in CRD_FILES:
        validator = _crd_validator(key, k8s_version)
        problems = [_format(obj, err) for err in validator.iter_errors(obj)]
    else:
        try:
            kubernetes_validate.validate(obj, k8s_version, strict=True)
            problems = []
        except kubernetes_validate.ValidationError as err:
            problems = [_format(obj, err)]
    problems += [f"{describe(obj)}: {path}: container has no image"
                 for path in _containers_without_image(obj)]
    return problems


def validate_ray_cluster_spec(spec: dict, owner: dict, k8s_version: str = MIN_K8S) -> list[str]:
    """Check a RayJob's embedded cluster spec against the (newer) RayCluster CRD as well."""
    schema = _crd_schema(("ray.io/v1", "RayCluster"))["properties"]["spec"]
    validator = jsonschema.Draft202012Validator(schema, registry=_registry(k8s_version))
    return [_format(owner, err, prefix="spec.rayClusterSpec")
            for err in validator.iter_errors(spec)]


def k8s_definition_names() -> set[str]:
    """The core types the vendored CRDs point to with `x-k8s-definition`."""
    names: set[str] = set()
    for filename in CRD_FILES.values():
        _walk_markers(yaml.safe_load((CRD_DIR / filename).read_text(encoding="utf-8")), names)
    return names


def k8s_definitions(k8s_version: str) -> dict:
    return _definitions(k8s_version)["$defs"]


def _walk_markers(node: Any, names: set[str]) -> None:
    if isinstance(node, dict):
        if "x-k8s-definition" in node:
            names.add(node["x-k8s-definition"])
        for value in node.values():
            _walk_markers(value, names)
    elif isinstance(node, list):
        for value in node:
            _walk_markers(value, names)


def _format(obj: dict, err: jsonschema.ValidationError, prefix: str = "") -> str:
    path = ".".join([prefix] * bool(prefix) + [str(p) for p in err.absolute_path]) or "(root)"
    return f"{describe(obj)}: {path}: {err.message}"


@lru_cache(maxsize=None)
def _definitions(k8s_version: str) -> dict:
    minor = ".".join(k8s_version.split(".")[:2])
    folder = f"v{minor}.0-local-strict"
    ref = (importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"
           / folder / "_definitions.json")
    return json.loads(ref.read_text(encoding="utf-8"))


@lru_cache(maxsize=None)
def _registry(k8s_version: str) -> Registry:
    return Registry().with_resource(DEFS_ID, Resource.from_contents(_definitions(k8s_version)))


@lru_cache(maxsize=None)
def _crd_schema(key: tuple[str, str]) -> dict:
    crd = yaml.safe_load((CRD_DIR / CRD_FILES[key]).read_text(encoding="utf-8"))
    version = key[0].split("/")[1]
    (entry,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    schema = _to_json_schema(copy.deepcopy(entry["schema"]["openAPIV3Schema"]))
    schema["properties"]["metadata"] = {
        "$ref": f"{DEFS_ID}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    return schema


@lru_cache(maxsize=None)
def _crd_validator(key: tuple[str, str], k8s_version: str) -> jsonschema.Validator:
    schema = {**_crd_schema(key), "$schema": "https://json-schema.org/draft/2020-12/schema"}
    schema["properties"] = {**schema["properties"],
                            "apiVersion": {"const": key[0]}, "kind": {"const": key[1]}}
    return jsonschema.Draft202012Validator(schema, registry=_registry(k8s_version))


def _to_json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    if "x-k8s-definition" in node:
        return {"$ref": f"{DEFS_ID}#/$defs/{node['x-k8s-definition']}"}
    node = {key: _to_json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False) and "type" in node:
        node["type"] = [node["type"], "null"]
    if ("properties" in node and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        node["additionalProperties"] = False
    return node


def _containers_without_image(node: Any, path: str = "") -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}" if path else key
            if key in ("containers", "initContainers") and isinstance(value, list):
                for index, container in enumerate(value):
                    if isinstance(container, dict) and not container.get("image"):
                        yield f"{here}.{index}"
            yield from _containers_without_image(value, here)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _containers_without_image(value, f"{path}.{index}")
