"""Deploying the jobs: what an artifacts prefix holds and the AWS requests that run from it.

The modules build plain request dictionaries (an EMR step, an EMR Serverless StartJobRun, an
EventBridge Scheduler schedule, IAM policy documents) and hold no AWS client, so they are tested
by value; ``features.deploy.aws`` and ``feature-pipeline deploy ...`` (``features/cli/deploy.py``)
send them. Nothing here imports pyspark: deploying needs no Spark. Details: docs/deploy.md.
"""
