"""What `a100m run` prints when it finishes: the refiner's unanswered rounds are counted there."""

from __future__ import annotations

from action100m.pipelines.local.run import summary
from action100m.pipelines.state import RunReport, StageStats


def report_with(**refine_counters: int) -> RunReport:
    report = RunReport("run", videos=1, done=["vid"])
    report.stats["refine"] = StageStats(done=1, seconds=2.0, counters=dict(refine_counters))
    return report


def test_rounds_without_a_final_answer_are_in_the_summary():
    text = summary(report_with(nodes_eligible=12, nodes_failed=1, rounds_without_answer=4), "file:///out")
    assert "of 12 eligible (1 failed in every round: see report.json); 4 round(s) ended without a final answer" in text


def test_a_clean_run_says_nothing_of_failures():
    text = summary(report_with(nodes_eligible=12, nodes_failed=0, rounds_without_answer=0), "file:///out")
    assert "eligible" not in text and "final answer" not in text
