"""Edges of the pipeline that touch storage: reading sources and listing paths."""
