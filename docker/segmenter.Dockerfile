# syntax=docker/dockerfile:1.7
# The segmenter: CPU only (Ward clustering of an hour of video takes seconds).
#   docker build -f docker/segmenter.Dockerfile -t REGISTRY/segmenter:TAG .
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml README.md LICENSE CHANGELOG.md ./
COPY services ./services
COPY pipelines ./pipelines
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 A100M_PORT=50051
COPY --from=wheel /wheels /wheels
COPY .ci/constraints-dev.txt /tmp/constraints.txt
RUN WHEEL="$(ls /wheels/action100m-*.whl)" \
 && pip install -c /tmp/constraints.txt "${WHEEL}[segmenter]" \
 && rm -rf /wheels /tmp/constraints.txt \
 && groupadd --gid 10001 app && useradd --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app
USER 10001:10001
EXPOSE 50051 9090
HEALTHCHECK --interval=30s --timeout=10s --start-period=1m --retries=3 CMD ["python", "-m", "action100m.common.healthcheck"]
ENTRYPOINT ["a100m"]
CMD ["serve", "segmenter"]
