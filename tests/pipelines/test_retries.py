"""A step outlasts its service's restart: transient failures are retried for as long as a restart
takes (`RetryPolicy.patience_seconds`), not for a count of tries that a slow start outlasts.
Timers are compressed (backoff of a tenth of a second)."""

from __future__ import annotations

import logging
import threading

import pytest

from action100m.pipelines.executor import RetryPolicy, current_config
from action100m.pipelines.registry import stage

from ..support import ServiceProcess, free_port

pytestmark = pytest.mark.slow


def test_a_step_waits_through_a_service_that_comes_up_late(tmp_path):
    port = free_port()
    segmenter = ServiceProcess(
        "segmenter",
        {"A100M_ALLOWED_ROOTS": f"file://{tmp_path}", "A100M_METRICS_PORT": "-1"},
        port,
        tmp_path / "segmenter.log",
    )
    failures = []
    policy = RetryPolicy(initial_backoff=0.05, max_backoff=0.1)
    later = threading.Timer(3.0, segmenter.start)  # down for ~30 tries, then loading (UNAVAILABLE), then up
    later.start()
    try:

        class Count(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                failures.append(record.getMessage())

        handler = Count()
        logging.getLogger("action100m.pipeline").addHandler(handler)
        try:
            config = current_config(f"127.0.0.1:{port}", stage("segment"), stage("segment").options(), {}, policy)
        finally:
            logging.getLogger("action100m.pipeline").removeHandler(handler)
        assert config.fingerprint and config.models == []
        assert len(failures) > 8, failures  # more tries than the old bound of 8 in a row
    finally:
        later.cancel()
        later.join()
        segmenter.stop()


def test_a_policy_still_gives_up_on_its_bounds():
    policy = RetryPolicy(patience_seconds=0.0)
    assert policy.gives_up(1, None)
    assert RetryPolicy(attempts=3).gives_up(3, None) and not RetryPolicy(attempts=3).gives_up(2, None)
