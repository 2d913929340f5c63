"""The usage report as CSV or JSON (a billing import) or as one self-contained HTML page.

The HTML has no script and loads nothing: charts are inline SVG and styles inline CSS, so the page
can be mailed to a customer or opened offline, and every number on it is the CSV's number.
"""

from __future__ import annotations

import csv
import html
import io
import json

from obsbundle.cost.report import Report, rows

FIELDS = ("tenant_id", "resource", "item", "quantity", "unit", "unit_price", "cost", "currency")
TOP_TENANTS = 20
PALETTE = ("#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6", "#dd4477", "#66aa00", "#b82e2e")


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows(report):
        writer.writerow({k: _plain(v) for k, v in row.items()})
    return out.getvalue()


def to_json(report: Report) -> str:
    lines: dict[str, list[dict[str, object]]] = {}
    for row in rows(report):  # once: grouping per tenant inside the loop below made it quadratic
        if row["resource"] != "total":
            lines.setdefault(str(row["tenant_id"]), []).append(
                {k: v for k, v in row.items() if k not in ("tenant_id", "currency")})
    doc = {
        "currency": report.currency,
        "from": report.start.isoformat(),
        "to": report.end.isoformat(),
        "total": report.total,
        "tenants": [
            {"tenant_id": tenant, "total": total, "lines": lines.get(tenant, [])}
            for tenant, total in sorted(report.totals().items())
        ],
    }
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def _plain(value: object) -> object:
    return f"{value:.10g}" if isinstance(value, float) else value


def money(value: float, currency: str) -> str:
    return f"{value:,.2f} {currency}" if abs(value) >= 0.01 or value == 0 else f"{value:.4g} {currency}"


def _bars(items: list[tuple[str, float]], currency: str, width: int = 640) -> str:
    """Horizontal bars, largest first, each labelled with its exact amount."""
    if not items:
        return ""
    row_h, label_w, value_w = 22, 170, 130
    top = max(v for _, v in items) or 1.0
    plot_w = width - label_w - value_w
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{row_h * len(items) + 4}">']
    for i, (label, value) in enumerate(items):
        y = i * row_h + 2
        w = max(1.0, plot_w * value / top)
        parts.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" font-size="12">'
                     f"{html.escape(label)}</text>")
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
                     f'fill="{PALETTE[i % len(PALETTE)]}"/>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 15}" font-size="12" class="amount">'
                     f"{html.escape(money(value, currency))}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _line(points: list[float], width: int = 640, height: int = 160) -> str:
    """Daily cost as a polyline with a zero baseline."""
    if not points:
        return ""
    pad = 8
    top = max(points) or 1.0
    step = (width - 2 * pad) / max(1, len(points) - 1)
    coords = " ".join(f"{pad + i * step:.1f},{height - pad - (height - 2 * pad) * v / top:.1f}"
                      for i, v in enumerate(points))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}">'
            f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#999"/>'
            f'<polyline fill="none" stroke="#3366cc" stroke-width="2" points="{coords}"/></svg>')


def _daily(report: Report, tenant: str) -> list[str]:
    days = report.daily.get(tenant, [])
    return ["<h3>Cost per day</h3>", _line([v for _, v in days])] if len(days) > 1 else []


def to_html(report: Report) -> str:
    cur = report.currency
    totals = report.totals()
    whole_days = all(t.hour == t.minute == t.second == 0 for t in (report.start, report.end))
    shape = "%Y-%m-%d" if whole_days else "%Y-%m-%d %H:%M:%S UTC"
    title = (f"Usage and cost {report.start.strftime(shape)} to {report.end.strftime(shape)}"
             + (f" for {next(iter(totals))}" if len(totals) == 1 else ""))
    body = [f"<h1>{html.escape(title)}</h1>",
            f'<p>Total: <strong id="grand-total">{html.escape(money(report.total, cur))}</strong> '
            f"over {len(totals)} tenant(s).</p>"]
    if len(totals) > 1:
        top = list(totals.items())[:TOP_TENANTS]
        body += [f"<h2>Top {len(top)} tenants by cost</h2>", _bars(top, cur)]
    grouped = report.by_tenant()
    for tenant, total in totals.items():
        lines = grouped.get(tenant, [])
        by_resource: dict[str, float] = {}
        for line in lines:
            by_resource[line.resource] = by_resource.get(line.resource, 0.0) + line.cost
        body += [f'<section class="tenant" data-tenant="{html.escape(tenant)}">',
                 f"<h2>{html.escape(tenant)}: {html.escape(money(total, cur))}</h2>",
                 _bars(sorted(by_resource.items(), key=lambda kv: -kv[1]), cur),
                 *_daily(report, tenant),
                 "<table><tr><th>resource</th><th>item</th><th>quantity</th><th>unit</th>"
                 "<th>unit price</th><th>cost</th></tr>"]
        for line in lines:
            body.append(f"<tr><td>{html.escape(line.resource)}</td><td>{html.escape(line.item)}</td>"
                        f"<td>{line.quantity:.6g}</td><td>{html.escape(line.unit)}</td>"
                        f"<td>{line.unit_price:.6g}</td><td>{html.escape(money(line.cost, cur))}</td></tr>")
        body += ["</table></section>"]
    style = ("body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}section{margin-top:2em}")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{style}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


FORMATS = {"csv": to_csv, "json": to_json, "html": to_html}
