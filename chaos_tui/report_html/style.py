"""The reports' one stylesheet, inlined in every page (no file, font or script is fetched).

Colours are variables set once for light and once for dark (`prefers-color-scheme`); the
charts use them through classes, so one SVG reads in either. Print always uses the light set,
keeps a chart, a table row or a card on one page, and drops the screen's shadows.
"""

CSS = """
:root {
  color-scheme: light dark;
  --bg: #f6f7f9; --card: #ffffff; --fg: #1b1f24; --muted: #5b6470; --line-soft: #e3e6ea;
  --accent: #2563eb; --pass: #15803d; --pass-bg: #dcfce7; --fail: #c62828; --fail-bg: #fde2e1;
  --warn: #b45309; --warn-bg: #fef3c7; --window: rgba(245, 158, 11, 0.20);
  --inject: #d97706; --heal: #059669; --code-bg: #f1f3f5;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0e1116; --card: #161b22; --fg: #e6e8eb; --muted: #9aa4b0; --line-soft: #2a313a;
    --accent: #60a5fa; --pass: #4ade80; --pass-bg: #12361f; --fail: #f87171; --fail-bg: #3d1618;
    --warn: #fbbf24; --warn-bg: #3a2a0b; --window: rgba(251, 191, 36, 0.17);
    --inject: #fbbf24; --heal: #34d399; --code-bg: #0b0e12;
  }
}
* { box-sizing: border-box; }
html { background: var(--bg); }
body {
  margin: 0 auto; max-width: 1000px; padding: 28px 24px 48px; color: var(--fg);
  background: var(--bg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    sans-serif;
}
h1 { font-size: 26px; margin: 0; letter-spacing: -0.01em; }
h2 {
  font-size: 13px; text-transform: uppercase; letter-spacing: 0.08em; color: var(--muted);
  margin: 0 0 12px;
}
h3 { font-size: 15px; margin: 0 0 2px; }
p { margin: 6px 0; }
code, pre, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
code { font-size: 0.92em; }
.card {
  background: var(--card); border: 1px solid var(--line-soft); border-radius: 10px;
  padding: 18px 20px; margin: 16px 0; box-shadow: 0 1px 2px rgba(0, 0, 0, 0.04);
}
header.card { display: flex; gap: 22px; align-items: flex-start; }
.verdict {
  flex: none; min-width: 128px; text-align: center; border-radius: 10px; padding: 14px 16px;
  font-size: 30px; font-weight: 800; letter-spacing: 0.04em; line-height: 1.1;
}
.verdict small {
  display: block; font-size: 12px; font-weight: 600; letter-spacing: 0.02em; margin-top: 6px;
}
.verdict.pass { color: var(--pass); background: var(--pass-bg); }
.verdict.fail { color: var(--fail); background: var(--fail-bg); }
.verdict.other { color: var(--warn); background: var(--warn-bg); }
.headline { min-width: 0; }
.reason { color: var(--fail); font-weight: 600; }
.hypothesis { color: var(--muted); font-style: italic; }
.meta {
  display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 4px 20px;
  margin-top: 12px; font-size: 14px;
}
.meta div span { display: block; color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td {
  text-align: left; padding: 6px 10px 6px 0; border-bottom: 1px solid var(--line-soft);
  vertical-align: top;
}
th { color: var(--muted); font-weight: 600; font-size: 12px; }
tr:last-child td { border-bottom: none; }
.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
tr { break-inside: avoid; }
.facts td:first-child { color: var(--muted); width: 45%; }
.mark { font-weight: 700; white-space: nowrap; }
.mark.pass, .ok { color: var(--pass); }
.mark.fail, .bad { color: var(--fail); }
.changed { color: var(--warn); font-weight: 700; }
.pill {
  display: inline-block; font-size: 11px; font-weight: 700; padding: 1px 7px;
  border-radius: 999px; background: var(--warn-bg); color: var(--warn); margin-left: 6px;
}
.pill.fail { background: var(--fail-bg); color: var(--fail); }
.pill.pass { background: var(--pass-bg); color: var(--pass); }
.muted { color: var(--muted); }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 0 28px; }
@media (max-width: 760px) { .grid2 { grid-template-columns: 1fr; } header.card { display: block; } }
.chart-card { break-inside: avoid; page-break-inside: avoid; margin-bottom: 18px; }
.chart-card:last-child { margin-bottom: 0; }
.chart-card .caption { font-size: 13px; color: var(--muted); margin-bottom: 4px; }
.legend { font-size: 12px; color: var(--muted); margin: 0 0 12px; }
.legend i {
  display: inline-block; width: 14px; height: 10px; vertical-align: -1px; margin: 0 4px 0 12px;
  border-radius: 2px;
}
.legend i.window { background: var(--window); outline: 1px solid var(--inject); }
.legend i.line { height: 3px; vertical-align: 3px; background: var(--accent); }
.legend i.fail { background: var(--fail); width: 4px; }
.legend i.inject { width: 2px; background: var(--inject); }
.legend i.heal { width: 2px; background: var(--heal); }
.legend i.pass-dot, .legend i.fail-dot, .legend i.ring { width: 10px; border-radius: 50%; }
.legend i.pass-dot { background: var(--pass); }
.legend i.fail-dot { border: 2px solid var(--fail); }
.legend i.ring { border: 2px solid var(--warn); }
.legend i.other {
  width: 8px; height: 8px; margin-left: 14px; transform: rotate(45deg); border-radius: 0;
  background: var(--pass);
}
svg.chart { display: block; width: 100%; height: auto; overflow: visible; color: var(--fg); }
svg .grid { stroke: var(--line-soft); stroke-width: 1; }
svg .axis { stroke: var(--muted); stroke-width: 1; }
svg .tick, svg .empty { fill: var(--muted); font-size: 11px; font-family: inherit; }
svg .line { fill: none; stroke: var(--accent); stroke-width: 1.6; stroke-linejoin: round; }
svg .window { fill: var(--window); }
svg .edge { stroke-width: 1.6; stroke-dasharray: 4 3; }
svg .edge.inject { stroke: var(--inject); }
svg .edge.heal { stroke: var(--heal); }
svg .edge-label { font-size: 11px; font-weight: 700; }
svg .edge-label.inject { fill: var(--inject); }
svg .edge-label.heal { fill: var(--heal); }
svg rect.fail { fill: var(--fail); }
svg circle.fail { fill: var(--fail); }
svg .run.pass { fill: var(--pass); }
svg .run.fail { fill: var(--card); stroke: var(--fail); stroke-width: 2; }
svg .line.other { stroke-dasharray: 5 3; opacity: 0.75; }
svg circle.regressed { fill: none; stroke: var(--warn); stroke-width: 2; }
.runbook { font-size: 14px; }
.runbook h3 { font-size: 16px; margin: 6px 0; }
.runbook h4 { font-size: 14px; margin: 14px 0 4px; }
.runbook pre {
  white-space: pre-wrap; background: var(--code-bg); border-radius: 8px; padding: 10px 12px;
  font-size: 12.5px; line-height: 1.45; margin: 8px 0; overflow-wrap: anywhere;
}
.runbook code { background: var(--code-bg); padding: 0 3px; border-radius: 3px; }
.runbook table { margin: 8px 0; font-size: 13px; }
.runbook li { margin: 3px 0; }
footer { color: var(--muted); font-size: 12px; text-align: center; margin-top: 24px; }
@media print {
  :root {
    --bg: #ffffff; --card: #ffffff; --fg: #111111; --muted: #555b63; --line-soft: #dddddd;
    --accent: #1d4ed8; --pass: #15803d; --pass-bg: #dcfce7; --fail: #b91c1c;
    --fail-bg: #fde2e1; --warn: #b45309; --warn-bg: #fef3c7;
    --window: rgba(245, 158, 11, 0.22); --inject: #d97706; --heal: #059669; --code-bg: #f3f4f6;
  }
  @page { size: A4; margin: 14mm 12mm; }
  html, body { background: #ffffff; }
  body { max-width: none; padding: 0; font-size: 12px; }
  .card { box-shadow: none; border-color: #dddddd; margin: 10px 0; break-inside: auto; }
  header.card, .chart-card, .runbook pre { break-inside: avoid; }
  h2 { break-after: avoid; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""
