"""The static HTML catalog: ``index.html`` and one page per group beside it.

Self-contained by design: CSS and the search script are inline, nothing is fetched (no CDN, no
font, no image), links are relative, so the folder can be opened from disk, attached to a ticket
or served from any bucket. Every value from a definition or a report is HTML-escaped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from html import escape
from pathlib import Path

from features.discovery.entries import GroupEntry
from features.discovery.state import GroupState

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:14px 24px}header a{color:#9cc3ff}
header h1{font-size:20px;margin:0 0 2px}header p{margin:0;color:#c5cbd6;font-size:12px}
main{padding:16px 24px;max-width:1280px}h2{font-size:16px;margin:22px 0 8px}
input#search{width:100%;max-width:560px;padding:8px 10px;font-size:15px;border:1px solid #b9c0cc;border-radius:6px}
#count{color:#5b6475;margin-left:10px}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dfe3ea}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #eceff4;vertical-align:top}
th{background:#eef1f6;font-weight:600;font-size:12px;text-transform:uppercase;letter-spacing:.03em;color:#4a5262}
tr.hidden{display:none}code{font:12px ui-monospace,Menlo,Consolas,monospace}
.tag{display:inline-block;background:#e8eefb;color:#24408e;border-radius:10px;padding:0 8px;margin:1px 2px;
  font-size:12px}
.badge{display:inline-block;border-radius:4px;padding:0 6px;font-size:12px;font-weight:600}
.fresh{background:#dff3e4;color:#17652e}.stale{background:#fde2e1;color:#9b1c1c}
.unknown{background:#eceff4;color:#4a5262}.deprecated{background:#fff1cc;color:#7a5200}
.banner{background:#fff1cc;border:1px solid #f0d27a;padding:8px 12px;border-radius:6px;margin:12px 0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;background:#fff;border:1px solid #dfe3ea;
  padding:12px}
dt{color:#5b6475}dd{margin:0}
.lineage{display:flex;align-items:center;gap:10px;flex-wrap:wrap;background:#fff;border:1px solid #dfe3ea;padding:12px}
.node{border:1px solid #b9c0cc;border-radius:6px;padding:6px 10px;background:#fafbfc}.arrow{color:#5b6475}
"""

# Filters every row that carries data-text by the words typed (all must occur); counts what is shown.
_SCRIPT = """
(function(){
  var box=document.getElementById('search'),count=document.getElementById('count');
  var rows=Array.prototype.slice.call(document.querySelectorAll('tr[data-text]'));
  function apply(){
    var words=box.value.toLowerCase().split(/\\s+/).filter(Boolean),shown=0;
    rows.forEach(function(row){
      var text=row.getAttribute('data-text'),hit=words.every(function(w){return text.indexOf(w)>=0;});
      row.classList.toggle('hidden',!hit);if(hit){shown++;}
    });
    count.textContent=shown+' of '+rows.length+' shown';
  }
  box.addEventListener('input',apply);
  var q=new URLSearchParams(window.location.search).get('q');if(q){box.value=q;}
  apply();
})();
"""


def _e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _age(age: timedelta | None) -> str:
    if age is None:
        return "—"
    hours = age.total_seconds() / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def _freshness_badge(state: GroupState | None, sla: str | None) -> str:
    if state is None:
        return '<span class="badge unknown">not read</span>'
    css = {"fresh": "fresh", "stale": "stale"}.get(state.freshness, "unknown")
    title = f"newest snapshot {_age(state.age)} old; SLA {sla or 'none'}"
    return f'<span class="badge {css}" title="{_e(title)}">{_e(state.freshness)}</span>'


def _tags(tags: Sequence[str]) -> str:
    return "".join(f'<span class="tag">{_e(t)}</span>' for t in tags)


def _deprecated(entry: GroupEntry) -> str:
    if entry.deprecated is None:
        return ""
    return f' <span class="badge deprecated" title="{_e(entry.deprecated)}">deprecated</span>'


def _search_text(*parts: object) -> str:
    return _e(" ".join(str(p) for p in parts if p).lower())


def _page(title: str, subtitle: str, body: str, placeholder: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{_e(title)}</h1><p>{subtitle}</p></header><main>"
        f'<p><input id="search" type="search" placeholder="{_e(placeholder)}" autofocus>'
        '<span id="count"></span></p>'
        f"{body}</main><script>{_SCRIPT}</script></body></html>\n"
    )


def render_index(
    entries: Sequence[GroupEntry], states: Mapping[str, GroupState], *, generated_at: datetime, env: str
) -> str:
    group_rows = []
    feature_rows = []
    for e in entries:
        state = states.get(e.name)
        link = f'<a href="{_e(e.name)}.html">{_e(e.name)}</a>{_deprecated(e)}'
        group_rows.append(
            f'<tr data-kind="group" data-text="{_search_text(e.name, e.description, e.owner, *e.tags)}">'
            f"<td>{link}</td><td>{e.version}</td><td>{_e(e.owner)}</td><td>{_tags(e.tags)}</td>"
            f"<td>{len(e.features)}</td><td>{_freshness_badge(state, e.freshness_sla)}</td>"
            f"<td>{_e(e.description)}</td></tr>"
        )
        for f in e.features:
            feature_rows.append(
                f'<tr data-kind="feature" data-text="{_search_text(f.name, f.description, e.name, e.owner, *e.tags)}">'
                f'<td><a href="{_e(e.name)}.html#{_e(f.name)}">{_e(f.name)}</a></td><td>{_e(e.name)}</td>'
                f"<td>{_e(f.type)}</td><td>{_e(f.window or '—')}</td><td>{_e(f.description)}</td></tr>"
            )
    body = (
        f'<h2>Feature groups ({len(entries)})</h2><table id="groups"><thead><tr><th>group</th><th>version</th>'
        "<th>owner</th><th>tags</th><th>features</th><th>freshness</th><th>description</th></tr></thead><tbody>"
        + "".join(group_rows)
        + f'</tbody></table><h2>Features ({len(feature_rows)})</h2><table id="features"><thead><tr>'
        "<th>feature</th><th>group</th><th>type</th><th>window</th><th>description</th></tr></thead><tbody>"
        + "".join(feature_rows)
        + "</tbody></table>"
    )
    subtitle = f"conf {_e(env)} · generated {generated_at:%Y-%m-%d %H:%M UTC}"
    return _page("Feature catalog", subtitle, body, "Search groups and features: name, description, tag, owner")


