"""Extract a source live from its RDS table over JDBC (PostgreSQL, MySQL / MariaDB).

The read is shaped so the database does the filtering and Spark reads in parallel:

* **Pushdown by subquery.** The table is read as ``dbtable = (SELECT <source columns> FROM <table>
  WHERE <time range>) src``: only the source's columns and only the rows the snapshot can use
  leave the database. The range is ``ts >= start AND ts < end`` (no lower bound when the group
  needs all history), OR-ed with ``ts IS NULL`` so rows without a time still arrive and are
  quarantined (orders) or kept (a customer with no ``active_since``). A source whose timestamp
  is optional and that needs no lower bound (customers) is read whole. Writing the range as SQL
  text instead of relying on Spark's filter pushdown keeps the timestamp literals under our
  control: UTC wall-clock ``TIMESTAMP '...'`` literals, which PostgreSQL and MySQL/MariaDB parse
  alike, with each connection's time zone set to UTC (``sessionInitStatement``).
* **Partitioning by predicates.** With ``partition_column`` set, one ``query`` read fetches
  ``min``/``max`` of the column within the range, and the span is cut into ``num_partitions``
  contiguous slices, each a WHERE predicate of its own JDBC partition (Spark's ``predicates``).
  Spark's own ``partitionColumn`` option is not used because it rejects ``timestamp_ntz``
  columns (Spark 4.0), and timestamps are read as ``timestamp_ntz`` (below). The first slice
  also takes NULLs and the first and last are open-ended, so every row lands in exactly one
  partition whatever the bounds.
* **Timestamps.** ``timestamp without time zone`` / ``DATETIME`` columns hold UTC wall-clock
  times (the design's contract). They are read as ``timestamp_ntz`` (``preferTimestampNTZ``) and
  cast to ``timestamp`` in the UTC session, so the JVM's default time zone cannot shift them;
  ``timestamptz`` columns keep their instant.

The rows then go through the same quarantine and de-duplication as file extracts
(:func:`features.io.extract.classify`), so ``input rows = accepted + quarantined + duplicates``.

The password is resolved at read time (:mod:`features.io.secrets`) and handed to Spark only as
a reader option: never in the URL, Spark conf, logs, ``input_paths`` or error messages, and not
in query plans (``JDBCRelation`` prints only the table expression).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Final

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import Column, DataFrame, DataFrameReader, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, IntegralType, NumericType, TimestampNTZType, TimestampType

from features.config import ConfigError, JdbcConf
from features.constants import CORRUPT_RECORD
from features.definitions import Source
from features.errors import root_cause
from features.io.extract import Extracted, InputError, Pseudonymisation, classify
from features.io.secrets import resolve_password
from features.transform.quarantine import ConflictPolicy

log = logging.getLogger(__name__)

#: Maven coordinates of the JDBC drivers for local runs and tests (``spark.jars.packages``). On
#: EMR the cluster provides the driver jar instead. MariaDB's driver also talks to MySQL.
JDBC_PACKAGES: Final = (
    "org.postgresql:postgresql:42.7.14",
    "org.mariadb.jdbc:mariadb-java-client:3.5.7",
)

#: Driver class per URL scheme. It must be named: drivers loaded through ``spark.jars`` live in
#: Spark's class loader, where ``java.sql.DriverManager`` does not look ("No suitable driver").
DRIVERS: Final = {
    "postgresql": "org.postgresql.Driver",
    "mariadb": "org.mariadb.jdbc.Driver",
    "mysql": "com.mysql.cj.jdbc.Driver",
}
#: MariaDB's driver accepts ``jdbc:mysql:`` URLs that carry this flag; Spark then applies its MySQL
#: dialect (backtick quoting, MySQL types), which it has no equivalent of for ``jdbc:mariadb:``.
MYSQL_SCHEME_FLAG: Final = "permitMysqlScheme"

#: Run on every connection so the database compares time literals and tz-aware columns in UTC.
_UTC_SESSION: Final = {
    "postgresql": "SET TIME ZONE 'UTC'",
    "mariadb": "SET time_zone = '+00:00'",
    "mysql": "SET time_zone = '+00:00'",
}

#: Spark 4.0's BasicConnectionProvider logs every connection's properties, the password included, at
#: DEBUG. Its loggers are held at INFO or quieter in the driver JVM (all of local mode; on a cluster
#: the executors' log4j configuration must not enable DEBUG for this package).
_LEAKY_JVM_LOGGERS: Final = (
    "org.apache.spark.sql.execution.datasources.jdbc.connection",
    "org.apache.spark.sql.execution.datasources.jdbc.connection.BasicConnectionProvider",
)

_IDENT = r'(?:[A-Za-z_][A-Za-z0-9_$]*|"[^"]+"|`[^`]+`)'
_COLUMN = re.compile(rf"^{_IDENT}$")
_TABLE = re.compile(rf"^{_IDENT}(?:\.{_IDENT}){{0,2}}$")
#: ``?password=``, ``;password=`` or ``//user:secret@host`` in a URL.
_URL_CREDENTIALS = re.compile(r"(?i)[?&;](password|pwd)=|//[^/@?]*:[^/@?]*@")


class JdbcReadError(InputError):
    """The table could not be read; one line naming the table, URL and user (never the password)."""


def read_jdbc_table(
    spark: SparkSession,
    conf: JdbcConf,
    source: Source,
    *,
    start: datetime | None,
    end: datetime,
    on_conflicting_duplicate: ConflictPolicy = "keep_latest",
    pseudonymise: Pseudonymisation | None = None,
) -> Extracted:
    """Read ``source`` from ``conf.table`` for a snapshot needing ``start <= time < end``, classified.

    ``start`` None means the snapshot needs all history before ``end``. Rows sharing a key are
    judged as for file sources (``on_conflicting_duplicate``, docs/inputs.md).
    """
    _check(conf)
    location = f"{conf.url} table={conf.table}"
    where = _time_range(source, start, end)
    password = resolve_password(conf)
    _quiet_leaky_jvm_loggers(spark)
    try:
        with _scrubbed_py4j_logs(password):
            predicates = _partition_predicates(spark, conf, password, where) if conf.partition_column else []
            columns = list(source.columns)
            if conf.partition_column and conf.partition_column not in columns:
                columns.append(conf.partition_column)
            subquery = f"(SELECT {', '.join(columns)} FROM {conf.table}{f' WHERE {where}' if where else ''}) src"
            raw = _reader(spark, conf, password).jdbc(conf.url, subquery, predicates=predicates or None)
            log.info(
                "%s: reading %s (%s) in %d partition(s), fetch size %d",
                source.name,
                location,
                where or "whole table",
                max(len(predicates), 1),
                conf.fetch_size,
            )
            typed = raw.select(
                *(_typed(raw, column, ctype) for column, ctype in source.columns.items()),
                F.lit(None).cast("string").alias(CORRUPT_RECORD),
            )
            return classify(
                spark,
                source,
                typed,
                [location],
                on_conflicting_duplicate=on_conflicting_duplicate,
                pseudonymise=pseudonymise,
            )
    except (Py4JJavaError, PySparkException) as exc:
        reason = root_cause(exc).replace(password, "***")
        raise JdbcReadError(f"{source.name}: cannot read {location} as user {conf.user}: {reason}") from exc


def sql_timestamp(moment: datetime) -> str:
    """A ``TIMESTAMP '...'`` literal of ``moment``'s UTC wall-clock time, to the microsecond."""
    if moment.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone; snapshot times must be timezone-aware UTC")
    return f"TIMESTAMP '{moment.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S.%f')}'"


