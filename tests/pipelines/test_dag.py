"""The compiled pipeline YAML, produced by the command users run."""

from __future__ import annotations

import subprocess
import sys

import yaml


def test_compile_command_writes_the_dag_with_parallelism_retries_and_no_kfp_cache(tmp_path):
    path = tmp_path / "pipeline.yaml"
    done = subprocess.run(
        [sys.executable, "-m", "action100m.cli", "pipeline", "compile", "--output", str(path), "--parallelism", "3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    documents = list(yaml.safe_load_all(path.read_text()))
    spec, platform = documents[0], documents[1]
    assert spec["pipelineInfo"]["name"] == "action100m"
    assert set(spec["components"]) >= {
        "comp-plan-run",
        "comp-shard-indices",
        "comp-run-stage",
        "comp-export-shard",
        "comp-publish-dataset",
    }
    loop = next(c for name, c in spec["components"].items() if name.startswith("comp-for-loop"))
    assert loop["dag"]["tasks"]
    root_tasks = spec["root"]["dag"]["tasks"]
    for_loop = next(t for name, t in root_tasks.items() if name.startswith("for-loop"))
    assert for_loop["iteratorPolicy"]["parallelismLimit"] == 3
    assert for_loop["parameterIterator"]["items"]["inputParameter"]
    stage_tasks = loop["dag"]["tasks"]
    assert len(stage_tasks) == 6  # transcribe, embed, segment, caption, refine, export
    chain = {t["taskInfo"]["name"]: t.get("dependentTasks", []) for t in stage_tasks.values()}
    names = {key: t["taskInfo"]["name"] for key, t in stage_tasks.items()}
    # two entry points, side by side: the transcriber and the embedder both read the video only
    assert sorted(n for n, deps in chain.items() if not deps) == ["embed", "transcribe"]
    assert sorted(names[d] for d in chain["refine"]) == ["caption", "transcribe"]  # refine waits for both
    assert [names[d] for d in chain["export-shard"]] == ["refine"]
    for task in [*stage_tasks.values(), *(t for n, t in root_tasks.items() if not n.startswith("for-loop"))]:
        # KFP retries a lost step pod; planning is not retried (its failures are the input's)
        assert task.get("retryPolicy", {}).get("maxRetryCount", 0) == (
            0 if task["taskInfo"]["name"] == "plan-run" else 2
        )
        assert task["cachingOptions"] == {}  # KFP caching off: the artifact store decides what is finished
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for executor in executors.values():
        assert executor["secretAsEnv"][0]["secretName"] == "action100m-s3"
        # the cluster's settings (endpoint, roots) come from the chart's ConfigMap, not parameters
        (config_map,) = executor["configMapAsEnv"]
        assert config_map["configMapName"] == "action100m-pipeline"
        assert {k["configMapKey"] for k in config_map["keyToEnv"]} >= {"A100M_ALLOWED_ROOTS", "A100M_S3_ENDPOINT"}
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert set(inputs) == {
        "videos",
        "artifact_prefix",
        "output_prefix",
        "run",
        "addresses",
        "options",
        "shard_size",
        "overwrite",
        "card",
        "start_from",
        "modes",
        "claimed",
    }
    # options and addresses are typed dicts by stage, never JSON strings
    assert inputs["options"]["parameterType"] == inputs["addresses"]["parameterType"] == "STRUCT"
    assert inputs["start_from"]["parameterType"] == "STRUCT" and inputs["start_from"]["defaultValue"] == {}
    assert inputs["addresses"]["defaultValue"]["embed"] == "dns:///action100m-embedder-headless:50051"
    # the loop iterates over the plan's shard indices, not over the videos
    assert "shard-indices" in for_loop["parameterIterator"]["items"]["inputParameter"]


def test_default_addresses_follow_the_chart_naming_of_the_release():
    from action100m.pipelines.registry import BY_NAME

    embed = BY_NAME["embed"]
    assert embed.default_address() == "dns:///action100m-embedder-headless:50051"
    assert embed.default_address("a100m", "ml") == "dns:///a100m-action100m-embedder-headless.ml.svc:50051"
    assert embed.default_address("my-action100m") == "dns:///my-action100m-embedder-headless:50051"


def test_the_image_is_a_compile_option_and_each_step_asks_for_resources(tmp_path):
    path = tmp_path / "pipeline.yaml"
    image = "registry.example.com/action100m/pipeline:dev"
    command = [sys.executable, "-m", "action100m.cli", "pipeline", "compile", "--output", str(path), "--image", image]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    spec = next(yaml.safe_load_all(path.read_text()))
    executors = spec["deploymentSpec"]["executors"]
    assert executors and {e["container"]["image"] for e in executors.values()} == {image}
    for executor in executors.values():
        resources = executor["container"]["resources"]
        assert (
            resources["resourceCpuRequest"] and resources["resourceMemoryRequest"] and resources["resourceMemoryLimit"]
        )


def test_the_dataset_its_counts_and_its_card_are_kfp_artifacts(tmp_path):
    from action100m.pipelines.dag import compile_pipeline

    spec = next(yaml.safe_load_all(compile_pipeline(tmp_path / "p.yaml").read_text()))
    outputs = spec["components"]["comp-publish-dataset"]["outputDefinitions"]["artifacts"]
    assert {name: o["artifactType"]["schemaTitle"] for name, o in outputs.items()} == {
        "dataset": "system.Dataset",
        "metrics": "system.Metrics",
        "card": "system.Markdown",
    }


SUBMIT = [sys.executable, "-m", "action100m.cli", "pipeline", "submit", "--host", "http://127.0.0.1:9"]
SUBMIT += ["--image", "registry.example.com/action100m/pipeline:0.2.0"]


def test_submit_to_an_unreachable_host_is_one_line():
    command = [*SUBMIT, "--videos", "s3://b/v/", "--artifact-prefix", "s3://b/a", "--output-prefix", "s3://b/o"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.startswith("error: KFP at http://127.0.0.1:9: ") and "Connection refused" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


def test_submit_refuses_the_placeholder_image_before_calling_kfp():
    command = [*SUBMIT[:-2], "--videos", "s3://b/v/", "--artifact-prefix", "s3://b/a", "--output-prefix", "s3://b/o"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("error: --image: the steps would pull ghcr.io/action100m/")
    assert "KFP" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_submit_checks_stage_options_against_their_messages_before_calling_kfp():
    from action100m.cli.pipeline import stage_options

    assert stage_options('{"refiner": {"rounds": 1}, "caption": {}}') == {"refine": {"rounds": 1}, "caption": {}}
    command = [*SUBMIT, "--videos", "s3://b/v/", "--artifact-prefix", "s3://b/a", "--output-prefix", "s3://b/o"]
    done = subprocess.run([*command, "--options", '{"refine": {"roundz": 1}}'], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.startswith("error: refine options: ")
    assert "roundz" in done.stderr and "KFP" not in done.stderr


def test_submit_from_a_dataset_checks_the_stages_and_the_videos_before_calling_kfp():
    command = [
        *SUBMIT,
        "--artifact-prefix",
        "s3://b/a",
        "--output-prefix",
        "s3://b/o",
        "--from",
        "s3://b/d/train.parquet",
    ]
    wrong = subprocess.run([*command, "--stages", "segment,refine"], capture_output=True, text=True, timeout=120)
    assert wrong.returncode == 2 and "must be refine or caption,refine" in wrong.stderr and "KFP" not in wrong.stderr
    blind = subprocess.run([*command, "--stages", "caption,refine"], capture_output=True, text=True, timeout=120)
    assert blind.returncode == 2 and "--videos is needed" in blind.stderr and "KFP" not in blind.stderr
    refine = subprocess.run(command, capture_output=True, text=True, timeout=120)  # no video needed: on to KFP
    assert refine.returncode == 2 and refine.stderr.startswith("error: KFP at http://127.0.0.1:9: ")


def test_no_step_installs_kfp_before_it_runs():
    """KFP's lightweight components `pip install kfp` before every step unless told the image has it:
    0.8 s a task here (most of a shard's orchestration), and a package index on the cluster."""
    from action100m.pipelines.components import components

    steps = components("registry.example/pipeline:1")
    for name in ("plan_run", "shard_indices", "run_stage", "export_shard", "publish_dataset"):
        command = " ".join(getattr(steps, name).component_spec.implementation.container.command)
        assert "pip install" not in command and "kfp.dsl.executor_main" in command, name


def test_the_pipelines_parameters_are_the_fields_of_pipeline_arguments(tmp_path):
    """`a100m run` and `a100m pipeline submit` both pass a PipelineArguments: a parameter added to
    the DAG without its field (or the reverse) fails here."""
    from dataclasses import fields

    from action100m.pipelines.arguments import PipelineArguments
    from action100m.pipelines.dag import compile_pipeline
    from action100m.pipelines.registry import default_modes

    spec = next(yaml.safe_load_all(compile_pipeline(tmp_path / "p.yaml").read_text()))
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert set(parameters) == {f.name for f in fields(PipelineArguments)}
    assert parameters["modes"]["defaultValue"] == default_modes() == {"transcribe": "missing"}
