"""Load stage: the offline store (files on S3 or local disk), read and written in one place."""
