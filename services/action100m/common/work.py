"""Units of work inside a stage call (windows embedded or transcribed, captions written, segments
annotated), counted as they are known and as they finish, so that progress moves inside a stage
that runs for minutes on one video.

The counters live on the process's default Prometheus registry, which every service's /metrics
serves (`metrics.ServiceMetrics`): `a100m_work_planned_total{unit}` and `a100m_work_done_total{unit}`.
"Planned" grows as the work becomes known (a video's windows as it is decoded, its segments when
its tree is read), so done/planned is the share of the work known so far.
"""

from __future__ import annotations

from prometheus_client import Counter

PLANNED = Counter("a100m_work_planned", "units of work known so far, by unit (windows, captions, segments)", ["unit"])
DONE = Counter("a100m_work_done", "units of work finished (failed ones too), by unit", ["unit"])


def planned(unit: str, count: int = 1) -> None:
    if count:
        PLANNED.labels(unit).inc(count)


def done(unit: str, count: int = 1) -> None:
    if count:
        DONE.labels(unit).inc(count)
