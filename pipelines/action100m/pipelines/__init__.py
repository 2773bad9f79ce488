"""The KFP v2 pipeline (import name `action100m.pipelines`): plan shards -> ParallelFor over shards
(embed -> segment -> caption -> refine -> export) -> collect a run report.

Components are thin gRPC clients of the four services (steps.py holds their logic, components.py
wraps it for KFP); dag.py wires the DAG; run.py is the one-machine run (`a100m run`).
"""

# The steps' default image (docker/pipeline.Dockerfile), the package's own version; `a100m pipeline
# compile --image` / `submit --image` set another.
PIPELINE_IMAGE = "ghcr.io/action100m/pipeline:0.2.0"
