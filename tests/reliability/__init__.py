"""The reliability suite: each test reproduces a fault from issue 10 and pins the guarantee that
holds under it (docs/reliability.md maps each guarantee to its test)."""
