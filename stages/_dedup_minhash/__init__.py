"""Helpers of the `dedup_minhash` stage."""
