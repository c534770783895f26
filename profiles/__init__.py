"""Bundled deployment recipes (YAML), loadable by name with `--profile NAME`."""
