"""The key findings of the analysis reports as sentences, computed from the query functions' frames.

The notebooks only show them (``charts.findings(...)``); the logic lives here so that it is tested on known data
(tests/test_findings.py). The compare and calibration reports' findings are in ``queries.compare_findings`` and
``queries.calibration.calibration_findings``; the dashboard's and the operations report's in :mod:`.findings_ops`.
"""

from __future__ import annotations

import pandas as pd

from .charts import fmt_int, fmt_time

__all__ = ["trending_findings", "stats_findings", "insights_by_type", "confidence_findings", "search_findings"]


def _scope(language: str | None, noun: str = "repositories") -> str:
    return f"{language} {noun}" if language else noun


def trending_findings(score: pd.DataFrame, stars: pd.DataFrame, *, window_days: int, limit: int,
                      language: str | None = None) -> list[str]:
    """The trending report: who leads by the spec's score and what the score is made of; who leads by star
    growth (``trending_by_stars``), who grew fastest relative to its size, losses, partial coverage, capped
    spikes, and the overlap of both top-``limit`` lists."""
    scope = _scope(language)
    out = []
    if score.empty:
        out.append(f"No analysed {scope} to rank by the spec's score.")
    else:
        top = score.iloc[0]
        out.append(f"By the spec's score, {top['full_name']} leads with {fmt_int(top['trending_score'])} "
                   f"({fmt_int(top['stars'])} stars + {fmt_int(top['forks'])} forks + 10 × "
                   f"{top['recent_insights']} insights in the {window_days} days to {score.attrs.get('as_of')}).")
        share = (score["stars"] + score["forks"]).sum() / max(score["trending_score"].sum(), 1)
        out.append(f"Stars and forks make up {share:.0%} of the score of these {len(score)} {scope}; "
                   "recent insights the rest.")
    if stars.empty:
        out.append(f"There is no star history for {scope} in the {window_days} days to "
                   f"{stars.attrs.get('as_of') or 'the end of the data'}, so star growth cannot be ranked: import "
                   "the daily snapshots with `gitinsight import github-ranking`.")
        return out
    best = stars.iloc[0]
    out.append(f"The top repository by {window_days}-day star growth is {best['full_name']} with "
               f"{best['star_delta']:+,} stars ({fmt_int(best['stars'])} now) up to {stars.attrs.get('as_of')}.")
    if stars["growth_pct"].notna().any():
        fastest = stars.loc[stars["growth_pct"].idxmax()]
        if fastest["full_name"] != best["full_name"]:
            out.append(f"Relative to its size, {fastest['full_name']} grew fastest: {fastest['growth_pct']:+.1f}%.")
    losers = int((stars["star_delta"] < 0).sum())
    if losers:
        out.append(f"{losers} of them lost stars in the window.")
    partial = int((stars["coverage"] != "full").sum())
    if partial:
        out.append(f"{partial} entered or left the star history inside the window; they are measured between the "
                   "snapshots they have.")
    spikes = int(stars["spike_stars"].sum())
    if spikes:
        out.append(f"{spikes:,} stars gained in single-day spikes were capped.")
    both = set(score["full_name"]) & set(stars["full_name"])
    out.append(f"{len(both)} repositories appear in both top-{limit} lists.")
    return out


def insights_by_type(stats: pd.DataFrame) -> pd.DataFrame:
    """``repository_stats``' ``insights_by_type`` (a JSON object per repository) as long rows
    (full_name, insight_type, insights)."""
    rows = [{"full_name": r.full_name, "insight_type": k, "insights": int(v)}
            for r in stats.itertuples() for k, v in (r.insights_by_type or {}).items()]
    return pd.DataFrame(rows, columns=["full_name", "insight_type", "insights"])


