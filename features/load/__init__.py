"""Load stages: the offline store (files on S3 or local disk) and, later, the online store."""
