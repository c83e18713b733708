"""Helpers of `dedup_semantic` (SemDeDup): reading embedding columns (vectors.py), k-means
training and assignment (kmeans.py), duplicate groups inside one cluster (groups.py), and
the phases that need no stage config, with what they hand each other (phases.py)."""
