"""Packaging for the feature pipeline: the ``features`` library, its jobs and console commands.

Runtime versions are pinned to the EMR 8 / EMR Serverless 8 platform (Spark 4.0, Delta 4.0,
Python 3.11); ``constraints.txt`` pins the whole tree for reproducible installs (``make setup``).
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
        "pyspark==4.0.2",
        "delta-spark==4.0.0",
        "great-expectations==1.24.1",
        "boto3>=1.40,<2",
        "pyyaml>=6,<7",
        "pydantic>=2.6,<3",
    ],
    extras_require={
        "test": ["pytest>=8", "chispa==0.12.0", "duckdb>=1.1", "moto[server]>=5.2"],
        "dev": ["ruff", "mypy", "types-PyYAML"],
    },
    entry_points={
        "console_scripts": [
            "feature-pipeline=features.cli:main",
            "build-features=features.cli:build_main",
        ]
    },
)
