"""Feature pipeline: windowed per-entity features computed once in Spark, published offline and online.

The package is organised by stage (see docs/architecture.md): ``definitions`` and ``groups``
declare what to compute, ``io`` reads sources, ``transform`` computes, ``load`` writes, and
``pipeline`` is the only place that joins the stages together.
"""

__version__ = "0.1.0"