def _check(conf: JdbcConf) -> None:
    """Reject what would put a secret somewhere visible, or SQL where an identifier belongs."""
    if not conf.url.startswith("jdbc:"):
        raise ConfigError(f"jdbc.url must start with jdbc: (e.g. jdbc:postgresql://host:5432/db); got {conf.url!r}")
    if _URL_CREDENTIALS.search(conf.url):
        raise ConfigError(
            "jdbc.url must not hold a password (it would be logged and reported); "
            "name it with jdbc.password_env or jdbc.password_secret_id"
        )
    if _scheme(conf.url) == "mariadb":
        raise ConfigError(
            "jdbc.url: Spark has no dialect for jdbc:mariadb: URLs (it would quote column names as strings); "
            f"use jdbc:mysql://host:3306/db?{MYSQL_SCHEME_FLAG} with the MariaDB driver"
        )
    if not _TABLE.match(conf.table):
        raise ConfigError(f"jdbc.table must be a table name such as orders or public.orders; got {conf.table!r}")
    if conf.partition_column is not None and not _COLUMN.match(conf.partition_column):
        raise ConfigError(f"jdbc.partition_column must be a column name; got {conf.partition_column!r}")
    if conf.num_partitions < 1:
        raise ConfigError(f"jdbc.num_partitions must be at least 1; got {conf.num_partitions}")
    if conf.fetch_size < 0:
        raise ConfigError(f"jdbc.fetch_size must not be negative; got {conf.fetch_size}")


class _Redact(logging.Filter):
    def __init__(self, secret: str) -> None:
        super().__init__()
        self._secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self._secret in message:
            record.msg, record.args = message.replace(self._secret, "***"), ()
        return True


@contextlib.contextmanager
def _scrubbed_py4j_logs(secret: str) -> Iterator[None]:
    """py4j logs every command it sends to the JVM at DEBUG, reader options included: mask the password."""
    loggers = [logging.getLogger(name) for name in ("py4j.clientserver", "py4j.java_gateway")]
    redact = _Redact(secret)
    for logger in loggers:
        logger.addFilter(redact)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(redact)


