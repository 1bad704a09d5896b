"""Build tooling (CPython only): web assets and models, assembled into a cache outside the repository."""
