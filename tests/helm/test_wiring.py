"""The README's cluster install, held together: the chart rendered as README installs it
(`helm install action100m helm/action100m -n ml --set ...`) and the pipeline compiled as `a100m
pipeline submit --image ... --release-namespace ml` sends it, with KFP running its step pods in
`kubeflow`: the commands as a user pastes them."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from action100m.common.store import ArtifactStore
from action100m.common.uris import UriError
from action100m.pipelines.dag import S3_SECRET, S3_SECRET_KEYS, compile_pipeline
from action100m.pipelines.registry import STAGES
from action100m.pipelines.registry.stage import chart_fullname

from .test_chart import by_kind, workloads

README = Path(__file__).resolve().parents[2] / "README.md"
RELEASE, NAMESPACE, KFP_NAMESPACE = "action100m", "ml", "kubeflow"
# What KFP v2 puts on every step pod (the driver/launcher label the chart's policy selects on).
STEP_POD_LABELS = {"pipelines.kubeflow.org/v2_component": "true", "pipelines.kubeflow.org/pipelinename": "action100m"}


def readme_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README.read_text(), re.DOTALL)


def readme_install_values() -> dict[str, Any]:
    """The values README's `helm install` sets, parsed from its `--set` flags."""
    (block,) = [b for b in readme_blocks() if f"helm install {RELEASE} helm/action100m -n {NAMESPACE}" in b]
    values: dict[str, Any] = {}
    for flag in re.findall(r"--set '?([^' \\\n]+)'?", block):
        key, value = flag.split("=", 1)
        parsed: Any = value[1:-1].split(",") if value.startswith("{") else value
        node = values
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = parsed
    return values


def readme_submit_flags() -> dict[str, str]:
    """The flags of README's `a100m pipeline submit` (the one for the chart's layout)."""
    block = next(b for b in readme_blocks() if "a100m pipeline submit --host" in b and "--release-namespace" in b)
    return dict(re.findall(r"--([a-z-]+) (\S+)", block))


def readme_submit_prefixes() -> dict[str, str]:
    flags = readme_submit_flags()
    return {name: flags[name] for name in ("videos", "artifact-prefix", "output-prefix")}


def render(chart, values: dict) -> list[dict]:
    """The manifests of `helm install a100m -n ml` with these values (NOTES.txt aside)."""
    documents = []
    for path, text in chart.render(values, name=RELEASE, namespace=NAMESPACE).items():
        if not path.endswith("NOTES.txt"):
            documents += [d for d in yaml.safe_load_all(text) if d]
    return documents


@pytest.fixture(scope="module")
def installed(chart) -> list[dict]:
    return render(chart, readme_install_values())


def test_readme_installs_what_it_says():
    values = readme_install_values()
    assert values["storage"]["allowedRoots"] == ["s3://my-bucket"]
    assert values["storage"]["readOnlyRoots"] == ["s3://my-bucket/videos"]
    assert values["huggingFace"]["tokenSecret"] == "hf-token"


def test_the_pasted_submit_runs_the_images_the_install_names_and_the_chart_s_default_release():
    flags, values = readme_submit_flags(), readme_install_values()
    assert flags["image"].rsplit("/", 1)[0] == values["image"]["registry"]  # no placeholder image
    assert "release" not in flags  # the chart installed as the CLI's default release name
    assert flags["release-namespace"] == NAMESPACE


def test_gated_models_without_a_token_are_refused_at_render_in_one_line(chart):
    from action100m.pipelines.local.presets import preset_env

    without = {**readme_install_values(), "huggingFace": {"tokenSecret": ""}}
    with pytest.raises(Exception) as refused:
        render(chart, without)
    message = str(refused.value)
    assert "meta-llama/Llama-3.2-11B-Vision-Instruct" in message and "facebook/Perception-LM-3B" in message
    assert "are gated on the Hugging Face Hub: set huggingFace.tokenSecret" in message
    offline = {**without, "huggingFace": {"tokenSecret": "", "offline": True}}
    assert render(chart, offline)  # weights already in the cache: nothing to download
    ungated = {"captioner": {"env": {k: v for k, v in preset_env("tiny", Path("/m")).items() if "CAPTIONER" in k}}}
    assert render(chart, {**without, **ungated})  # models of one's own: no token needed