def _quiet_leaky_jvm_loggers(spark: SparkSession) -> None:
    log4j = spark.sparkContext._jvm.org.apache.logging.log4j
    info = log4j.Level.INFO
    for name in _LEAKY_JVM_LOGGERS:
        if log4j.LogManager.getLogger(name).getLevel().intLevel() > info.intLevel():
            log4j.core.config.Configurator.setLevel(name, info)


def _scheme(url: str) -> str:
    return url.split(":", 2)[1].lower()


def _reader(spark: SparkSession, conf: JdbcConf, password: str) -> DataFrameReader:
    """A fresh reader (``option`` mutates a reader, and a bounds ``query`` must not leak into the table read)."""
    scheme = _scheme(conf.url)
    options = {
        "url": conf.url,
        "user": conf.user,
        "password": password,
        "fetchsize": str(conf.fetch_size),
        "preferTimestampNTZ": "true",
    }
    if scheme == "mysql" and MYSQL_SCHEME_FLAG in conf.url:
        scheme = "mariadb"
    driver = conf.driver or DRIVERS.get(scheme)
    if driver is not None:
        options["driver"] = driver
    if scheme in _UTC_SESSION:
        options["sessionInitStatement"] = _UTC_SESSION[scheme]
    return spark.read.format("jdbc").options(**options)


def _time_range(source: Source, start: datetime | None, end: datetime) -> str | None:
    """The WHERE clause of the rows a snapshot needs; None to read the whole table."""
    ts = source.timestamp
    if ts is None or (start is None and ts not in source.required):
        return None
    bounds = [f"{ts} < {sql_timestamp(end)}"]
    if start is not None:
        bounds.insert(0, f"{ts} >= {sql_timestamp(start)}")
    return f"({' AND '.join(bounds)}) OR {ts} IS NULL"


def _partition_predicates(spark: SparkSession, conf: JdbcConf, password: str, where: str | None) -> list[str]:
    """One WHERE predicate per partition: ``num_partitions`` equal slices of the column's range."""
    column = conf.partition_column
    assert column is not None
    query = f"SELECT min({column}) AS lo, max({column}) AS hi FROM {conf.table}{f' WHERE {where}' if where else ''}"
    bounds = _reader(spark, conf, password).option("query", query).load()
    dtype = bounds.schema["lo"].dataType
    # Bounds travel as whole numbers (microseconds, days, or the floor/ceiling of a number) so no
    # Python-side time zone conversion can touch them.
    if isinstance(dtype, (TimestampType, TimestampNTZType)):
        lo, hi = F.unix_micros(F.col("lo").cast("timestamp")), F.unix_micros(F.col("hi").cast("timestamp"))
        unit = "timestamp"
    elif isinstance(dtype, DateType):
        lo, hi = F.unix_date(F.col("lo")), F.unix_date(F.col("hi"))
        unit = "date"
    elif isinstance(dtype, NumericType):
        exact = isinstance(dtype, IntegralType)
        lo = (F.col("lo") if exact else F.floor("lo")).cast("long")
        hi = (F.col("hi") if exact else F.ceil("hi")).cast("long")
        unit = "number"
    else:
        raise ConfigError(
            f"jdbc.partition_column {column} of {conf.table} is {dtype.simpleString()}; "
            "use a numeric, date or timestamp column"
        )
    row = bounds.select(lo.alias("lo"), hi.alias("hi")).first()
    if row is None or row["lo"] is None or row["hi"] is None or row["hi"] <= row["lo"]:
        return []  # empty range or a single value: one partition
    low, high = int(row["lo"]), int(row["hi"])
    parts = min(conf.num_partitions, high - low)
    if parts <= 1:
        return []
    cuts = [_literal(low + (high - low) * i // parts, unit) for i in range(1, parts)]
    predicates = [f"{column} < {cuts[0]} OR {column} IS NULL"]
    predicates += [f"{column} >= {a} AND {column} < {b}" for a, b in itertools.pairwise(cuts)]
    predicates.append(f"{column} >= {cuts[-1]}")
    return predicates


def _literal(value: int, unit: str) -> str:
    if unit == "timestamp":
        return sql_timestamp(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=value))
    if unit == "date":
        return f"DATE '{(date(1970, 1, 1) + timedelta(days=value)).isoformat()}'"
    return str(value)


def _typed(raw: DataFrame, column: str, ctype: str) -> Column:
    """The column as ``classify`` expects it: strings as strings, UTC wall-clock times as timestamps.

    Other types stay as the database returned them: ``classify`` casts them with ``try_cast``, so
    a value that does not fit the declared type is quarantined instead of failing the run.
    """
    if ctype == "string":
        return F.col(column).cast("string").alias(column)
    if isinstance(raw.schema[column].dataType, TimestampNTZType):
        # The session time zone is UTC (features.session), so this keeps the wall-clock time.
        return F.col(column).cast("timestamp").alias(column)
    return F.col(column)
