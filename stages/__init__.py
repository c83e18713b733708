"""Built-in stages, one module per stage; each registers itself under its short name."""
