"""Reserved column names and formats, defined once.

SageMaker's offline store adds ``write_time``, ``api_invocation_time`` and ``is_deleted`` to every
record and partitions by ``year/month/day/hour``; a feature may not take any of these names.
"""

from typing import Final

WRITE_TIME: Final = "write_time"
API_INVOCATION_TIME: Final = "api_invocation_time"
IS_DELETED: Final = "is_deleted"
YEAR: Final = "year"
MONTH: Final = "month"
DAY: Final = "day"
HOUR: Final = "hour"

#: The event time feature of every group: the snapshot time T as an ISO-8601 UTC string.
EVENT_TIME: Final = "event_time"

PARTITION_COLUMNS: Final = (YEAR, MONTH, DAY, HOUR)
OFFLINE_METADATA_COLUMNS: Final = (WRITE_TIME, API_INVOCATION_TIME, IS_DELETED)
RESERVED_NAMES: Final = frozenset((*OFFLINE_METADATA_COLUMNS, *PARTITION_COLUMNS, EVENT_TIME))

#: Column added to quarantined rows, saying why the row could not be used.
QUARANTINE_REASON: Final = "_quarantine_reason"
#: Column holding the raw text of a JSON line that could not be parsed.
CORRUPT_RECORD: Final = "_corrupt_record"
#: Column naming the file an event-log row was read from; kept on quarantined rows.
INPUT_FILE: Final = "_input_file"
#: Set only on the single row standing for a whole unreadable file: why it could not be read.
FILE_ERROR: Final = "_file_error"

#: How SageMaker wants event times written (second precision, UTC, literal Z).
EVENT_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"
