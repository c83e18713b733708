"""Helpers of the `classify` stage (training a fastText classifier)."""
