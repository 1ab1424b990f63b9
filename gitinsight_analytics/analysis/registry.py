"""The insight types the engine knows, their model versions, and the job handler that turns one repository's
predictions into insight rows.

A handler is ``handler(context, job) -> JobResult``: it computes, it does not write; the worker writes the rows
and completes the job in one transaction (see :mod:`.worker`). Predictions are computed for all repositories of
an as-of day at once (one model fit per model version and as-of day) and cached in the worker process together
with each repository's insight row, already serialized as JSON: a job costs a dictionary lookup.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ..exceptions import ValidationError
from .features import HISTORY_DAYS, History, load_history
from .models_base import Model, NotFittable
from .models_retention import RETENTION_TYPE, retention_models, retention_text
from .models_trend import TREND_TYPE, trend_models, trend_text

__all__ = ["Job", "JobResult", "RawJSON", "Predictions", "Context", "Handler", "INSIGHT_TYPES", "DEFAULT_HORIZON_DAYS",
           "models_of", "analysis_key", "job_options", "insight_rows", "run_insight_job", "default_handlers"]

DEFAULT_HORIZON_DAYS = 7
#: Features every insight keeps in ``data.features`` (the event's definition), besides those its version used.
KEPT_FEATURES = ("stars_at_as_of", "stars_gained_7d", "threshold_stars")
#: Features the titles and descriptions quote.
_DESCRIBED = ("stars_at_as_of", "stars_gained_7d", "threshold_stars", "log_best_rank", "n_lists")
#: Prewarmed as-of days within this many days of each other share one read of the star history.
PREWARM_SPAN_DAYS = 60
MAX_HORIZON_DAYS = 90

_TEXT = {TREND_TYPE: trend_text, RETENTION_TYPE: retention_text}
_MODELS: dict[str, Callable[[], list[Model]]] = {TREND_TYPE: trend_models, RETENTION_TYPE: retention_models}
INSIGHT_TYPES = tuple(_MODELS)


@dataclass(frozen=True)
class Job:
    """A claimed job as the worker hands it to a handler."""

    id: str
    repository_id: str
    type: str
    options: dict[str, Any]
    attempts: int
    max_attempts: int


class RawJSON(str):
    """An insight row already serialized as a JSON object (written as it is, not encoded again)."""

    __slots__ = ()


@dataclass
class JobResult:
    """Insight rows to write (dicts of the insights columns, or :class:`RawJSON` objects of them) and a summary
    stored in ``options['result']``."""

    insights: list[dict[str, Any] | RawJSON] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Predictions:
    """One model's predictions at one as-of day: the insight row of each repository id, as JSON."""

    rows: dict[str, RawJSON]
    model: dict[str, float] | None


class Context:
    """Per worker process: the engine and caches of histories and predictions (a few as-of days each)."""

    def __init__(self, engine: Engine, *, cache_days: int = 4) -> None:
        self.engine = engine
        self.cache_days = cache_days
        self._histories: OrderedDict[dt.date, History] = OrderedDict()
        self._predictions: OrderedDict[tuple[str, str, dt.date, int], Predictions | str] = OrderedDict()

    def history(self, as_of: dt.date) -> History:
        if as_of not in self._histories:
            self._histories[as_of] = load_history(self.engine, as_of)
            while len(self._histories) > self.cache_days:
                self._histories.popitem(last=False)
        self._histories.move_to_end(as_of)
        return self._histories[as_of]

    def predictions(self, model: Model, as_of: dt.date, horizon_days: int) -> Predictions | str:
        """Predictions of every repository, or why the model cannot predict at as_of."""
        key = (model.insight_type, model.version, as_of, horizon_days)
        if key not in self._predictions:
            try:
                frame = model.predict(self.history(as_of), as_of, horizon_days)
                self._predictions[key] = Predictions(insight_rows(frame, model, as_of, horizon_days),
                                                     frame.attrs.get("model"))
            except NotFittable as exc:
                self._predictions[key] = str(exc)
            while len(self._predictions) > self.cache_days * 8:
                self._predictions.popitem(last=False)
        return self._predictions[key]

    def prewarm(self, types: list[str], *, limit: int = 64) -> int:
        """Compute the predictions the queued jobs of ``types`` need (the oldest ``limit`` (type, as-of, horizon)
        groups), so that worker processes forked afterwards start with them instead of each computing them again.

        The as-of days share one read of the star history (cut into each day's window, nothing after it). Returns
        the number of groups."""
        known = [t for t in types if t in _MODELS]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text("""
                SELECT type, options->>'as_of' AS as_of, COALESCE((options->>'horizon_days')::int, 7) AS horizon
                FROM analysis_jobs WHERE status = 'queued' AND type = ANY(:types) AND options ? 'as_of'
                GROUP BY 1, 2, 3 ORDER BY MIN(created_at) LIMIT :n"""), {"types": known, "n": limit}).all()
        if not rows:
            return 0
        days = sorted({dt.date.fromisoformat(as_of) for _, as_of, _ in rows})
        self.cache_days = max(self.cache_days, len(days))
        longer = None
        for day in days:
            if longer is None or (day - longer.as_of).days > 0:  # one read per span of up to PREWARM_SPAN_DAYS
                last = max(d for d in days if (d - day).days <= PREWARM_SPAN_DAYS)
                longer = load_history(self.engine, last, history_days=HISTORY_DAYS + (last - day).days)
            self._histories[day] = longer.window(day)
            for insight_type, as_of, horizon in rows:
                if dt.date.fromisoformat(as_of) == day:
                    for model in models_of(insight_type):
                        self.predictions(model, day, int(horizon))
            del self._histories[day]  # the predictions are kept; the matrices are not needed any more
        return len(rows)