def render_group(
    entry: GroupEntry, state: GroupState | None, versions: Sequence[GroupEntry], *, generated_at: datetime
) -> str:
    others = " ".join(
        f'<a href="{_e(v.name)}.html">{_e(v.name)}</a> (v{v.version}{", deprecated" if v.deprecated else ""})'
        for v in versions
        if v.name != entry.name
    )
    snapshot = "none in the offline store"
    if state is not None and state.snapshot_time is not None:
        snapshot = f"{state.snapshot_time:%Y-%m-%dT%H:%M:%SZ} ({_age(state.age)} old)"
    rows = state.rows if state is not None and state.rows is not None else "—"
    validation = "no validation report found"
    if state is not None and state.validation is not None:
        v = state.validation
        verdict = "passed" if v.success else "BLOCKING" if v.blocking else "warnings"
        validation = (
            f"{verdict} at {_e(v.as_of)}: {v.expectations - len(v.failed)} of {v.expectations} expectations passed"
            + (f"; failed: {_e('; '.join(v.failed))}" if v.failed else "")
            + (f"; drift flagged: {_e(', '.join(v.drift_flagged))}" if v.drift_flagged else "")
            + f" <code>{_e(v.report)}</code>"
        )
    online = "yes" + (f", records expire {_e(entry.online_ttl)} after their event time" if entry.online_ttl else "")
    meta = [
        ("description", _e(entry.description)),
        ("owner", _e(entry.owner)),
        ("tags", _tags(entry.tags) or "—"),
        ("version", f"{entry.version} of {_e(entry.family)}" + (f" · other versions: {others}" if others else "")),
        ("entity key", f"<code>{_e(entry.entity_key)}</code>"),
        ("update frequency", _e(entry.update_frequency or "not declared")),
        ("freshness SLA", _e(entry.freshness_sla or "not declared")),
        ("latest snapshot", f"{_e(snapshot)} {_freshness_badge(state, entry.freshness_sla)}"),
        ("rows in it", _e(rows)),
        ("last validation", validation),
        ("online store", online if entry.online else "no (offline store only)"),
    ]
    null_rates = state.null_rates if state is not None else {}
    feature_rows = "".join(
        f'<tr id="{_e(f.name)}" data-text="{_search_text(f.name, f.description, f.aggregation, f.unit)}">'
        f"<td><code>{_e(f.name)}</code></td><td>{_e(f.type)}</td><td>{_e(f.unit or '—')}</td>"
        f"<td>{_e(f.window or '—')}</td><td><code>{_e(f.aggregation or '—')}</code></td>"
        f"<td>{_e(f'{null_rates[f.name]:.1%}' if f.name in null_rates else '—')}</td><td>{_e(f.description)}</td></tr>"
        for f in entry.features
    )
    banner = f'<div class="banner"><b>Deprecated:</b> {_e(entry.deprecated)}</div>' if entry.deprecated else ""
    body = (
        f'<p><a href="index.html">&larr; all groups</a></p>{banner}<h2>About</h2><dl>'
        + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in meta)
        + '</dl><h2>Lineage</h2><div class="lineage">'
        f'<span class="node">source <b>{_e(entry.source)}</b><br><code>{_e(entry.source_location)}</code></span>'
        '<span class="arrow">&rarr;</span>'
        f'<span class="node">group <b>{_e(entry.name)}</b><br>one record per <code>{_e(entry.entity_key)}</code>'
        "</span>"
        '<span class="arrow">&rarr;</span>'
        f'<span class="node">{len(entry.features)} features</span></div>'
        f'<h2>Features ({len(entry.features)})</h2><table id="features"><thead><tr><th>feature</th><th>type</th>'
        "<th>unit</th><th>window</th><th>aggregation</th><th>null rate</th><th>description</th></tr></thead><tbody>"
        + feature_rows
        + "</tbody></table>"
    )
    subtitle = f'<a href="index.html">Feature catalog</a> · generated {generated_at:%Y-%m-%d %H:%M UTC}'
    return _page(f"{entry.name}{' (deprecated)' if entry.deprecated else ''}", subtitle, body, "Filter features")


def write_catalog(
    out: Path,
    entries: Sequence[GroupEntry],
    states: Mapping[str, GroupState],
    *,
    generated_at: datetime,
    env: str,
) -> list[Path]:
    """Write ``out/index.html``, ``out/<group>.html`` per group and ``out/catalog.json``; the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "index.html"]
    written[0].write_text(render_index(entries, states, generated_at=generated_at, env=env), encoding="utf-8")
    for entry in entries:
        versions = [e for e in entries if e.family == entry.family]
        page = out / f"{entry.name}.html"
        page.write_text(
            render_group(entry, states.get(entry.name), versions, generated_at=generated_at), encoding="utf-8"
        )
        written.append(page)
    data = [{**e.to_dict(), "state": states[e.name].to_dict() if e.name in states else None} for e in entries]
    (out / "catalog.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    written.append(out / "catalog.json")
    return written
