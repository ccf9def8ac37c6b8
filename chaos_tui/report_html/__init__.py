"""Reports to share: one result, or a scenario's history, as a self-contained HTML page with
SVG charts (page.py, trends.py, svg.py), and a PDF of it printed by headless Chromium
(chromium.py). Textual-free: the command line and the console both use it."""

from chaos_tui.report_html.page import result_html
from chaos_tui.report_html.trends import history_html, history_rows

__all__ = ["history_html", "history_rows", "result_html"]
