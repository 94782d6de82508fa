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
.lc-time { color: #909090; font-size: 0.85em; }
.lc-join, .lc-leave, .lc-nick { color: #808080; }
.lc-system, .lc-welcome { color: #505050; font-style: italic; }
.lc-private { color: #7d3c98; font-style: italic; }
.lc-bot { color: #117a65; }
.lc-error { color: #b03a2e; font-weight: 600; }
.lc-old { opacity: 0.6; }
.lc-users { border: 1px solid #d0d0d0; border-radius: 4px; padding: 4px 8px; height: var(--lc-height, 260px);
  overflow-y: auto; }
.lc-users li { list-style: none; margin: 0; } .lc-users ul { padding: 0; margin: 2px 0 0 0; }
.lc-howto code { user-select: all; }
</style>"""
