"""Catalog stage: each group's offline store registered as a table SQL engines find (docs/catalog.md)."""
