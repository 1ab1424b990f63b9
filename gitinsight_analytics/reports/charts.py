"""Presentation helpers shared by the notebooks: plotly setup that renders offline, findings, tables.

Only presentation lives here; every number comes from :mod:`gitinsight_analytics.queries`. Call
:func:`setup` once at the top of a notebook: it registers a renderer that writes each figure as HTML with
plotly.js inlined once per notebook (no CDN, no MathJax CDN), together with plotly's own mime type so that
JupyterLab shows live figures too. The stock ``notebook`` renderer would add a MathJax CDN script to every
figure, ``notebook_connected`` loads plotly.js from a CDN, and the default ``plotly_mimetype`` shows nothing in
nbconvert's HTML.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["setup", "RENDERER", "findings", "note", "table", "freshness", "style", "fmt_int", "fmt_time"]

RENDERER = "gitinsight"
TEMPLATE = "plotly_white"
COLORS = ["#2563eb", "#f97316", "#16a34a", "#dc2626", "#9333ea", "#0891b2", "#ca8a04", "#db2777"]


def _renderer_class() -> type:
    from plotly.io import to_html
    from plotly.io._base_renderers import NotebookRenderer

    class OfflineHtmlRenderer(NotebookRenderer):
        """Like plotly's ``notebook`` renderer, without the MathJax CDN script it adds to every figure."""

        def to_mimebundle(self, fig_dict: dict) -> dict[str, str]:
            return {
                "text/html": to_html(
                    fig_dict,
                    config=self.config,
                    include_plotlyjs=False,
                    include_mathjax=False,
                    full_html=False,
                    default_width="100%",
                    default_height=460,
                    validate=False,
                )
            }

    return OfflineHtmlRenderer


def setup() -> None:
    """Presentation defaults for a notebook: offline plotly renderer, a clean template, pandas display."""
    import pandas as pd
    import plotly.express as px
    import plotly.io as pio

    pio.renderers[RENDERER] = _renderer_class()(config={"displaylogo": False, "responsive": True})
    pio.renderers.default = f"plotly_mimetype+{RENDERER}"
    pio.templates.default = TEMPLATE
    px.defaults.template = TEMPLATE
    px.defaults.color_discrete_sequence = COLORS
    pd.set_option("display.max_columns", 20)
    pd.set_option("display.width", 120)


def _display_markdown(text: str) -> None:
    from IPython.display import Markdown, display

    display(Markdown(text))


def findings(sentences: Iterable[str], *, title: str = "Key findings") -> None:
    """Show computed sentences as a bulleted list under a heading."""
    items = [s for s in sentences if s]
    body = "\n".join(f"- {s}" for s in items) if items else "- Nothing to report for these parameters."
    _display_markdown(f"### {title}\n\n{body}")


def note(text: str) -> None:
    """A one-paragraph remark (e.g. why a chart is absent)."""
    _display_markdown(f"> {text}")


def table(df: Any, columns: Mapping[str, str] | None = None, *, formats: Mapping[str, str] | None = None,
          max_rows: int = 50) -> None:
    """Show a DataFrame as a compact HTML table without its index (columns renamed for people)."""
    from IPython.display import HTML, display

    if df is None or len(df) == 0:
        note("No rows.")
        return
    view = df.head(max_rows)
    if columns:
        view = view[[c for c in columns if c in view.columns]].rename(columns=dict(columns))
    styler = view.style.hide(axis="index").format(dict(formats or {}), na_rep="–")
    display(HTML(styler.to_html()))


def fmt_int(value: Any) -> str:
    """1234567 -> '1,234,567' (— for missing)."""
    try:
        return f"{int(value):,}"
    except (TypeError, ValueError):
        return "—"


def fmt_time(value: Any) -> str:
    """A timestamp as 'YYYY-MM-DD HH:MM UTC', a date as 'YYYY-MM-DD' (— for missing)."""
    if value is None:
        return "—"
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    try:
        import pandas as pd

        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        return html.escape(str(value))
    if stamp is pd.NaT:
        return "—"
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize(dt.UTC)
    return stamp.tz_convert(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def freshness(df: Any) -> str:
    """A sentence saying how fresh a result is, from ``df.attrs`` (view_refreshed_at / as_of)."""
    attrs = getattr(df, "attrs", {}) or {}
    parts = []
    if attrs.get("view_refreshed_at") is not None:
        parts.append(f"repository statistics refreshed {fmt_time(attrs['view_refreshed_at'])}")
    if attrs.get("as_of") is not None:
        parts.append(f"data as of {attrs['as_of']}")
    return ("Freshness: " + "; ".join(parts) + ".") if parts else ""


def style(fig: Any, title: str, *, subtitle: str | None = None, height: int | None = None) -> Any:
    """Title, margins and hover mode every chart shares; returns the figure for chaining."""
    text = title if not subtitle else f"{title}<br><sup>{subtitle}</sup>"
    fig.update_layout(title={"text": text, "x": 0.01}, margin={"l": 10, "r": 10, "t": 70, "b": 10},
                      hoverlabel={"namelength": -1}, legend_title_text="")
    if height:
        fig.update_layout(height=height)
    return fig
