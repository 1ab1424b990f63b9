"""What the compare report says about a :func:`~.compare.compare_repositories` frame: weekly gains, each
repository's latest state, and the key findings as sentences (tested here, not computed in the notebook)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

__all__ = ["weekly_gains", "latest_by_repository", "compare_findings", "RECENT_DAYS"]

#: "Grows fastest now": the mean daily gain over the last this-many days of each series (see compare_findings).
RECENT_DAYS = 7


def weekly_gains(frame: pd.DataFrame) -> pd.DataFrame:
    """Gains per ISO week (Monday start) of each repository: the value at its last snapshot of the week minus
    the value at its last snapshot of the week before (weeks without a snapshot in both are left out)."""
    columns = ["full_name", "week", "value", "gain"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    data = frame[["full_name", "snapshot_date", "value"]].copy()
    data["week"] = [d - dt.timedelta(days=d.weekday()) for d in data["snapshot_date"]]
    last = data.sort_values("snapshot_date").groupby(["full_name", "week"], sort=False).tail(1)
    last = last.sort_values(["full_name", "week"]).reset_index(drop=True)
    previous_week = last.groupby("full_name")["week"].shift()
    consecutive = [p is not None and not pd.isna(p) and (w - p).days == 7
                   for w, p in zip(last["week"], previous_week, strict=True)]
    last["gain"] = np.where(consecutive, last["value"] - last.groupby("full_name")["value"].shift(), np.nan)
    order = {name: k for k, name in enumerate(dict.fromkeys(frame["full_name"]))}
    out = last[pd.notna(last["gain"])][columns].copy()
    out["gain"] = out["gain"].astype("int64")
    return out.sort_values(["full_name", "week"], key=lambda s: s.map(order) if s.name == "full_name" else s
                           ).reset_index(drop=True)


def latest_by_repository(frame: pd.DataFrame) -> pd.DataFrame:
    """Each repository's last row in ``frame``, plus ``recent_gain_per_day``: the mean daily gain over its last
    :data:`RECENT_DAYS` days (value now minus its value at the newest snapshot at least that old, over the days
    between; NaN with no such snapshot)."""
    rows = []
    for name, group in frame.groupby("full_name", sort=False):
        group = group.sort_values("snapshot_date")
        last = group.iloc[-1]
        older = group[group["snapshot_date"] <= last["snapshot_date"] - dt.timedelta(days=RECENT_DAYS)]
        rate = np.nan
        if not older.empty:
            base = older.iloc[-1]
            rate = (last["value"] - base["value"]) / (last["snapshot_date"] - base["snapshot_date"]).days
        rows.append({**last.to_dict(), "full_name": name, "recent_gain_per_day": rate})
    return pd.DataFrame(rows)


def _overtakes(frame: pd.DataFrame) -> list[tuple[dt.date, dt.date, str, str]]:
    """(day, last day behind, overtaker, overtaken): one repository's value was below another's on a common
    snapshot day (``last day behind``) and, after equal days if any, above it on ``day``."""
    wide = frame.pivot_table(index="snapshot_date", columns="full_name", values="value", aggfunc="last")
    found = []
    names = list(wide.columns)
    for a in names:
        for b in names:
            if a == b:
                continue
            both = wide[[a, b]].dropna()
            behind_since = None
            for day, va, vb in zip(both.index, both[a], both[b], strict=True):
                if va < vb:
                    behind_since = day
                elif va > vb:
                    if behind_since is not None:
                        found.append((day, behind_since, a, b))
                    behind_since = None
    return sorted(found)


def compare_findings(frame: pd.DataFrame) -> list[str]:
    """The compare report's key findings as sentences: who leads, who grows fastest now (mean daily gain over
    the last :data:`RECENT_DAYS` days), who overtook whom and when (the latest overtakes first, at most five),
    and the best rank in language. Empty frame: one sentence saying there is no history."""
    metric = frame.attrs.get("metric", "stars")
    if frame.empty:
        return [f"None of these repositories has {metric} history in the chosen dates: import the snapshots "
                "with `gitinsight import github-ranking`."]
    latest = latest_by_repository(frame).sort_values("value", ascending=False)
    sentences = []
    lead = latest.iloc[0]
    sentences.append(f"{lead['full_name']} leads with {int(lead['value']):,} {metric} on {lead['snapshot_date']}"
                     + (f", ahead of {latest.iloc[1]['full_name']} ({int(latest.iloc[1]['value']):,})."
                        if len(latest) > 1 else "."))
    rates = latest.dropna(subset=["recent_gain_per_day"]).sort_values("recent_gain_per_day", ascending=False)
    if not rates.empty:
        top = rates.iloc[0]
        sentence = (f"{top['full_name']} grows fastest now: {top['recent_gain_per_day']:+,.1f} {metric} a day over "
                    f"its last {RECENT_DAYS} days")
        if len(rates) > 1:
            second = rates.iloc[1]
            sentence += f", against {second['recent_gain_per_day']:+,.1f} for {second['full_name']}"
        sentences.append(sentence + ".")
    missing = sorted(set(latest["full_name"]) - set(rates["full_name"]))
    if missing:
        sentences.append(f"No {RECENT_DAYS}-day history to measure recent growth for {', '.join(missing)}.")
    overtakes = _overtakes(frame)
    for day, before, a, b in sorted(overtakes, reverse=True)[:5]:
        when = f"on {day}" if (day - before).days == 1 else f"between {before} and {day}"
        sentences.append(f"{a} overtook {b} {when}.")
    if not overtakes and len(latest) > 1:
        sentences.append(f"No repository overtook another in {metric} in these dates.")
    ranked = latest.dropna(subset=["rank_in_language"])
    if not ranked.empty:
        best = ranked.sort_values("rank_in_language").iloc[0]
        sentences.append(f"Best rank in its language on its last day: {best['full_name']}, "
                         f"#{int(best['rank_in_language'])} of {best['language']} repositories by stars.")
    renamed = frame[frame["name_that_day"].str.lower() != frame["full_name"].str.lower()]
    for name, group in renamed.groupby("full_name", sort=False):
        old = ", ".join(dict.fromkeys(group["name_that_day"]))
        sentences.append(f"{name} was called {old} earlier in this history (renamed or transferred).")
    return sentences
