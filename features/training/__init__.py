"""Point-in-time training sets: labels as-of joined to offline snapshots (docs/training.md).

``labels`` reads and checks the labels table, ``snapshots`` reads a group's snapshots from the
offline store, ``join`` is the pure as-of join and the leakage check, ``build`` runs them for every
group and returns what the manifest records.
"""
