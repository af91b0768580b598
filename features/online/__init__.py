"""Online stage: push snapshots to the SageMaker Feature Store online store, replay, register,
read back (docs/online-store.md)."""
