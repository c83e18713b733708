"""Spherical k-means: trained once on a sample (faiss), then every vector is assigned to
its nearest centroid (numpy), shard by shard.

Deterministic for a seed: the sample arrives in a fixed order (see phases.py) and faiss
draws its first centroids with the seed. Its threads split the centroid sums by centroid,
never one sum between threads, so the centroids do not depend on the number of threads
(tested: `cpus: 2` gives the result of one thread). Spherical: centroids are kept at unit length, and the
nearest centroid of a unit vector is the one with the largest dot product.
"""

from __future__ import annotations

import io
import math
import posixpath

import fsspec
import numpy as np

ITERATIONS = 20
ASSIGN_BATCH = 8192  # vectors scored against the centroids at a time
DEFAULT_SAMPLE_PER_CLUSTER = 100
MAX_DEFAULT_SAMPLE = 1_000_000


def default_clusters(documents: int) -> int:
    """sqrt(n) clusters of ~sqrt(n) documents: the cost of assigning (n x clusters) and of
    comparing within clusters (n x cluster size) are then equal, and their sum is least."""
    return max(1, round(math.sqrt(documents)))


def default_sample(clusters: int) -> int:
    return min(MAX_DEFAULT_SAMPLE, DEFAULT_SAMPLE_PER_CLUSTER * clusters)


def train(sample: np.ndarray, clusters: int, seed: int, gpu: bool = False,
          threads: int = 1) -> np.ndarray:
    """[min(clusters, len(sample)), dim] unit centroids of `sample` (unit float32 rows), on
    a GPU when `gpu` and this faiss build has one (faiss-gpu), else on the CPU."""
    import faiss

    gpu = gpu and faiss.get_num_gpus() > 0
    clusters = min(clusters, len(sample))
    if clusters == 0:
        return np.zeros((0, sample.shape[1] if sample.ndim == 2 else 0), np.float32)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        kmeans = faiss.Kmeans(sample.shape[1], clusters, niter=ITERATIONS, seed=seed,
                              spherical=True, gpu=gpu, verbose=False,
                              min_points_per_centroid=1,
                              max_points_per_centroid=max(1, len(sample)))
        kmeans.train(np.ascontiguousarray(sample, np.float32))
    finally:
        faiss.omp_set_num_threads(before)
    centroids = kmeans.centroids.astype(np.float32)
    return centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)


def nearest(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Each vector's centroid (int32), by largest dot product; ties go to the lower number."""
    out = np.zeros(len(vectors), np.int32)
    for start in range(0, len(vectors), ASSIGN_BATCH):
        scores = vectors[start:start + ASSIGN_BATCH] @ centroids.T
        out[start:start + ASSIGN_BATCH] = np.argmax(scores, axis=1)
    return out


def write_centroids(path: str, centroids: np.ndarray) -> None:
    fs, local = fsspec.core.url_to_fs(path)
    fs.makedirs(posixpath.dirname(local), exist_ok=True)
    buffer = io.BytesIO()
    np.save(buffer, centroids, allow_pickle=False)
    with fs.open(local, "wb") as f:
        f.write(buffer.getvalue())


def read_centroids(path: str) -> np.ndarray:
    with fsspec.open(path, "rb") as f:
        return np.load(io.BytesIO(f.read()), allow_pickle=False)
