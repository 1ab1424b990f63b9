"""Executed notebook → self-contained HTML without code, that loads nothing from the network.

nbconvert's ``lab`` template puts require.js, MathJax and mermaid ``<script src=https://…>`` tags in the page
head; this template (loaded from memory, nothing to install) leaves them out and adds a header naming the report,
its parameters and its run. Inputs and prompts are excluded, and so are the outputs of cells tagged
``remove-output`` (and cells tagged ``remove-cell``); plotly figures carry their own inlined plotly.js.
``sanitize_html`` stays off: it would strip plotly's scripts.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["notebook_to_html", "TEMPLATE_NAME"]

TEMPLATE_NAME = "gitinsight_report.html.j2"

_TEMPLATE = r"""
{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_css -%}
<style type="text/css">
.gi-header { font-family: system-ui, sans-serif; margin: 16px 24px 0; padding: 12px 16px; border-radius: 8px;
             background: #f8fafc; border: 1px solid #e2e8f0; }
.gi-header h1 { margin: 0 0 6px; font-size: 1.4em; }
.gi-header .gi-meta { color: #475569; font-size: .9em; }
.gi-header code { background: #e2e8f0; padding: 1px 4px; border-radius: 3px; }
.gi-status-failed { color: #b91c1c; font-weight: 600; }
.gi-status-succeeded { color: #15803d; font-weight: 600; }
</style>
{%- endblock html_head_css -%}
{%- block body_header -%}
{{ super() }}
{{ resources.gitinsight_header }}
{%- endblock body_header -%}
"""


def _header(meta: Mapping[str, Any]) -> str:
    esc = html.escape
    name = str(meta.get("name", "report"))
    params = meta.get("parameters") or {}
    shown = ", ".join(f"<code>{esc(str(k))} = {esc(repr(v))}</code>" for k, v in params.items()) or "defaults"
    status = str(meta.get("status", ""))
    duration = meta.get("duration_s")
    when = esc(str(meta.get("started_at", "")))
    error = f'<div class="gi-status-failed">{esc(str(meta["error"]))}</div>' if meta.get("error") else ""
    return (
        '<header class="gi-header">'
        f'<h1>{esc(name.replace("_", " ").replace("-", " ").capitalize())}</h1>'
        f'<div class="gi-meta">Run {esc(str(meta.get("run_id", "")))} started {when}'
        + (f", took {float(duration):.1f} s" if duration is not None else "")
        + f', status <span class="gi-status-{esc(status)}">{esc(status)}</span>.'
        f" Parameters: {shown}. <a href=\"../../index.html\">All reports</a></div>{error}</header>"
    )


def notebook_to_html(notebook_path: Path, *, meta: Mapping[str, Any]) -> str:
    """The HTML text of ``notebook_path`` with inputs hidden and the report header from ``meta``."""
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    nb = nbformat.read(str(notebook_path), as_version=4)
    nb.metadata["title"] = f"{meta.get('name', notebook_path.stem)} — GitInsight report"
    exporter = HTMLExporter(
        template_name="lab",
        template_file=TEMPLATE_NAME,
        extra_loaders=[jinja2.DictLoader({TEMPLATE_NAME: _TEMPLATE})],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        sanitize_html=False,
    )
    exporter.register_preprocessor(
        TagRemovePreprocessor(remove_cell_tags={"remove-cell"}, remove_all_outputs_tags={"remove-output"},
                              remove_input_tags={"remove-input"}, enabled=True),
        enabled=True,
    )
    body, _ = exporter.from_notebook_node(nb, resources={"gitinsight_header": _header(meta)})
    return body
