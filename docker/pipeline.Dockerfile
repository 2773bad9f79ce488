# syntax=docker/dockerfile:1.7
# The image of the pipeline's steps (KFP components): thin gRPC clients, no models.
#   docker build -f docker/pipeline.Dockerfile -t REGISTRY/pipeline:TAG .
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md LICENSE CHANGELOG.md ./
COPY services ./services
COPY pipelines ./pipelines
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
COPY --from=wheel /wheels /wheels
COPY .ci/constraints-dev.txt /tmp/constraints.txt
RUN WHEEL="$(ls /wheels/action100m-*.whl)" \
 && pip install -c /tmp/constraints.txt "${WHEEL}[pipelines]" \
 && rm -rf /wheels /tmp/constraints.txt \
 && groupadd --gid 10001 app && useradd --uid 10001 --gid app --create-home --shell /usr/sbin/nologin app
USER 10001:10001
WORKDIR /home/app
