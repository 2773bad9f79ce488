"""The Helm chart, rendered by the real Helm engine (helm-python-sdk) and checked against the
Kubernetes schemas (kubernetes-validate) for Kubernetes 1.30 and later."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ..conftest import with_hf_token

CHART = Path(__file__).resolve().parents[2] / "helm" / "action100m"
KUBE_VERSIONS = ("1.30.0", "1.33.0")
CRD_KINDS = {"ServiceMonitor", "ScaledObject"}  # not in the core schemas; checked by their own tests
SERVICES = ("transcriber", "embedder", "segmenter", "captioner", "refiner")

VALUE_SETS = {
    "defaults": {},
    "scaled": {"captioner": {"replicas": 8}, "embedder": {"replicas": 3}},
    "autoscaled": {
        "captioner": {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 12}},
        "segmenter": {"autoscaling": {"enabled": True, "maxReplicas": 3}},
    },
    "keda-and-monitoring": {
        "refiner": {"keda": {"enabled": True, "maxReplicas": 5}},
        "serviceMonitor": {"enabled": True, "labels": {"release": "prom"}},
    },
    "minio-private-ca-token": {
        "minio": {"enabled": True},
        "storage": {"caBundleSecret": "corp-ca"},
        "huggingFace": {"tokenSecret": "hf", "offline": True},
        "modelCache": {"existingClaim": "weights", "accessModes": ["ReadWriteMany"]},
    },
    "shared-model-cache": {"modelCache": {"accessModes": ["ReadWriteMany"], "storageClass": "nfs"}},
    "cpu-only-refiner": {
        "refiner": {
            "gpus": 0,
            "env": {"A100M_REFINER_BACKEND": "openai", "A100M_REFINER_OPENAI_URL": "http://vllm:8000/v1"},
        },
        "networkPolicy": {"enabled": False},
    },
}


def render(chart, values: dict) -> list[dict]:
    manifests = chart.render(values, name="demo", namespace="ml")
    documents = []
    for path, text in manifests.items():
        if path.endswith("NOTES.txt"):
            continue
        documents += [d for d in yaml.safe_load_all(text) if d]
    return documents


def by_kind(documents: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def workloads(documents: list[dict]) -> dict[str, dict]:
    """The Deployments and StatefulSets (services that keep a model cache per replica), by name."""
    return by_kind(documents, "Deployment") | by_kind(documents, "StatefulSet")


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_value_sets_render_lint_clean_and_validate_for_kubernetes(chart, name):
    import kubernetes_validate
    from helm_python.chart import lint

    values = VALUE_SETS[name]
    report = lint(CHART, with_hf_token(values), strict=True, kube_version="v1.30.0")
    assert report["errors"] == [] and report["messages"] == [], report
    documents = render(chart, values)
    assert documents
    for document in documents:
        if document["kind"] in CRD_KINDS:
            assert document["apiVersion"] in ("monitoring.coreos.com/v1", "keda.sh/v1alpha1")
            continue
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(document, version, strict=True)


def test_gpu_limits_only_where_asked(chart):
    deployments = workloads(render(chart, {}))
    for service in SERVICES:
        container = deployments[f"demo-action100m-{service}"]["spec"]["template"]["spec"]["containers"][0]
        limits = container["resources"]["limits"]
        if service == "segmenter":
            assert "nvidia.com/gpu" not in limits and "nvidia.com/gpu" not in container["resources"]["requests"]
        else:
            assert limits["nvidia.com/gpu"] == 1
    cpu_refiner = workloads(render(chart, VALUE_SETS["cpu-only-refiner"]))["demo-action100m-refiner"]
    assert "nvidia.com/gpu" not in cpu_refiner["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]


def test_probes_use_grpc_health_with_a_startup_budget_for_big_models(chart):
    for name, deployment in workloads(render(chart, {})).items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == 50051, (name, probe)
        assert container["livenessProbe"]["grpc"]["service"] == "liveness"
        budget = container["startupProbe"]["periodSeconds"] * container["startupProbe"]["failureThreshold"]
        assert budget >= (1800 if "segmenter" not in name else 60), (name, budget)


def test_security_context_is_non_root_and_read_only(chart):
    for deployment in workloads(render(chart, VALUE_SETS["minio-private-ca-token"])).values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
        for container in pod["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_no_credential_literal_anywhere_only_secret_references(chart):
    for name, values in VALUE_SETS.items():
        text = "\n".join(chart.render(values, name="demo", namespace="ml").values())
        assert not re.search(r"(?i)(AWS_SECRET_ACCESS_KEY|MINIO_ROOT_PASSWORD|HF_TOKEN)\s*[:=]\s*['\"]?\w", text), name
        for document in render(chart, values):
            for container in document.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                for env in container.get("env", []):
                    if env["name"] in (
                        "AWS_ACCESS_KEY_ID",
                        "AWS_SECRET_ACCESS_KEY",
                        "HF_TOKEN",
                        "MINIO_ROOT_USER",
                        "MINIO_ROOT_PASSWORD",
                    ):
                        assert "value" not in env and "secretKeyRef" in env["valueFrom"], (name, env)
        assert "kind: Secret\n" not in text


def test_scaling_is_one_value_and_hpa_bounds_follow_values(chart):
    deployments = workloads(render(chart, VALUE_SETS["scaled"]))
    assert deployments["demo-action100m-captioner"]["spec"]["replicas"] == 8
    assert deployments["demo-action100m-segmenter"]["spec"]["replicas"] == 1
    documents = render(chart, VALUE_SETS["autoscaled"])
    hpas = by_kind(documents, "HorizontalPodAutoscaler")
    assert set(hpas) == {"demo-action100m-captioner", "demo-action100m-segmenter"}
    captioner = hpas["demo-action100m-captioner"]["spec"]
    assert (captioner["minReplicas"], captioner["maxReplicas"]) == (2, 12)
    assert captioner["metrics"][0]["pods"]["metric"]["name"] == "a100m_grpc_in_flight"
    assert hpas["demo-action100m-segmenter"]["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert "replicas" not in workloads(documents)["demo-action100m-captioner"]["spec"]


def test_each_service_has_a_headless_and_a_regular_service_pdb_and_network_policy(chart):
    documents = render(chart, {})
    services = by_kind(documents, "Service")
    policies = by_kind(documents, "NetworkPolicy")
    for service in SERVICES:
        assert services[f"demo-action100m-{service}-headless"]["spec"]["clusterIP"] == "None"
        assert services[f"demo-action100m-{service}"]["spec"]["type"] == "ClusterIP"
        assert f"demo-action100m-{service}" in by_kind(documents, "PodDisruptionBudget")
        grpc_rule = policies[f"demo-action100m-{service}"]["spec"]["ingress"][0]
        assert grpc_rule["from"][0]["podSelector"]["matchLabels"] == {"pipelines.kubeflow.org/v2_component": "true"}
    sizes = {
        name: d["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
        for name, d in by_kind(documents, "StatefulSet").items()
    }
    assert sizes == {
        "demo-action100m-transcriber": "20Gi",
        "demo-action100m-embedder": "50Gi",
        "demo-action100m-captioner": "150Gi",
        "demo-action100m-refiner": "300Gi",
    }
    assert not by_kind(documents, "HorizontalPodAutoscaler") and "demo-action100m-minio" not in by_kind(
        documents, "Deployment"
    )


def test_optional_pieces_appear_when_enabled(chart):
    documents = render(chart, VALUE_SETS["keda-and-monitoring"])
    assert set(by_kind(documents, "ScaledObject")) == {"demo-action100m-refiner"}
    (scaled,) = by_kind(documents, "ScaledObject").values()
    assert scaled["spec"]["scaleTargetRef"]["kind"] == "StatefulSet"  # the refiner keeps a cache per replica
    assert "replicas" not in workloads(documents)["demo-action100m-refiner"]["spec"]
    monitors = by_kind(documents, "ServiceMonitor")
    assert len(monitors) == len(SERVICES) and all(
        m["metadata"]["labels"]["release"] == "prom" for m in monitors.values()
    )
    minio = render(chart, VALUE_SETS["minio-private-ca-token"])
    assert "demo-action100m-minio" in workloads(minio)
    assert not by_kind(minio, "PersistentVolumeClaim").get("demo-action100m-model-cache")  # existing claim used


@pytest.mark.parametrize(
    "values,problem",
    [
        ({"captioner": {"replicas": "8"}}, "got string, want integer"),
        ({"unknownKey": True}, "additional properties 'unknownKey' not allowed"),
        ({"captioner": {"replicaz": 2}}, "additional properties 'replicaz' not allowed"),
        ({"storage": {"allowedRoots": ["http://x"]}}, "does not match pattern"),
    ],
)
def test_the_schema_rejects_wrong_types_and_unknown_keys(chart, values, problem):
    from helm_python.errors import HelmValuesError

    with pytest.raises(HelmValuesError, match=problem):
        chart.validate_schema(values)


def test_every_value_is_documented_inline():
    lines = (CHART / "values.yaml").read_text().splitlines()
    top_level = [i for i, line in enumerate(lines) if re.match(r"^[A-Za-z]\w*:", line)]
    for index in top_level:
        assert lines[index - 1].startswith("#"), f"values.yaml: {lines[index]} has no comment above it"


def test_notes_tell_how_to_launch_a_run(chart):
    notes = chart.render({}, name="demo", namespace="ml")["action100m/templates/NOTES.txt"]
    assert "a100m pipeline submit" in notes
    assert "dns:///demo-action100m-captioner-headless.ml.svc:50051" in notes
    assert "captioner.replicas=8" in notes


def test_videos_are_a_read_only_root_of_every_service(chart):
    """Services read videos from `storage.readOnlyRoots` and never write there (A100M_READ_ONLY_ROOTS)."""
    values = {"storage": {"allowedRoots": ["s3://data"], "readOnlyRoots": ["s3://data/videos", "s3://archive"]}}
    maps = [d for d in render(chart, values) if d["kind"] == "ConfigMap" and "A100M_PORT" in d.get("data", {})]
    assert len(maps) == len(SERVICES)
    for config in maps:
        assert config["data"]["A100M_ALLOWED_ROOTS"] == "s3://data"
        assert config["data"]["A100M_READ_ONLY_ROOTS"] == "s3://data/videos,s3://archive"


def test_a_workload_identity_replaces_the_static_keys(chart):
    values = {
        "storage": {"existingSecret": ""},
        "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/a100m"}},
    }
    documents = render(chart, values)
    (account,) = by_kind(documents, "ServiceAccount").values()
    assert account["metadata"]["annotations"] == values["serviceAccount"]["annotations"]
    for deployment in workloads(documents).values():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == account["metadata"]["name"]
        names = {e["name"] for e in pod["containers"][0]["env"]}
        assert not names & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


def pods_mounting_each_claim(documents: list[dict]) -> dict[str, list[tuple[str, int]]]:
    """Claim name -> (workload, how many of its pods may run at once) for every workload mounting it.
    A StatefulSet's volumeClaimTemplates make one claim per replica: never shared."""
    claims: dict[str, list[tuple[str, int]]] = {}
    for document in documents:
        if document["kind"] not in ("Deployment", "StatefulSet", "Job"):
            continue
        spec = document["spec"]
        scaled = document["kind"] != "Job" and (
            "replicas" not in spec  # an autoscaler or KEDA owns the count
            or spec["replicas"] > 1
            or spec.get("strategy", {}).get("rollingUpdate", {}).get("maxSurge", 1) != 0
        )
        for volume in spec["template"]["spec"]["volumes"]:
            if "persistentVolumeClaim" in volume:
                name = volume["persistentVolumeClaim"]["claimName"]
                claims.setdefault(name, []).append((document["metadata"]["name"], 2 if scaled else 1))
    return claims


