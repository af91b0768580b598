"""The pseudonym function, its key, its declarations and its Spark form (docs/privacy.md).

Expected pseudonyms come from RFC 4231's published HMAC-SHA256 vector and from Python's own
``hmac`` module over hand-typed ids, never from the code under test.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterator
from dataclasses import replace

import boto3
import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession

from features.config import ConfigError, PseudonymisationConf, load_conf
from features.definitions import ColumnType, DefinitionError, Entity, Source
from features.groups.customer_activity import customer_activity as ACTIVITY
from features.io.extract import classify
from features.io.secrets import SecretError
from features.privacy.columns import pseudonym_column, pseudonymisation
from features.privacy.keys import load_pseudonymiser
from features.privacy.pseudonym import Pseudonymiser, check_declarations, pseudonymised_columns
from features.sources import CLICKSTREAM, CUSTOMERS
from tests.services.moto import moto_server

KEY = b"k" * 16 + b"0123456789abcdef-for-tests-only"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def oracle(raw: str, key: bytes = KEY) -> str:
    return hmac.new(key, raw.encode("utf-8"), hashlib.sha256).hexdigest()


def test_rfc_4231_test_case_6() -> None:
    """A key longer than the block size (131 bytes of 0xaa), the published digest."""
    pseudonymiser = Pseudonymiser(b"\xaa" * 131)
    assert pseudonymiser.pseudonym("Test Using Larger Than Block-Size Key - Hash Key First") == (
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
    )


@pytest.mark.parametrize("raw", ["C000042", "C000001", "c000042", "", "Ünïcødé-42"])
def test_pseudonyms_are_hmac_sha256_hex(raw: str) -> None:
    assert Pseudonymiser(KEY).pseudonym(raw) == oracle(raw)


def test_another_key_gives_other_pseudonyms_and_a_new_fingerprint() -> None:
    one, two = Pseudonymiser(KEY), Pseudonymiser(KEY[::-1])
    assert one.pseudonym("C000042") != two.pseudonym("C000042")
    assert one.fingerprint != two.fingerprint and len(one.fingerprint) == 12


def test_a_short_key_is_refused_and_no_message_or_repr_shows_a_key() -> None:
    with pytest.raises(ValueError, match="shorter than 32 bytes") as caught:
        Pseudonymiser(b"short-secret-value")
    assert "short-secret-value" not in str(caught.value)
    assert KEY.decode() not in repr(Pseudonymiser(KEY))


def test_pii_declarations_are_checked_at_load() -> None:
    columns: dict[str, ColumnType] = {"id": "string", "born": "date"}
    with pytest.raises(DefinitionError, match=re.escape("unknown column 'nope' in pii of source s")):
        Source(name="s", description="d", columns=columns, key="id", pii=("nope",))
    with pytest.raises(DefinitionError, match="pii column 'born' of source s is date: only string identifiers"):
        Source(name="s", description="d", columns=columns, key="id", pii=("born",))
    with pytest.raises(DefinitionError, match=r"use a tuple of column names, e.g. pii=\('id',\)"):
        Source(name="s", description="d", columns=columns, key="id", pii="id")


def test_the_reference_domain_pseudonymises_customer_id_everywhere() -> None:
    assert pseudonymised_columns(CLICKSTREAM, [ACTIVITY]) == ("customer_id",)
    assert pseudonymised_columns(CUSTOMERS, []) == ("customer_id",)  # declared pii in the source itself
    plain = replace(CLICKSTREAM, pii=())
    group = replace(ACTIVITY, source=plain)
    assert pseudonymised_columns(plain, [group]) == ("customer_id",)  # the entity's key
    assert pseudonymised_columns(plain, [replace(group, entity=replace(ACTIVITY.entity, pseudonymise=False))]) == ()


def test_a_pii_key_of_an_entity_not_pseudonymised_is_refused() -> None:
    entity = Entity(name="customer", join_key="customer_id", description="d")
    group = replace(ACTIVITY, entity=entity)
    with pytest.raises(DefinitionError, match=re.escape("declare Entity(..., pseudonymise=True)")):
        check_declarations([group])
    check_declarations([ACTIVITY])


def test_conf_names_exactly_one_key_source_and_never_holds_a_key() -> None:
    conf = f"{ROOT}/conf/local.yaml"
    assert load_conf(conf).privacy.pseudonymisation.enabled is False  # off by default: make run needs no key
    with pytest.raises(ConfigError, match=re.escape("privacy.pseudonymisation.enabled: is true but no key is named")):
        load_conf(conf, ["privacy.pseudonymisation.enabled=true"])
    with pytest.raises(
        ConfigError, match=re.escape("privacy.pseudonymisation.secret_id: is set together with key_env")
    ):
        load_conf(conf, ["privacy.pseudonymisation.secret_id=a", "privacy.pseudonymisation.key_env=B"])
    with pytest.raises(ConfigError, match=re.escape("unknown configuration key 'privacy.pseudonymisation.key'")):
        load_conf(conf, ["privacy.pseudonymisation.key=" + KEY.decode()])
    with pytest.raises(ConfigError) as caught:
        load_conf(conf, ["privacy.pseudonymisation.key_env=" + KEY.decode()])
    assert KEY.decode() not in str(caught.value)


def test_the_key_from_an_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    conf = PseudonymisationConf(enabled=True, key_env="TEST_PSEUDONYM_KEY")
    monkeypatch.delenv("TEST_PSEUDONYM_KEY", raising=False)
    with pytest.raises(SecretError) as caught:
        load_pseudonymiser(conf)
    assert str(caught.value) == (
        "environment variable TEST_PSEUDONYM_KEY (the pseudonymisation key, privacy.pseudonymisation.key_env) "
        "is not set or is empty"
    )
    monkeypatch.setenv("TEST_PSEUDONYM_KEY", "too-short")
    with pytest.raises(SecretError, match=r"^environment variable TEST_PSEUDONYM_KEY: the pseudonymisation key is"):
        load_pseudonymiser(conf)
    monkeypatch.setenv("TEST_PSEUDONYM_KEY", KEY.decode())
    pseudonymiser = load_pseudonymiser(conf)
    assert pseudonymiser is not None and pseudonymiser.pseudonym("C000042") == oracle("C000042")
    assert load_pseudonymiser(PseudonymisationConf()) is None


@pytest.fixture(scope="module")
def secrets_manager() -> Iterator[str]:
    with moto_server() as url, pytest.MonkeyPatch.context() as env:
        for name in [n for n in os.environ if n.startswith(("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION"))]:
            env.delenv(name)
        env.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", url)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        yield url


def test_the_key_from_secrets_manager(secrets_manager: str) -> None:
    boto3.client("secretsmanager").create_secret(Name="features/pseudonym-key", SecretString=KEY.decode())
    pseudonymiser = load_pseudonymiser(PseudonymisationConf(enabled=True, secret_id="features/pseudonym-key"))
    assert pseudonymiser is not None and pseudonymiser.pseudonym("C000001") == oracle("C000001")
    with pytest.raises(SecretError) as caught:
        load_pseudonymiser(PseudonymisationConf(enabled=True, secret_id="features/missing"))
    message = str(caught.value)
    assert message.startswith("cannot read secret features/missing: ResourceNotFoundException") and "\n" not in message


def test_the_spark_form_is_the_same_function_and_keeps_the_key_out_of_the_plan(spark: SparkSession) -> None:
    rows = [("C000042",), ("C000001",), (None,)]
    frame = spark.createDataFrame(rows, "customer_id string")
    hashed = frame.select(pseudonym_column(Pseudonymiser(KEY))(frame["customer_id"]).alias("customer_id"))
    expected = spark.createDataFrame([(oracle("C000042"),), (oracle("C000001"),), (None,)], "customer_id string")
    assert_df_equality(hashed, expected, ignore_nullable=True)
    plan = hashed._jdf.queryExecution().toString()
    assert "pseudonym(" in plan and KEY.decode() not in plan and KEY.hex() not in plan


def test_classify_pseudonymises_usable_rows_and_quarantines_raw_ones(spark: SparkSession) -> None:
    columns = [*CUSTOMERS.columns, "_corrupt_record"]
    raw = spark.createDataFrame(
        [
            ("C000001", "1990-01-02", "2020-01-01T00:00:00Z", "single", "true", "DE", None),
            ("C0'; DROP", "1990-01-02", "2020-01-01T00:00:00Z", "single", "true", "DE", None),
        ],
        ", ".join(f"{c} string" for c in columns),
    )
    out = classify(spark, CUSTOMERS, raw, ["test"], pseudonymise=pseudonymisation(Pseudonymiser(KEY), ["customer_id"]))
    try:
        assert [r["customer_id"] for r in out.accepted.collect()] == [oracle("C000001")]
        assert [r["customer_id"] for r in out.quarantined.collect()] == ["C0'; DROP"]  # raw, for replay
        assert out.input_rows == 2 and out.accepted_rows == 1 and out.quarantined_rows == 1
    finally:
        out.release()
