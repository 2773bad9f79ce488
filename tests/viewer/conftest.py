"""The viewer's fixtures: a demo-style run output, hostile and large datasets, the page served by a
real uvicorn on loopback, and Debian's chromium driven by Selenium (built once per session)."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from action100m.common.release import write_parquet
from action100m.common.release.synthetic import balanced_tree_row
from action100m.devtools.synthetic_video import write_video
from action100m.viewer.catalog import Catalog, load_catalog

from ..support import free_port, synthetic_release_row

XSS_CAPTION = '<img src=x onerror="window.__pwned = 1"> and <script>window.__pwned = 2</script>'
DEMO_VIDEOS = {"kitchen": (0, 60), "workshop": (0, 50), "garden": (0, 40, 80)}  # scene starts (frames)


@pytest.fixture(scope="session")
def demo_output(tmp_path_factory) -> Path:
    """A folder laid out as `a100m run` leaves it (dataset/data/*.parquet, the inputs' manifest under
    artifacts/inputs/, run.json naming it and the roots the run read) for three synthetic videos; the
    rows are made by the tree rules (tests/support), 4.8 s each."""
    root = tmp_path_factory.mktemp("demo")
    videos = root / "videos"
    rows, manifest = [], []
    for number, (uid, scenes) in enumerate(DEMO_VIDEOS.items()):
        path = write_video(videos / f"{uid}.mp4", frames=120, fps=25, size=(160, 96), scene_starts=scenes)
        rows.append(synthetic_release_row(uid, seconds=4.8, seed=number))
        manifest.append({"video_uid": uid, "uri": path.as_uri()})
    write_parquet(rows, root / "out" / "dataset" / "data" / "train-00000-of-00001.parquet")
    inputs = root / "out" / "artifacts" / "inputs"
    inputs.mkdir(parents=True)
    (inputs / "0123456789abcdef.jsonl").write_text("".join(json.dumps(m) + "\n" for m in manifest))
    record = {"manifest": (inputs / "0123456789abcdef.jsonl").as_uri(), "read_roots": [videos.as_uri()]}
    (root / "out" / "run.json").write_text(json.dumps(record))
    return root


@pytest.fixture(scope="session")
def hostile_dataset(tmp_path_factory) -> Path:
    row = synthetic_release_row("hostile", seconds=30.0)
    row["metadata"]["title"] = XSS_CAPTION
    for node in row["nodes"]:
        node["plm_caption"] = XSS_CAPTION
        node["plm_action"] = "<b>bold?</b>"
    return write_parquet([row], tmp_path_factory.mktemp("hostile") / "hostile.parquet")


@pytest.fixture(scope="session")
def big_dataset(tmp_path_factory) -> Path:
    return write_parquet([balanced_tree_row("big", 10_000)], tmp_path_factory.mktemp("big") / "big.parquet")


class Served:
    """The viewer's app on a real uvicorn server in a thread."""

    def __init__(self, catalog: Catalog):
        import uvicorn

        from action100m.viewer.server import build_app

        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(build_app(catalog), host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "the viewer did not start"
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def serve():
    servers: list[Served] = []

    def start(datasets: list[Path | str], videos: str | None = None, against: Sequence[Path | str] = ()) -> Served:
        servers.append(Served(load_catalog([str(d) for d in datasets], videos, against=[str(a) for a in against])))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def browser():
    """Headless Debian chromium through chromedriver (`apt-get install chromium chromium-driver`)."""
    pytest.importorskip("selenium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        pytest.skip("no chromium / chromedriver here (.ci/run installs them with apt where it can)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--mute-audio",
    ):
        options.add_argument(flag)
    options.add_argument("--autoplay-policy=no-user-gesture-required")
    session = webdriver.Chrome(options=options, service=Service(driver))
    session.set_script_timeout(30)
    yield session
    session.quit()