def test_every_address_submit_passes_is_a_rendered_headless_service_of_the_right_pods(installed):
    services, deployments = by_kind(installed, "Service"), workloads(installed)
    for spec in STAGES:
        address = spec.default_address(RELEASE, NAMESPACE)  # what submit passes with --release/--release-namespace
        host, namespace, port = re.fullmatch(r"dns:///([^.]+)\.([^.]+)\.svc:(\d+)", address).groups()  # type: ignore[union-attr]
        assert namespace == NAMESPACE
        service = services[host]
        assert service["spec"]["clusterIP"] == "None"
        assert int(port) in {p["port"] for p in service["spec"]["ports"]}
        pods = deployments[host.removesuffix("-headless")]["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= pods.items()


def _selects(selector: dict, labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        value = labels.get(expression["key"])
        if expression["operator"] == "In" and value not in expression["values"]:
            return False
    return True


def _admits(policy: dict, pod_labels: dict[str, str], namespace: str, port: int) -> bool:
    namespace_labels = {"kubernetes.io/metadata.name": namespace}
    for rule in policy["spec"]["ingress"]:
        if port not in {p["port"] for p in rule.get("ports", [])}:
            continue
        for peer in rule["from"]:
            same_namespace = "namespaceSelector" not in peer and namespace == NAMESPACE
            namespace_ok = same_namespace or _selects(peer.get("namespaceSelector", {}), namespace_labels)
            if namespace_ok and _selects(peer.get("podSelector", {}), pod_labels):
                return True
    return False


def test_every_network_policy_admits_kfp_step_pods_and_only_them(installed):
    policies = by_kind(installed, "NetworkPolicy")
    assert len(policies) == len(STAGES)
    for name, policy in policies.items():
        assert _admits(policy, STEP_POD_LABELS, KFP_NAMESPACE, 50051), name
        assert _admits(policy, STEP_POD_LABELS, NAMESPACE, 50051), name
        assert not _admits(policy, STEP_POD_LABELS, "somebody-else", 50051), name
        assert not _admits(policy, {"app": "curl"}, KFP_NAMESPACE, 50051), name


def test_the_secret_the_steps_and_services_read_is_the_one_readme_creates(installed, tmp_path):
    created = re.findall(
        r"kubectl -n (\S+) create secret generic (\S+) --from-literal=([\w-]+)=\S+ --from-literal=([\w-]+)=",
        "\n".join(readme_blocks()),
    )
    assert {namespace for namespace, *_ in created} == {NAMESPACE, KFP_NAMESPACE}
    assert {(name, frozenset(keys)) for _, name, *keys in created} == {(S3_SECRET, frozenset(S3_SECRET_KEYS))}
    token = re.findall(
        r"kubectl -n (\S+) create secret generic (\S+) --from-literal=(\w+)=hf_", "\n".join(readme_blocks())
    )
    assert token == [(NAMESPACE, "hf-token", "token")]
    # the compiled pipeline: every step mounts that Secret's keys as the S3 credentials
    compiled = yaml.safe_load_all(compile_pipeline(tmp_path / "pipeline.yaml", release=RELEASE).read_text())
    platform = next(d for d in compiled if d and "platforms" in d)
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for executor in executors.values():
        (secret,) = executor["secretAsEnv"]
        assert secret["secretName"] == S3_SECRET
        assert {k["secretKey"]: k["envVar"] for k in secret["keyToEnv"]} == S3_SECRET_KEYS
    # the services: the same Secret, the same keys
    for deployment in workloads(installed).values():
        env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env if "valueFrom" in e}
        assert {refs[var]["name"] for var in S3_SECRET_KEYS.values()} == {S3_SECRET}
        assert {r["name"] for r in refs.values()} <= {S3_SECRET, "hf-token"}
        fetch = deployment["spec"]["template"]["spec"].get("initContainers", [])
        for container in [*fetch, deployment["spec"]["template"]["spec"]["containers"][0]]:
            tokens = [e["valueFrom"]["secretKeyRef"] for e in container["env"] if e["name"] == "HF_TOKEN"]
            assert tokens in ([], [{"name": "hf-token", "key": "token"}])  # the token the README creates
        assert {refs[var]["key"] for var in S3_SECRET_KEYS.values()} == set(S3_SECRET_KEYS)


def test_the_steps_settings_come_from_a_configmap_the_chart_makes_where_kfp_runs_them(installed, tmp_path):
    compiled = yaml.safe_load_all(compile_pipeline(tmp_path / "pipeline.yaml", release=RELEASE).read_text())
    platform = next(d for d in compiled if d and "platforms" in d)
    wanted = set()
    for executor in platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values():
        (config_map,) = executor["configMapAsEnv"]
        wanted.add((config_map["configMapName"], frozenset(k["configMapKey"] for k in config_map["keyToEnv"])))
    ((name, keys),) = wanted
    made = {
        d["metadata"].get("namespace"): d["data"]
        for d in installed
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name
    }
    assert set(made) == {NAMESPACE, KFP_NAMESPACE}
    for data in made.values():
        assert keys <= set(data) and data["A100M_S3_ENDPOINT"] == readme_install_values()["storage"]["endpoint"]


def test_the_roots_of_every_service_cover_the_runs_prefixes(installed):
    prefixes = readme_submit_prefixes()
    for config in (d for d in installed if d["kind"] == "ConfigMap" and "A100M_ALLOWED_ROOTS" in d["data"]):
        store = ArtifactStore(
            config["data"]["A100M_ALLOWED_ROOTS"].split(","),
            read_only_roots=config["data"]["A100M_READ_ONLY_ROOTS"].split(","),
        )
        store.resolve(prefixes["videos"] + "clip.mp4")  # readable
        for prefix in (prefixes["artifact-prefix"], prefixes["output-prefix"]):
            store.resolve_writable(prefix + "/x")
        with pytest.raises(UriError, match="read-only"):
            store.resolve_writable(prefixes["videos"] + "clip.mp4")  # the videos are never written


def test_scaling_a_service_leaves_every_pod_template_unchanged(chart, installed):
    values = copy.deepcopy(readme_install_values())
    values["captioner"] = {"replicas": 8}
    before, after = workloads(installed), workloads(render(chart, values))
    for name in before:
        assert after[name]["spec"]["template"] == before[name]["spec"]["template"], name
    assert after[f"{chart_fullname(RELEASE)}-captioner"]["spec"]["replicas"] == 8


def test_a_settings_change_rolls_the_services_it_touches_only(chart, installed):
    def checksums(values: dict) -> dict[str, str]:
        return {
            name: d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            for name, d in workloads(render(chart, values)).items()
        }

    base = readme_install_values()
    first = checksums(base)
    captioner_env = {**base, "captioner": {"env": {"A100M_CAPTION_BATCH_SIZE": "4"}}}
    changed = {name for name, value in checksums(captioner_env).items() if value != first[name]}
    assert changed == {f"{chart_fullname(RELEASE)}-captioner"}
    roots = copy.deepcopy(base)
    roots["storage"]["allowedRoots"] = ["s3://my-bucket", "s3://other"]
    assert all(value != first[name] for name, value in checksums(roots).items())  # every service reads them


def test_default_image_tags_are_the_package_version_and_notes_submit_runs_the_same_registry(chart):
    import tomllib

    version = tomllib.loads((README.parent / "pyproject.toml").read_text())["project"]["version"]
    values = {"image": {"registry": "registry.example.com/a100m"}}
    for deployment in workloads(render(chart, values)).values():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert container["image"].startswith("registry.example.com/a100m/") and container["image"].endswith(
                f":{version}"
            )
    notes = next(
        text
        for path, text in chart.render(values, name=RELEASE, namespace=NAMESPACE).items()
        if path.endswith("NOTES.txt")
    )
    assert f"--image registry.example.com/a100m/pipeline:{version}" in notes
