"""The KFP v2 pipeline (import name `action100m.pipelines`): plan shards -> ParallelFor over shards
(embed -> segment -> caption -> refine -> export) -> collect a run report.

Components are thin gRPC clients of the four services (steps.py holds their logic, components.py
wraps it for KFP); dag.py wires the DAG; local.py is the one-machine run (`a100m run`).
"""