@pytest.mark.parametrize("name", ["defaults", "scaled", "autoscaled", "keda-and-monitoring", "shared-model-cache"])
def test_no_read_write_once_claim_can_be_wanted_by_two_pods_at_once(chart, name):
    """A ReadWriteOnce volume attaches to one node: two pods on two nodes mounting it fail with
    Multi-Attach errors. The hook Job runs before the services start, so it is not 'at once'."""
    documents = render(chart, VALUE_SETS[name])
    modes = {c: d["spec"]["accessModes"] for c, d in by_kind(documents, "PersistentVolumeClaim").items()}
    for claim, users in pods_mounting_each_claim(documents).items():
        concurrent = sum(pods for workload, pods in users if not workload.endswith("-model-fetch"))
        assert concurrent <= 1 or "ReadWriteMany" in modes[claim], (claim, users)
    for stateful in by_kind(documents, "StatefulSet").values():
        (template,) = stateful["spec"]["volumeClaimTemplates"]
        assert template["spec"]["accessModes"] == ["ReadWriteOnce"]
        assert stateful["spec"]["serviceName"] == stateful["metadata"]["name"] + "-headless"


def test_each_replica_fetches_its_own_models_into_its_own_claim_then_loads_offline(chart):
    documents = render(chart, {"huggingFace": {"tokenSecret": "hf"}, **VALUE_SETS["scaled"]})
    assert not by_kind(documents, "Job") and not by_kind(documents, "PersistentVolumeClaim")  # nothing shared
    fetched = {}
    for service in SERVICES:
        workload = workloads(documents)[f"demo-action100m-{service}"]
        pod = workload["spec"]["template"]["spec"]
        if service == "segmenter":  # loads no weights: a Deployment with an emptyDir
            assert workload["kind"] == "Deployment" and "initContainers" not in pod
            assert {"name": "models", "emptyDir": {}} in pod["volumes"]
            continue
        assert workload["kind"] == "StatefulSet"
        (claim,) = workload["spec"]["volumeClaimTemplates"]
        assert claim["metadata"]["name"] == "models" and "models" not in [v["name"] for v in pod["volumes"]]
        (init,) = pod["initContainers"]
        assert init["args"][:3] == ["models", "fetch", "/models/huggingface"]
        assert init["image"] == pod["containers"][0]["image"]
        assert {"name": "models", "mountPath": "/models"} in init["volumeMounts"]
        assert {e["name"] for e in init["env"]} == {"HOME", "HF_TOKEN"}
        assert init["securityContext"]["readOnlyRootFilesystem"] is True
        fetched[service] = [init["args"][i + 1] for i, arg in enumerate(init["args"]) if arg == "--model"]
    assert fetched == {
        "transcriber": ["openai/whisper-large-v3"],
        "embedder": ["facebook/vjepa2-vitg-fpc64-384"],
        "captioner": ["facebook/Perception-LM-3B", "meta-llama/Llama-3.2-11B-Vision-Instruct"],
        "refiner": ["openai/gpt-oss-120b"],
    }
    for config in (d for d in documents if d["kind"] == "ConfigMap" and "HF_HUB_OFFLINE" in d["data"]):
        assert config["data"]["HF_HUB_OFFLINE"] == "1"
    # without fetching first: no init containers, and each service downloads as it loads
    plain = render(chart, {"modelFetch": {"enabled": False}})
    assert not any("initContainers" in d["spec"]["template"]["spec"] for d in workloads(plain).values())
    assert all(
        d["data"]["HF_HUB_OFFLINE"] == "0" for d in plain if d["kind"] == "ConfigMap" and "HF_HUB_OFFLINE" in d["data"]
    )
    served = render(chart, VALUE_SETS["cpu-only-refiner"])  # the openai backend downloads no weights
    refiner = workloads(served)["demo-action100m-refiner"]
    assert refiner["kind"] == "Deployment" and "initContainers" not in refiner["spec"]["template"]["spec"]


