# syntax=docker/dockerfile:1.7
# GPU services (embedder, captioner, refiner): one recipe, built three times.
#   docker build -f docker/gpu.Dockerfile --build-arg SERVICE=embedder  -t ghcr.io/action100m/embedder:0.1.0 .
#   docker build -f docker/gpu.Dockerfile --build-arg SERVICE=captioner -t ghcr.io/action100m/captioner:0.1.0 .
#   docker build -f docker/gpu.Dockerfile --build-arg SERVICE=refiner --build-arg EXTRA_PACKAGES=vllm==0.32.0 \
#     -t ghcr.io/action100m/refiner:0.1.0 .
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04

# Stage 1: the wheel (the gRPC stubs are committed under services/action100m/v1).
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md LICENSE CHANGELOG.md ./
COPY services ./services
COPY pipelines ./pipelines
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Stage 2: the service on a CUDA runtime, with the CUDA build of torch.
FROM ${CUDA_IMAGE}
ARG SERVICE
ARG EXTRA_PACKAGES=""
ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HOME=/models/huggingface \
    A100M_PORT=50051
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv ffmpeg ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3.11 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY --from=wheel /wheels /wheels
RUN WHEEL="$(ls /wheels/action100m-*.whl)" \
 && pip install "${WHEEL}[${SERVICE}]" ${EXTRA_PACKAGES} \
 && rm -rf /wheels
RUN groupadd --gid 10001 app && useradd --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app \
 && mkdir -p /models && chown app:app /models
USER 10001:10001
VOLUME ["/models"]
EXPOSE 50051 9090
HEALTHCHECK --interval=30s --timeout=10s --start-period=30m --retries=3 CMD ["python", "-m", "action100m.common.healthcheck"]
ENTRYPOINT ["a100m"]
CMD ["serve", "embedder"]
