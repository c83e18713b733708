"""Helpers of the `bucket` stage: exact job-wide quantiles (a distributed sample sort) and
how several score columns combine into one bucket."""
