"""Helpers of the `keyword_filter` stage: phrase lists and the Aho-Corasick matcher."""
