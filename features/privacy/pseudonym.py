"""The pseudonym of an identifier: HMAC-SHA256 under a secret key, as 64 lower-case hex digits.

One function, :meth:`Pseudonymiser.pseudonym`, is used everywhere: by the extract stage (inside a
Spark UDF, :mod:`features.privacy.columns`) and by ``get-record`` / ``get-features`` for ``--id``,
so an online lookup by a raw id finds the record pushed under its pseudonym. The key never
appears in a repr, a message or a Spark plan (the UDF carries it in its pickled closure, and a
plan prints only the UDF's name).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field

from features.definitions import DefinitionError, FeatureGroup, Source

#: HMAC-SHA256 keys shorter than the hash's 32 bytes weaken it (RFC 2104, section 3).
MIN_KEY_BYTES = 32
_FINGERPRINT_MESSAGE = b"emr-feature-pipeline pseudonymisation key fingerprint"


class PseudonymKeyError(ValueError):
    """The key is unusable (too short); the message never repeats it."""


@dataclass(frozen=True)
class Pseudonymiser:
    """Maps an identifier to its pseudonym; the same key gives the same pseudonym in every run and source."""

    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.key) < MIN_KEY_BYTES:
            raise PseudonymKeyError(
                f"the pseudonymisation key is shorter than {MIN_KEY_BYTES} bytes; store at least {MIN_KEY_BYTES} "
                "random bytes as text, e.g. the output of `openssl rand -base64 48`"
            )

    def pseudonym(self, identifier: str) -> str:
        """HMAC-SHA256 of the identifier's UTF-8 bytes, hex: a valid record identifier of any store."""
        return hmac.new(self.key, identifier.encode("utf-8"), hashlib.sha256).hexdigest()

    @property
    def fingerprint(self) -> str:
        """A short, non-reversible name of the key, for logs: a changed fingerprint means a rotated key."""
        return hmac.new(self.key, _FINGERPRINT_MESSAGE, hashlib.sha256).hexdigest()[:12]


def pseudonymised_columns(source: Source, groups: Iterable[FeatureGroup]) -> tuple[str, ...]:
    """The columns of ``source`` replaced by pseudonyms at extract, in declared order: its ``pii``
    columns and the join key of every pseudonymised entity a group reading it is about."""
    keys = {g.entity.join_key for g in groups if g.source.name == source.name and g.entity.pseudonymise}
    return tuple(c for c in source.columns if c in source.pii or c in keys)


def check_declarations(groups: Iterable[FeatureGroup]) -> None:
    """Refuse a join key that is pii in one source while its entity is not pseudonymised.

    Such a key would be a pseudonym in that group's records and a raw id in the others', so the
    groups would no longer join, and ``--id`` lookups would hash for some groups only.
    """
    for group in groups:
        key = group.entity.join_key
        if key in group.source.pii and not group.entity.pseudonymise:
            raise DefinitionError(
                f"{key!r} is declared pii in source {group.source.name} but entity {group.entity.name} (the key of "
                f"{group.name}) is not pseudonymised; declare Entity(..., pseudonymise=True) so every group keys "
                "its records by the same pseudonym"
            )