def stats_findings(stats: pd.DataFrame, live: pd.DataFrame | None = None, *, full_name: str | None = None,
                   language: str | None = None) -> list[str]:
    """The repository-statistics report: one repository's profile (``full_name``; ``live`` from
    ``get_repository_stats`` tells when the view is older than the data) or a leaderboard's leaders."""
    scope = _scope(language)
    if stats.empty:
        return [f"No {scope} in the statistics yet (run `gitinsight refresh` after loading data)."]
    out = []
    if full_name:
        r = stats.iloc[0]
        out.append(f"{r['full_name']} ({r['language'] or 'no language'}) has {fmt_int(r['stars'])} stars, "
                   f"{fmt_int(r['forks'])} forks and {r['follower_count']} followers on GitInsight.")
        if r["total_insights"]:
            out.append(f"It has {r['total_insights']} insights with an average confidence of "
                       f"{r['avg_confidence']:.2f}; the latest was generated {fmt_time(r['latest_insight'])}.")
        else:
            out.append("It has no insights yet.")
        out.append(f"{r['total_jobs']} analysis jobs ran for it, {r['failed_jobs']} failed; the latest is "
                   f"{r['latest_job_status'] or 'none'} and the repository's analysis status is "
                   f"{r['analysis_status']}.")
        if live is not None and not live.empty and int(live.iloc[0]["total_insights"]) != int(r["total_insights"]):
            out.append(f"Live count now: {live.iloc[0]['total_insights']} insights (the view is older than the "
                       "data; `gitinsight refresh` updates it).")
        return out
    top = stats.iloc[0]
    out.append(f"Among {scope}, {top['full_name']} has the most insights: {top['total_insights']} "
               f"(average confidence {top['avg_confidence']:.2f}).")
    most_followed = stats.loc[stats["follower_count"].idxmax()]
    out.append(f"The most followed of these {len(stats)} is {most_followed['full_name']} with "
               f"{most_followed['follower_count']} followers.")
    out.append(f"{int((stats['failed_jobs'] > 0).sum())} of them had at least one failed analysis job.")
    types = insights_by_type(stats).groupby("insight_type")["insights"].sum()
    if not types.empty:
        types = types.sort_values(ascending=False, kind="stable")
        out.append(f"The most common insight type among them is {types.index[0]} ({types.iloc[0]} insights, "
                   f"{types.iloc[0] / types.sum():.0%}).")
    return out


def confidence_findings(dist: pd.DataFrame, versions: pd.DataFrame, drift: pd.DataFrame, tags: pd.DataFrame, *,
                        threshold: float, freq: str, insight_type: str | None = None,
                        model_version: str | None = None) -> list[str]:
    """The confidence report: the mean confidence (weighted by count), the least and most confident types, the
    largest change between consecutive model versions (Cliff's δ), the low-confidence share overall and in the
    latest period, the most used tag."""
    scope = _scope(insight_type, "insights")
    out = []
    if dist.empty:
        out.append(f"There are no {scope} yet.")
    else:
        total = int(dist["n"].sum())
        mean = float((dist["mean"] * dist["n"]).sum() / total)
        out.append(f"{total:,} {scope} have an average confidence of {mean:.2f}"
                   + (f" (model version {model_version})." if model_version else "."))
        per_type = dist.assign(w=dist["mean"] * dist["n"]).groupby("insight_type")[["w", "n"]].sum()
        per_type = (per_type["w"] / per_type["n"]).sort_values(kind="stable")
        if len(per_type) > 1:
            out.append(f"The least confident type is {per_type.index[0]} ({per_type.iloc[0]:.2f}), the most "
                       f"confident {per_type.index[-1]} ({per_type.iloc[-1]:.2f}).")
    if not versions.empty:
        biggest = versions.loc[versions["cliffs_delta"].abs().idxmax()]
        out.append(f"The largest change between consecutive model versions is in {biggest['insight_type']}: "
                   f"{biggest['version_b']} against {biggest['version_a']} moves the mean by "
                   f"{biggest['mean_diff']:+.2f} (Cliff's δ {biggest['cliffs_delta']:+.2f}, {biggest['magnitude']}, "
                   f"p = {biggest['p_value']:.2g}).")
        notable = int((versions["magnitude"] != "negligible").sum())
        out.append(f"{notable} of {len(versions)} version changes have a non-negligible effect.")
    if not drift.empty and drift["insights"].sum() > 0:
        overall = drift["low"].sum() / drift["insights"].sum()
        last = drift.iloc[-1]
        out.append(f"Over the last year {overall:.1%} of {scope} scored below {threshold}; in the latest {freq} "
                   f"(from {last['period_start']:%Y-%m-%d}) it was {last['share_low']:.1%} of {last['insights']}.")
    if not tags.empty:
        out.append(f"The most used tag is “{tags.iloc[0]['tag']}”, on {tags.iloc[0]['insights']:,} insights "
                   f"({tags.iloc[0]['share_of_insights']:.0%}).")
    return out


def search_findings(found: pd.DataFrame, *, language: str | None, search_text: str, limit: int) -> list[str]:
    """The getting-started notebook's search: how many matched and the most starred of them."""
    scope = _scope(language)
    if found.empty:
        return [f"No {language + ' ' if language else ''}repository matches “{search_text}”."]
    top = found.sort_values(["stars", "full_name"], ascending=[False, True], kind="stable").iloc[0]
    return [f"{len(found)} {scope} match “{search_text}” (showing at most {limit}).",
            f"The most starred of them is {top['full_name']} with {fmt_int(top['stars'])} stars."]
