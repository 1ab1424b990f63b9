import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

cells = []
cells.append(new_markdown_cell("""# Compare repositories

Two to ten repositories side by side, from the imported daily star history (`repository_snapshots`), the way
star-history.com and OSS Insight's compare page show them: the history on linear and log scales, the stars gained
each week, the rank of each among the repositories of its language, and the newest insights GitInsight found in
each. Renamed or transferred repositories are followed through their renames (an old name works too).

Every number and every sentence below comes from `gitinsight_analytics.queries` (`compare_repositories`,
`weekly_gains`, `compare_findings`); the dates come from the data, never from the clock."""))
p = new_code_cell("""# Parameters: `gitinsight report run compare -p repos "facebook/react,vuejs/vue" -p start 2026-07-19`
repos = None  # 2..10 repositories owner/name, comma-separated; None for the 3 most starred
metric = "stars"  # stars, forks or issues
align = "calendar"  # calendar (dates) or age (days since each was first seen)
start = None  # first snapshot day, YYYY-MM-DD; None for the start of the history
end = None  # last snapshot day, YYYY-MM-DD; None for the end of the history""")
p.metadata["tags"] = ["parameters"]
cells.append(p)
cells.append(new_code_cell("""import plotly.express as px

from gitinsight_analytics import connect
from gitinsight_analytics.queries import (compare_findings, compare_repositories, default_repositories,
                                          latest_insights, weekly_gains)
from gitinsight_analytics.reports import charts

charts.setup()
engine = connect()
names = [n.strip() for n in repos.split(",") if n.strip()] if repos else default_repositories(engine)
if len(names) >= 2:
    frame = compare_repositories(engine, names, metric=metric, align=align, start=start, end=end)
    weeks = weekly_gains(frame)
    insights = latest_insights(engine, names)
else:
    frame = weeks = insights = None
x = frame.attrs["x"] if frame is not None else "snapshot_date"
x_label = "Date" if x == "snapshot_date" else "Days since first seen"
label = {"stars": "Stars", "forks": "Forks", "issues": "Open issues"}[metric]"""))
cells.append(new_code_cell("""if frame is None:
    charts.findings(["There is no star history to compare: import it with `gitinsight import github-ranking`."])
else:
    charts.findings(compare_findings(frame))
    if frame.attrs["as_of"] is not None:
        charts.note(f"Data from {frame['snapshot_date'].min()} to {frame.attrs['as_of']}; "
                    f"repositories: {', '.join(dict.fromkeys(frame['full_name']))}.")"""))
cells.append(new_markdown_cell("""## History

The same series on a linear and on a logarithmic scale: the log scale shows growth *rates* (equal slopes,
equal percentage growth), so a small repository growing fast stands out next to a big one."""))
cells.append(new_code_cell("""# NBVAL_IGNORE_OUTPUT
if frame is not None and not frame.empty:
    for log in (False, True):
        fig = px.line(frame, x=x, y="value", color="full_name", markers=len(frame) < 200, log_y=log,
                      hover_data=["name_that_day", "gain", "rank_in_language"],
                      labels={"value": label + (" (log)" if log else ""), x: x_label, "full_name": ""})
        charts.style(fig, f"{label} over time" + (", log scale" if log else ""),
                     subtitle="aligned by " + ("date" if x == "snapshot_date" else "days since first seen")).show()
else:
    charts.note("No history to draw.")"""))
cells.append(new_markdown_cell("""## Weekly gains

What each repository gained per calendar week (Monday to Sunday): its value at its last snapshot of the week
minus its value at its last snapshot of the week before. Weeks without data on both sides are left out."""))
cells.append(new_code_cell("""# NBVAL_IGNORE_OUTPUT
if weeks is not None and not weeks.empty:
    fig = px.bar(weeks, x="week", y="gain", color="full_name", barmode="group",
                 labels={"gain": f"{label} gained", "week": "Week starting", "full_name": ""})
    charts.style(fig, f"{label} gained per week").show()
else:
    charts.note("No two consecutive weeks of history: no weekly gains.")"""))
cells.append(new_markdown_cell("""## Rank in its language

Each repository's rank by stars among all repositories of its language in that day's snapshot (1 = most
starred). The source publishes the top 100 of each language, so ranks above 100 mean it was outside that list."""))
cells.append(new_code_cell("""# NBVAL_IGNORE_OUTPUT
ranked = frame.dropna(subset=["rank_in_language"]) if frame is not None else None
if ranked is not None and not ranked.empty:
    fig = px.line(ranked.astype({"rank_in_language": "float64"}), x=x, y="rank_in_language", color="full_name",
                  markers=len(ranked) < 200, hover_data=["language", "stars"],
                  labels={"rank_in_language": "Rank in language", x: x_label, "full_name": ""})
    fig.update_yaxes(autorange="reversed")
    charts.style(fig, "Rank among the repositories of the same language", subtitle="1 = most starred").show()
else:
    charts.note("No rank to draw (no history, or no language).")"""))
cells.append(new_markdown_cell("""## Latest insights, side by side

The newest insights GitInsight generated for each repository (title, type and confidence)."""))
cells.append(new_code_cell("""if insights is not None and not insights.empty:
    cells_text = insights.assign(text=[f"{t} ({k}, {c:.2f}, {charts.fmt_time(g)})" for t, k, c, g in zip(
        insights["title"], insights["type"], insights["confidence_score"], insights["generated_at"], strict=True)])
    cells_text["n"] = cells_text.groupby("full_name").cumcount() + 1
    side = cells_text.pivot(index="n", columns="full_name", values="text").reindex(
        columns=[n for n in dict.fromkeys(frame["full_name"]) if n in set(cells_text["full_name"])])
    charts.table(side.reset_index(drop=True))
else:
    charts.note("No insights for these repositories yet.")"""))
cells.append(new_markdown_cell("""## The numbers"""))
cells.append(new_code_cell("""if frame is not None:
    last = frame.sort_values("snapshot_date").groupby("full_name", sort=False).tail(1)
    charts.table(last, {"full_name": "Repository", "language": "Language", "snapshot_date": "Last day",
                        "value": label, "gain_7d": "Gained in 7 days", "growth_pct_7d": "7-day growth %",
                        "rank_in_language": "Rank in language"},
                 formats={label: "{:,}", "Gained in 7 days": "{:+,.0f}", "7-day growth %": "{:+.2f}"})"""))
cells.append(new_markdown_cell("""## Checks"""))
cells.append(new_code_cell("""# NBVAL_CHECK_OUTPUT
adds_up = frame is None or all(
    g["gain"].iloc[1:].sum() == g["value"].iloc[-1] - g["value"].iloc[0]
    for _, g in frame.sort_values("snapshot_date").groupby("full_name") if len(g) > 1)
ranks_ok = frame is None or bool((frame["rank_in_language"].dropna() >= 1).all())
print(f"gains add up to each repository's change: {adds_up}; ranks start at 1: {ranks_ok}")"""))
nb = new_notebook(cells=cells)
nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
nb.metadata["language_info"] = {"name": "python"}
nb.metadata["title"] = "Compare repositories"
nbformat.write(nb, "notebooks/compare.ipynb")
