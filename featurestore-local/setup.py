"""The local SageMaker Feature Store runtime: a developer tool, packaged apart from the pipeline.

Like DynamoDB Local, it is installed where people develop and test (``make setup`` installs it
editable), never into the job artifact shipped to EMR. It depends on the standard library only.
"""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="featurestore-local",
    version="0.1.0",
    description="A local SageMaker Feature Store runtime (wire-compatible, SQLite-backed) for development and tests.",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["featurestore_local", "featurestore_local.*"]),
    package_data={"featurestore_local": ["py.typed"]},
    entry_points={"console_scripts": ["featurestore-local=featurestore_local.cli:main"]},
)
