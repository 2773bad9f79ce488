"""The KFP v2 pipeline (import name `action100m.pipelines`): plan shards -> ParallelFor over shards
(the registry's stages in order -> export) -> publish the dataset.

- `registry/`: every stage and what its service needs (one module per stage);
- `executor`: runs stages on a shard through their services (the only way stages run);
- `plan`, `state`, `keys`, `export`, `card`: the plan, a shard's state, artifact keys, the dataset;
- `components` (the KFP steps, thin wrappers of the above) and `dag` (the pipeline);
- `memory/`: what models take on a GPU, and the plan that places the services (`a100m plan`);
- `local/`: the one-machine run (`a100m run`).
"""

from action100m.common.version import __version__

# The steps' default image (docker/pipeline.Dockerfile), tagged with the package's own version as
# `make images` tags it; `a100m pipeline compile --image` / `submit --image` set another.
PIPELINE_IMAGE = f"ghcr.io/action100m/pipeline:{__version__}"
# Secret with the S3 credentials, mounted as env vars in every step (Kubernetes runs only).
S3_SECRET = "action100m-s3"
