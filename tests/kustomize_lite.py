"""Just enough kustomize to render deploy/ offline, where no `kubectl` may exist.

It supports exactly the kustomization fields deploy/ uses and refuses any other, so a new
feature in a manifest fails here instead of being silently mis-rendered:

- `resources`: files (multi-document YAML) and directories (rendered recursively)
- `namespace`: set on every namespaced object
- `labels` with `includeSelectors: false`: added to every object's metadata.labels
- `images`: `newName`/`newTag` for matching images in any `containers` / `initContainers`
  list, at any depth (kustomize does the same, which is how it reaches RayCluster pods)
- `patches` from `path` or inline `patch`, with a `target` (group/version/kind/name):
  RFC 6902 JSON patches (add, remove, replace, test) for any kind, and strategic-merge
  patches for built-in kinds only, merging `containers`, `initContainers`, `volumes` and
  `env` by name and `volumeMounts` by mountPath. (Kustomize has no merge keys for custom
  resources such as RayCluster, so deploy/ patches those with JSON patches.)

Transformers run in kustomize's order after the resources are gathered: patches,
namespace, labels, images. tests/test_deploy.py compares the output with `kubectl kustomize`
wherever kubectl exists.

Usage: python -m tests.kustomize_lite deploy/overlays/kind
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

SUPPORTED_FIELDS = {"apiVersion", "kind", "namespace", "resources", "labels", "images", "patches"}
CLUSTER_SCOPED_KINDS = {"Namespace", "CustomResourceDefinition", "PersistentVolume",
                        "StorageClass", "ClusterRole", "ClusterRoleBinding", "PriorityClass"}
BUILTIN_GROUPS = {"", "apps", "batch", "policy", "autoscaling", "networking.k8s.io",
                  "rbac.authorization.k8s.io"}
# Strategic-merge keys for the lists deploy/ patches; every other list is replaced whole.
MERGE_KEYS = {"containers": "name", "initContainers": "name", "volumes": "name",
              "env": "name", "volumeMounts": "mountPath"}


class KustomizeError(ValueError):
    """A kustomization this renderer cannot or will not render, or a patch that fails."""


def render(directory: str | Path) -> list[dict]:
    """Render the kustomization in `directory` into a list of Kubernetes objects."""
    directory = Path(directory)
    kustomization = _load_kustomization(directory)
    objects: list[dict] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            objects.extend(render(path))
        elif path.is_file():
            objects.extend(load_objects(path))
        else:
            raise KustomizeError(f"{directory}: resource {entry!r} does not exist")
    for number, patch in enumerate(kustomization.get("patches", [])):
        _apply_patch(objects, patch, directory, number)
    if "namespace" in kustomization:
        for obj in objects:
            if obj.get("kind") not in CLUSTER_SCOPED_KINDS:
                obj.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
    for entry in kustomization.get("labels", []):
        if entry.get("includeSelectors", False) or entry.get("includeTemplates", False):
            raise KustomizeError(f"{directory}: labels with includeSelectors/includeTemplates "
                                 "are not supported")
        for obj in objects:
            obj.setdefault("metadata", {}).setdefault("labels", {}).update(entry["pairs"])
    for image in kustomization.get("images", []):
        for obj in objects:
            _set_image(obj, image)
    return objects


def load_objects(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc is not None]


def _load_kustomization(directory: Path) -> dict:
    path = directory / "kustomization.yaml"
    if not path.is_file():
        raise KustomizeError(f"{directory}: no kustomization.yaml")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    unknown = set(data) - SUPPORTED_FIELDS
    if unknown:
        raise KustomizeError(f"{path}: unsupported kustomization fields {sorted(unknown)}; "
                             "extend tests/kustomize_lite.py (and compare with kubectl kustomize)")
    return data


# -- patches ------------------------------------------------------------------------------

def _apply_patch(objects: list[dict], entry: dict, directory: Path, number: int) -> None:
    where = f"{directory}: patches[{number}]"
    if "path" in entry:
        body = yaml.safe_load((directory / entry["path"]).read_text(encoding="utf-8"))
        where += f" ({entry['path']})"
    elif "patch" in entry:
        body = yaml.safe_load(entry["patch"])
    else:
        raise KustomizeError(f"{where}: needs `path` or `patch`")
    target = entry.get("target")
    if isinstance(body, list):
        if not target:
            raise KustomizeError(f"{where}: a JSON patch needs a target")
        matched = _select(objects, target)
        for obj in matched:
            _json_patch(obj, body, where)
    elif isinstance(body, dict):
        target = target or {"kind": body.get("kind"),
                            "name": body.get("metadata", {}).get("name")}
        matched = _select(objects, target)
        for obj in matched:
            if _group(obj) not in BUILTIN_GROUPS:
                raise KustomizeError(f"{where}: strategic merge on {obj['kind']} is not "
                                     "supported (kustomize has no merge keys for it); use a "
                                     "JSON patch")
            merged = _strategic_merge(obj, body, where)
            obj.clear()
            obj.update(merged)
    else:
        raise KustomizeError(f"{where}: a patch must be a mapping or a list of operations")
    if not matched:
        raise KustomizeError(f"{where}: target {target} matches no resource")


def _group(obj: dict) -> str:
    api_version = obj.get("apiVersion", "")
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def _select(objects: list[dict], target: dict) -> list[dict]:
    unsupported = set(target) - {"group", "version", "kind", "name", "namespace"}
    if unsupported:
        raise KustomizeError(f"target selectors {sorted(unsupported)} are not supported")
    found = []
    for obj in objects:
        meta = obj.get("metadata", {})
        actual = {"group": _group(obj), "version": obj.get("apiVersion", "").rsplit("/", 1)[-1],
                  "kind": obj.get("kind"), "name": meta.get("name"),
                  "namespace": meta.get("namespace")}
        if all(actual[key] == value for key, value in target.items()):
            found.append(obj)
    return found


def _json_patch(obj: dict, operations: list[dict], where: str) -> None:
    for number, operation in enumerate(operations):
        op, path = operation.get("op"), operation.get("path", "")
        label = f"{where}: operation {number} ({op} {path})"
        parent, key = _resolve_parent(obj, path, label)
        if op == "test":
            if _get(parent, key, label) != operation.get("value"):
                raise KustomizeError(f"{label}: found {_get(parent, key, label)!r}, "
                                     f"expected {operation.get('value')!r}")
        elif op == "remove":
            _get(parent, key, label)
            del parent[key]
        elif op == "replace":
            _get(parent, key, label)
            parent[key] = copy.deepcopy(operation["value"])
        elif op == "add":
            value = copy.deepcopy(operation["value"])
            if isinstance(parent, list):
                if key != "-" and key > len(parent):
                    raise KustomizeError(f"{label}: index past the end of the list")
                parent.insert(len(parent) if key == "-" else key, value)
            else:
                parent[key] = value
        else:
            raise KustomizeError(f"{label}: operation {op!r} is not supported")


def _resolve_parent(obj: Any, pointer: str, label: str) -> tuple[Any, Any]:
    if not pointer.startswith("/"):
        raise KustomizeError(f"{label}: path must start with /")
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]
    node = obj
    for part in parts[:-1]:
        node = _get(node, _key(node, part, label), label)
    return node, _key(node, parts[-1], label)


def _key(node: Any, part: str, label: str) -> Any:
    if isinstance(node, list):
        if part == "-":
            return part
        if not part.isdigit():
            raise KustomizeError(f"{label}: {part!r} is not a list index")
        return int(part)
    return part


def _get(node: Any, key: Any, label: str) -> Any:
    try:
        return node[key]
    except (KeyError, IndexError, TypeError):
        raise KustomizeError(f"{label}: path does not exist") from None


def _strategic_merge(base: Any, patch: Any, where: str) -> Any:
    if not isinstance(base, dict) or not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        if str(key).startswith("$"):
            raise KustomizeError(f"{where}: directive {key!r} is not supported")
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, list) and key in MERGE_KEYS and isinstance(merged.get(key), list):
            merged[key] = _merge_list(merged[key], value, MERGE_KEYS[key], where)
        else:
            merged[key] = _strategic_merge(merged.get(key), value, where)
    return merged


def _merge_list(base: list, patch: list, merge_key: str, where: str) -> list:
    merged = copy.deepcopy(base)
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            raise KustomizeError(f"{where}: list items must carry {merge_key!r}")
        for index, existing in enumerate(merged):
            if existing.get(merge_key) == item[merge_key]:
                merged[index] = _strategic_merge(existing, item, where)
                break
        else:
            merged.append(copy.deepcopy(item))
    return merged


# -- images -------------------------------------------------------------------------------

def split_image(image: str) -> tuple[str, str | None, str | None]:
    """`registry:5000/repo/name:tag@sha256:...` -> (name, tag, digest)."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = None
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    return name, tag, digest or None


def _set_image(node: Any, entry: dict) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                for container in value:
                    if isinstance(container, dict) and "image" in container:
                        container["image"] = _new_image(container["image"], entry)
            _set_image(value, entry)
    elif isinstance(node, list):
        for item in node:
            _set_image(item, entry)


def _new_image(image: str, entry: dict) -> str:
    name, tag, digest = split_image(image)
    if name != entry["name"]:
        return image
    unsupported = set(entry) - {"name", "newName", "newTag"}
    if unsupported:
        raise KustomizeError(f"images: fields {sorted(unsupported)} are not supported")
    name = entry.get("newName", name)
    tag = str(entry["newTag"]) if "newTag" in entry else tag
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


if __name__ == "__main__":
    yaml.safe_dump_all(render(sys.argv[1]), sys.stdout, sort_keys=False)
