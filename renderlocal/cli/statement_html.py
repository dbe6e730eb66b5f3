"""A one-page HTML statement for a slide or an e-mail: the lines, the total and a bar chart of
spend per UTC day (inline SVG: no script, no network)."""

from __future__ import annotations

from decimal import Decimal
from html import escape

CHART_WIDTH, CHART_HEIGHT = 620, 160


def spend_chart_svg(days: list[dict]) -> str:
    top = max((Decimal(day["amountUSD"]) for day in days), default=Decimal(0))
    if not days:
        return ""
    step = CHART_WIDTH / len(days)
    bars = []
    for n, day in enumerate(days):
        amount = Decimal(day["amountUSD"])
        height = 0 if top == 0 else float(amount / top) * (CHART_HEIGHT - 20)
        x = n * step
        bars.append(f'<rect x="{x + 1:.1f}" y="{CHART_HEIGHT - 14 - height:.1f}" width="{step - 2:.1f}" '
                    f'height="{height:.1f}" fill="#6e56cf"><title>{escape(day["date"])}: '
                    f'${escape(day["amountUSD"])}</title></rect>')
        if n % 5 == 0 or n == len(days) - 1:
            bars.append(f'<text x="{x + step / 2:.1f}" y="{CHART_HEIGHT - 2}" font-size="9" '
                        f'text-anchor="middle">{escape(day["date"][8:])}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH}" height="{CHART_HEIGHT}" '
            f'role="img" aria-label="spend per day">{"".join(bars)}</svg>')


def statement_html(data: dict) -> str:
    rows = "".join(
        f"<tr><td>{escape(line['serviceName'])}</td><td>{escape(line['kind'])}</td><td>{escape(line['planId'])}</td>"
        f"<td class=n>{line['runs']}</td><td class=n>{line['seconds']:,}</td><td class=n>${escape(line['amountUSD'])}</td></tr>"
        for line in data["lines"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>render-local statement {escape(data['month'])}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 680px; color: #1c1c1c; }}
table {{ border-collapse: collapse; width: 100%; }} th, td {{ padding: 4px 8px; border-bottom: 1px solid #ddd; text-align: left; }}
td.n, th.n {{ text-align: right; font-variant-numeric: tabular-nums; }} tfoot td {{ font-weight: bold; border-top: 2px solid #1c1c1c; }}
small {{ color: #666; }}
</style></head><body>
<h1>Statement {escape(data['month'])} <small>(UTC month)</small></h1>
<table><thead><tr><th>Service</th><th>Kind</th><th>Plan</th><th class=n>Runs</th><th class=n>Seconds</th><th class=n>Amount</th></tr></thead>
<tbody>{rows}</tbody>
<tfoot><tr><td colspan=5>Total</td><td class=n>${escape(data['totalUSD'])}</td></tr></tfoot></table>
<h2>Spend per day</h2>
{spend_chart_svg(data.get('days', []))}
<p><small>{escape(data['rates'])}; {escape(data['rounding'])}. Made by render-local from the jobs it ran.</small></p>
</body></html>
"""
