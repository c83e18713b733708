"""Readers (input formats), the shard writer and manifests."""
