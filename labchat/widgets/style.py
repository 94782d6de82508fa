"""How the panels look: one style sheet, and the mark each connection state shows with.

Nothing here knows about sockets or widgets. The rule it keeps: every class the
panels' HTML uses starts with ``lc-`` and is styled here, so a panel looks the same
in every notebook and no rule leaks onto the rest of the page.
"""

from __future__ import annotations

# How each state shows in the status line: a colour class and a mark.
MARKS = {
    "connected": ("ok", "●"),
    "serving": ("ok", "●"),
    "reconnecting": ("wait", "◌"),
    "failed": ("bad", "✖"),
}

# A state not listed above (disconnected, stopped) shows grey with an empty circle.
OTHER_MARK = ("off", "○")

CSS = """<style>
.lc-panel { max-width: 980px; font-family: var(--jp-ui-font-family, sans-serif); }
.lc-panel .widget-html-content { line-height: 1.45; }
.lc-howto td { padding: 1px 8px 1px 0; }
.lc-title { font-weight: 600; font-size: 1.05em; }
.lc-status-ok { color: #1e8449; } .lc-status-bad { color: #b03a2e; } .lc-status-off { color: #707070; }
.lc-status-wait { color: #b9770e; }
.lc-scroll { height: var(--lc-height, 260px); overflow-y: auto; display: flex;
  flex-direction: column-reverse; border: 1px solid #d0d0d0; border-radius: 4px; padding: 4px 8px;
  background: var(--jp-layout-color0, #fff); }
.lc-event { white-space: pre-wrap; overflow-wrap: anywhere; line-height: 1.45; }
.lc-more { margin-left: 1.2em; padding-left: 6px; border-left: 2px solid #c8c8c8; }
.lc-time { color: #909090; font-size: 0.85em; }
b.lc-nick { unicode-bidi: isolate; }  /* a right-to-left nick keeps the words after it in their place */
.lc-join, .lc-leave, .lc-nick { color: #808080; }
.lc-system, .lc-welcome { color: #505050; font-style: italic; }
.lc-private { color: #7d3c98; font-style: italic; }
.lc-bot { color: #117a65; }
.lc-error { color: #b03a2e; font-weight: 600; }
.lc-old { opacity: 0.6; }
.lc-log { color: #8a5a00; font-size: 0.9em; white-space: pre-wrap; overflow-wrap: anywhere; }
.lc-users { border: 1px solid #d0d0d0; border-radius: 4px; padding: 4px 8px; height: var(--lc-height, 260px);
  overflow-y: auto; }
.lc-users li { list-style: none; margin: 0; } .lc-users ul { padding: 0; margin: 2px 0 0 0; }
.lc-howto code { user-select: all; }
.lc-event code { font-family: var(--jp-code-font-family, monospace); font-size: 0.92em;
  background: #f3f3f3; border-radius: 3px; padding: 0 3px; }
.lc-code { margin: 3px 0 5px 0; border: 1px solid #dcdcdc; border-radius: 4px; background: #f8f8f8; }
.lc-code-head { font-size: 0.85em; color: #606060; padding: 1px 6px; font-style: normal; }
.lc-code-no { font-weight: 600; color: #303030; } .lc-code-how { color: #909090; }
.lc-fold > summary { cursor: pointer; } .lc-fold[open] .lc-code-open { display: none; }
.lc-code pre { margin: 0; padding: 4px 8px; overflow-x: auto; white-space: pre; user-select: all;
  line-height: 1.35; }
.lc-code pre code { background: none; padding: 0; font-size: 0.95em; }
.lc-mentioned { background: #fff8d6; border-left: 3px solid #e0b000; padding-left: 4px; }
mark.lc-mention { background: #ffe27a; color: inherit; font-weight: 600; border-radius: 2px; padding: 0 1px; }
.lc-unread { background: #e0b000; color: #fff; border-radius: 9px; padding: 0 7px; font-size: 0.85em;
  font-weight: 600; }
.lc-input textarea { font-family: var(--jp-code-font-family, monospace); resize: vertical; }
.lc-conns-box { overflow-x: auto; max-width: 100%; }
.lc-conns { border-collapse: collapse; font-size: 0.8em; margin: 2px 0 4px 0; }
.lc-conns caption { text-align: left; font-weight: 600; padding-bottom: 2px; }
.lc-conns th, .lc-conns td { padding: 1px 5px; border-bottom: 1px solid #e4e4e4; text-align: left;
  white-space: nowrap; }
.lc-conns td:nth-child(n+5) { text-align: right; font-variant-numeric: tabular-nums; }
.lc-off { color: #909090; }
.lc-wire { font-family: var(--jp-code-font-family, monospace); font-size: 0.8em; color: #8c8c8c;
  white-space: pre-wrap; overflow-wrap: anywhere; margin: 0 0 2px 1.5em; line-height: 1.3; }
</style>"""
