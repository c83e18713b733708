"""Helpers of the `license` stage (SPDX normalisation, page signals, domain rules)."""