Handler = Callable[[Context, Job], JobResult]


def models_of(insight_type: str) -> list[Model]:
    if insight_type not in _MODELS:
        raise ValidationError("type", f"unknown insight type {insight_type!r}", ", ".join(INSIGHT_TYPES))
    return _MODELS[insight_type]()


def analysis_key(insight_type: str, version: str, as_of: dt.date, horizon_days: int) -> str:
    """The idempotency key of an insight: one per (repository, type, model version, as-of, horizon)."""
    return f"{insight_type}:{version}:{as_of.isoformat()}:h{horizon_days}"


def job_options(insight_type: str, *, as_of: dt.date, horizon_days: int = DEFAULT_HORIZON_DAYS,
                model_versions: list[str] | None = None) -> dict[str, Any]:
    """Validated job options (what ``analysis_jobs.options`` holds)."""
    known = [m.version for m in models_of(insight_type)]
    versions = list(model_versions or known)
    for version in versions:
        if version not in known:
            raise ValidationError("model_version", f"{version!r} is not a version of {insight_type}",
                                  ", ".join(known))
    if not 1 <= horizon_days <= MAX_HORIZON_DAYS:
        raise ValidationError("horizon_days", f"{horizon_days} is out of range", f"1..{MAX_HORIZON_DAYS}")
    return {"as_of": as_of.isoformat(), "horizon_days": horizon_days, "model_versions": versions}


def insight_rows(frame: pd.DataFrame, model: Model, as_of: dt.date, horizon_days: int) -> dict[str, RawJSON]:
    """The insight row of every repository of a prediction frame (features + ``probability``), as JSON text.

    Built once per model version and as-of day. What every row shares (keys, model, as-of) is encoded once; a row
    fills a template with its numbers (``repr`` of a finite float is its JSON form), so a row costs microseconds.
    """
    features = list(dict.fromkeys((*KEPT_FEATURES, *model.features)))  # what the version used, and the event's
    fit = frame.attrs.get("model")
    model_json = json.dumps({"version": model.version, "description": model.description,
                             **({"coefficients": fit} if fit else {})})
    text = _TEXT[model.insight_type]
    shared = (f'"type": {json.dumps(model.insight_type)}, "model_version": {json.dumps(model.version)}, '
              f'"analysis_key": {json.dumps(analysis_key(model.insight_type, model.version, as_of, horizon_days))}')
    data_head = f'"as_of": "{as_of.isoformat()}", "horizon_days": {int(horizon_days)}'
    template = "{" + ", ".join(f"{json.dumps(name)}: %r" for name in features) + "}"
    matrix = frame[features].to_numpy(dtype=float).round(6)
    finite = np.isfinite(matrix).all(axis=1)
    probabilities = frame["probability"].to_numpy(dtype=float).round(6).tolist()
    rows: dict[str, RawJSON] = {}
    described = frame[list(_DESCRIBED)].to_numpy(dtype=float).tolist()
    for repository_id, full_name, p, values, ok, words in zip(frame.index.tolist(), frame["full_name"].tolist(),
                                                             probabilities, matrix.tolist(), finite.tolist(),
                                                             described, strict=True):
        named = dict(zip(features, values, strict=True))
        title, description, tags = text(str(full_name), {**dict(zip(_DESCRIBED, words, strict=True)),
                                                         "probability": p}, as_of, horizon_days, model.version)
        encoded = template % tuple(values) if ok else json.dumps(  # JSON has no NaN: null instead
            {k: v if np.isfinite(v) else None for k, v in named.items()})
        rows[str(repository_id)] = RawJSON(
            f'{{"repository_id": "{repository_id}", {shared}, "title": {json.dumps(title)}, '
            f'"description": {json.dumps(description)}, "confidence_score": {round(p, 2)!r}, '
            f'"tags": {json.dumps(tags)}, "data": {{{data_head}, '
            f'"threshold_stars": {int(named["threshold_stars"])}, "stars_at_as_of": {int(named["stars_at_as_of"])}, '
            f'"probability": {p!r}, "features": {encoded}, "model": {model_json}}}}}')
    return rows


def run_insight_job(context: Context, job: Job) -> JobResult:
    """One repository, every requested version: an insight per version that can predict it."""
    as_of = dt.date.fromisoformat(job.options["as_of"])
    horizon = int(job.options.get("horizon_days", DEFAULT_HORIZON_DAYS))
    wanted = job.options.get("model_versions")
    result = JobResult(result={"insights": 0, "skipped": {}})
    for model in models_of(job.type):
        if wanted and model.version not in wanted:
            continue
        frame = context.predictions(model, as_of, horizon)
        if isinstance(frame, str):
            result.result["skipped"][model.version] = frame
        elif job.repository_id not in frame.rows:
            result.result["skipped"][model.version] = "no snapshot on as_of and 7 days before"
        else:
            result.insights.append(frame.rows[job.repository_id])
    result.result["insights"] = len(result.insights)
    return result


def default_handlers() -> dict[str, Handler]:
    return {insight_type: run_insight_job for insight_type in INSIGHT_TYPES}
