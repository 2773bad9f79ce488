#!/usr/bin/env bash
# Builds the six images with whichever engine answers: docker, podman or buildah.
#   docker/build-images.sh REGISTRY TAG [IMAGE...]     (make images REGISTRY=... TAG=...)
# IMAGE is any of transcriber embedder segmenter captioner refiner pipeline (default: all six).
set -euo pipefail
cd "$(dirname "$0")/.."
registry=${1:?usage: docker/build-images.sh REGISTRY TAG [IMAGE...]}
tag=${2:?usage: docker/build-images.sh REGISTRY TAG [IMAGE...]}
shift 2
images=("$@")
[ ${#images[@]} -gt 0 ] || images=(transcriber embedder segmenter captioner refiner pipeline)

engine=""
for candidate in docker podman buildah; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" info >/dev/null 2>&1; then
    engine=$candidate
    break
  fi
done
if [ -z "$engine" ]; then
  echo "error: no container engine answers here (docker, podman or buildah)" >&2
  exit 2
fi
build() {  # build IMAGE DOCKERFILE [--build-arg ...]
  local image=$1 file=$2
  shift 2
  if [ "$engine" = buildah ]; then
    buildah bud -f "$file" "$@" -t "$registry/$image:$tag" .
  else
    "$engine" build -f "$file" "$@" -t "$registry/$image:$tag" .
  fi
}
for image in "${images[@]}"; do
  case $image in
    transcriber|embedder|captioner) build "$image" docker/gpu.Dockerfile --build-arg "SERVICE=$image" ;;
    refiner) build refiner docker/gpu.Dockerfile --build-arg SERVICE=refiner \
               --build-arg CONSTRAINTS=docker/constraints-refiner.txt --build-arg EXTRA_PACKAGES=vllm==0.32.0 ;;
    segmenter) build segmenter docker/segmenter.Dockerfile ;;
    pipeline) build pipeline docker/pipeline.Dockerfile ;;
    *) echo "error: unknown image $image (transcriber embedder segmenter captioner refiner pipeline)" >&2; exit 2 ;;
  esac
  echo "built $registry/$image:$tag with $engine"
done
