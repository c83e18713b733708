"""Helpers of the `mix` stage: group values, id hashes, how much of each group to take, and
the hash threshold that takes it."""
