"""Helpers of the `langid` stage."""
