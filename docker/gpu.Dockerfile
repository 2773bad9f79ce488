# syntax=docker/dockerfile:1.7
# The GPU services (transcriber, embedder, captioner, refiner): one recipe, built once per service, and each
# image serves its own service by default (A100M_SERVICE). `make images` builds them all.
#   docker build -f docker/gpu.Dockerfile --build-arg SERVICE=captioner -t REGISTRY/captioner:TAG .
#   docker build -f docker/gpu.Dockerfile --build-arg SERVICE=refiner \
#     --build-arg CONSTRAINTS=docker/constraints-refiner.txt --build-arg EXTRA_PACKAGES=vllm==0.32.0 -t REGISTRY/refiner:TAG .
# CUDA comes with the torch wheels (the nvidia-* packages torch depends on) on a plain Python base:
# one copy of CUDA in the image; the host needs only the NVIDIA driver (docker/README.md).
ARG PYTHON_IMAGE=python:3.11-slim

# Stage 1: the wheel (the gRPC stubs are committed under services/action100m/v1).
FROM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md LICENSE CHANGELOG.md ./
COPY services ./services
COPY pipelines ./pipelines
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Stage 2: the service, installed with the pinned versions CI tests (CONSTRAINTS).
FROM ${PYTHON_IMAGE}
ARG SERVICE
ARG EXTRA_PACKAGES=""
ARG CONSTRAINTS=.ci/constraints-dev.txt
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HOME=/models/huggingface \
    A100M_PORT=50051 \
    A100M_SERVICE=${SERVICE}
COPY --from=wheel /wheels /wheels
COPY ${CONSTRAINTS} /tmp/constraints.txt
RUN test -n "${SERVICE}" \
 && WHEEL="$(ls /wheels/action100m-*.whl)" \
 && pip install -c /tmp/constraints.txt "${WHEEL}[${SERVICE}]" ${EXTRA_PACKAGES} \
 && rm -rf /wheels /tmp/constraints.txt \
 && groupadd --gid 10001 app && useradd --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app \
 && mkdir -p /models /home/app && chown app:app /models /home/app
ENV HOME=/home/app
USER 10001:10001
VOLUME ["/models"]
EXPOSE 50051 9090
HEALTHCHECK --interval=30s --timeout=10s --start-period=30m --retries=3 CMD ["python", "-m", "action100m.common.healthcheck"]
ENTRYPOINT ["a100m"]
# `a100m serve` with no name serves $A100M_SERVICE: this image's service.
CMD ["serve"]
