"""Feature group definitions: one module per group, one top-level FeatureGroup object each.

The registry discovers them by importing every module here; nothing needs registering.
"""
