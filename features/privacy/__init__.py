"""Privacy by design: keyed pseudonyms of the declared personal identifiers (docs/privacy.md)."""