def test_a_hook_job_fills_a_shared_read_write_many_cache_before_the_services(chart):
    documents = render(chart, {"huggingFace": {"tokenSecret": "hf"}, **VALUE_SETS["shared-model-cache"]})
    (job,) = by_kind(documents, "Job").values()
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    (pvc,) = by_kind(documents, "PersistentVolumeClaim").values()
    assert pvc["metadata"]["name"] == "demo-action100m-model-cache"
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"] and pvc["spec"]["storageClassName"] == "nfs"
    assert int(pvc["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(annotations["helm.sh/hook-weight"])
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    assert args[:3] == ["models", "fetch", "/models/huggingface"]
    assert [args[i + 1] for i, arg in enumerate(args) if arg == "--model"] == [
        "openai/whisper-large-v3",
        "facebook/vjepa2-vitg-fpc64-384",
        "facebook/Perception-LM-3B",
        "meta-llama/Llama-3.2-11B-Vision-Instruct",
        "openai/gpt-oss-120b",
    ]
    assert pod["volumes"][0]["persistentVolumeClaim"]["claimName"] == "demo-action100m-model-cache"
    assert {e["name"] for e in container["env"]} == {"HOME", "HF_TOKEN"}
    for workload in workloads(documents).values():
        assert workload["kind"] == "Deployment" and "initContainers" not in workload["spec"]["template"]["spec"]


def test_an_existing_claim_must_be_read_write_many(chart):
    with pytest.raises(Exception, match=r"modelCache\.existingClaim is mounted by every GPU pod"):
        render(chart, {"modelCache": {"existingClaim": "weights"}})


def test_the_refiner_is_split_over_its_gpus_and_env_can_say_otherwise(chart):
    def refiner_config(values: dict) -> dict:
        return next(
            d
            for d in render(chart, values)
            if d["metadata"]["name"] == "demo-action100m-refiner" and d["kind"] == "ConfigMap"
        )["data"]

    two = refiner_config({"refiner": {"gpus": 2, "gpuMemoryUtilization": 0.85}})
    assert (two["A100M_REFINER_TENSOR_PARALLEL_SIZE"], two["A100M_REFINER_GPU_MEMORY_UTILIZATION"]) == ("2", "0.85")
    mine = refiner_config({"refiner": {"gpus": 4, "env": {"A100M_REFINER_TENSOR_PARALLEL_SIZE": "2"}}})
    assert mine["A100M_REFINER_TENSOR_PARALLEL_SIZE"] == "2"  # one key, the user's


def test_notes_say_when_the_image_registry_is_still_the_placeholder(chart):
    notes = chart.render({}, name="demo", namespace="ml")["action100m/templates/NOTES.txt"]
    assert "image.registry is still the chart's placeholder" in notes
    mine = chart.render({"image": {"registry": "registry.example.com/a100m"}}, name="demo", namespace="ml")
    assert "placeholder" not in mine["action100m/templates/NOTES.txt"]
