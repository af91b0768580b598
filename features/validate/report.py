"""The validation report: one run's :class:`ValidationResult` as a JSON file and an HTML page.

The HTML is our own self-contained page (inline CSS, no scripts), not GX Data Docs; why, and what
the JSON holds: docs/validation.md, "Reports".
"""

from __future__ import annotations

import html
import json
import time
from typing import Any

from pyspark.sql import SparkSession

from features.io.fs import write_text
from features.validate.gate import ValidationResult


def write_validation_report(spark: SparkSession, result: ValidationResult) -> None:
    """Write ``result.html_report``, then ``result.json_report``; adds the time taken to ``result``.

    The write is timed as ``result.timings["report"]`` and added to ``result.seconds``; the JSON
    goes last so it holds both. The HTML shows the validation time without the report.
    """
    mark = time.perf_counter()
    write_text(spark, result.html_report, render_html(result))
    spent = time.perf_counter() - mark
    result.timings["report"] = round(spent, 3)
    result.seconds = round(result.seconds + spent, 3)
    write_text(spark, result.json_report, json.dumps(result.to_dict(), indent=2, default=str))


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:8px 0 24px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f3f3} code{font-size:12px}
.ok{color:#1a7f37}.warn{color:#9a6700}.fail,.blocking{color:#cf222e;font-weight:bold}
.unknown{color:#666}
"""


def render_html(result: ValidationResult) -> str:
    """A self-contained HTML page (inline CSS, no scripts) for one validation run."""

    def esc(value: Any) -> str:
        return html.escape("" if value is None else str(value))

    def status(word: str) -> str:
        return f'<span class="{esc(word)}">{esc(word)}</span>'

    verdict = "blocking" if result.blocking else "ok" if result.success else "warn"
    outcomes = result.expectations
    failed = sum(not o["success"] for o in outcomes)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>Validation {esc(result.group)} {esc(result.as_of)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(result.group)} at {esc(result.as_of)}: {status(verdict)}</h1>",
        f"<p>Policy <b>{esc(result.policy)}</b>; {len(outcomes) - failed} of {len(outcomes)} expectations passed; "
        f"previous snapshot rows: {esc(result.previous_rows if result.previous_rows is not None else 'none')}; "
        f"validated in {result.seconds:.1f} s.</p>",
        "<h2>Expectations</h2><table><tr><th>status</th><th>expectation</th><th>columns</th><th>why</th>"
        "<th>unexpected</th><th>observed</th><th>samples</th></tr>",
    ]
    for o in sorted(outcomes, key=lambda o: bool(o["success"])):
        samples = json.dumps(o["sample_values"], default=str) if o["sample_values"] else ""
        parts.append(
            f"<tr><td>{status('ok' if o['success'] else 'fail')}</td><td><code>{esc(o['name'])}</code></td>"
            f"<td>{esc(', '.join(o['columns']))}</td><td>{esc(o['description'])}</td>"
            f"<td>{esc(o['unexpected_count'])}</td><td>{esc(o['observed_value'])}</td>"
            f"<td><code>{esc(o['error'] or samples)}</code></td></tr>"
        )
    parts.append("</table><h2>Drift against the previous snapshot</h2>")
    if result.drift:
        parts.append(
            "<table><tr><th>feature</th><th>PSI</th><th>null rate</th><th>previous null rate</th><th>status</th></tr>"
        )
        for name, d in result.drift.items():
            parts.append(
                f"<tr><td>{esc(name)}</td><td>{esc(d['psi'])}</td><td>{esc(d['null_rate'])}</td>"
                f"<td>{esc(d['previous_null_rate'])}</td><td>{status(d['status'])}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p>No previous snapshot: nothing to compare.</p>")
    f = result.freshness
    if f["newest_event"] is None:
        detail = "the newest input event time was not given"
    else:
        detail = f"newest input event {esc(f['newest_event'])}, {f['age_seconds']:.0f} s before the snapshot"
    parts.append(
        f"<h2>Freshness</h2><p>{status(f['status'])}: {detail}; allowed {f['max_age_seconds']:.0f} s.</p></body></html>"
    )
    return "\n".join(parts)
