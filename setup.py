"""Packaging for the feature pipeline: the ``features`` library, its jobs and console commands.

The ranges below admit both supported platforms (docs/platforms.md): the primary EMR 8 / EMR
Serverless 8 line (Spark 4.0.2, Delta 4.0.0) and the EMR 7.x line (Spark 3.5.6, Delta 3.3.2). The
exact versions per platform live in the constraints files, not here, so one wheel installs on
both: ``constraints.txt`` (``make setup``) and ``constraints-spark35.txt`` (``make setup-spark35``).
"""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="emr-feature-pipeline",
    version="0.1.0",
    description="Windowed per-entity features in PySpark on EMR, published offline and to SageMaker Feature Store.",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["features", "features.*"]),
    install_requires=[
        "pyspark>=3.5.6,<4.1",
        "delta-spark>=3.3.2,<4.1",
        "great-expectations==1.24.1",
        "boto3>=1.40,<2",
        "pyyaml>=6,<7",
        "pydantic>=2.6,<3",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "chispa==0.12.0",
            "duckdb>=1.1",
            "moto[server]>=5.2",
            "cfn-lint>=1.58",
            # Drives Debian's Chromium (`make services`) in the HTML catalog's browser test; no browser download.
            "playwright>=1.50",
        ],
        "dev": ["ruff", "mypy", "types-PyYAML", "venv-pack==0.2.0"],
    },
    entry_points={
        "console_scripts": [
            "feature-pipeline=features.cli:main",
            "build-features=features.cli:build_main",
        ]
    },
)
