"""The viewer in headless chromium: time to first render and time to highlight, by tree size.

Baseline, in the same run: a 100-node tree. Rows: the released video (917 nodes, when the project's
shared/ folder is beside the checkout) and synthetic trees of 1,000 and 10,000 nodes. First render
is the browser's own clock from navigation start to every node of the first video in the page
(data files loaded, timeline built); highlight is the mean time to mark the nodes covering a new
playback time (what runs on every `timeupdate`); zoom is the mean time to re-place every box for a
new view window (what runs on each wheel step or drag frame, style recalculation included). Building
the timeline and a zoom step are linear in the nodes (one box each); a highlight is a binary search
per level, so logarithmic.

    python benchmarks/viewer.py [--json] [--nodes 100 1000 10000]
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from report import emit, parser

from action100m.common.release import write_parquet
from action100m.common.release.synthetic import balanced_tree_row
from action100m.viewer.catalog import Catalog, load_catalog
from action100m.viewer.server import build_app

RELEASED = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "action100m_sample_hySSAAw4t24.json"


def browser():  # type: ignore[no-untyped-def]
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    flags = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000")
    for flag in (*flags, "--enable-precise-memory-info", "--js-flags=--expose-gc"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or "chromedriver"))


@contextlib.contextmanager
def serving(catalog: Catalog) -> Iterator[str]:
    """The viewer's app over `catalog` on a real uvicorn on loopback; yields its URL."""
    import socket

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(build_app(catalog), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(10)


def open_page(driver, url: str) -> float:  # type: ignore[no-untyped-def]
    """Loads the page afresh; the browser's milliseconds from navigation start to the page ready."""
    driver.get("about:blank")
    driver.get(url)
    while driver.execute_script("return document.body && document.body.dataset.ready") != "1":
        time.sleep(0.01)
    return float(driver.execute_script("return Number(document.body.dataset.readyMs)"))


def measure(driver, dataset: Path, repeats: int) -> tuple[float, float, float, int]:  # type: ignore[no-untyped-def]
    with serving(load_catalog([str(dataset)])) as url:
        renders = [open_page(driver, url) for _ in range(repeats)]
        nodes = int(driver.execute_script("return document.querySelectorAll('.node').length"))
        highlight = float(
            driver.execute_script(
                "const d = A100M.state.video.duration; const t0 = performance.now();"
                "for (let i = 0; i < 500; i++) A100M.highlight((i * 7.31) % d);"
                "return (performance.now() - t0) / 500;"
            )
        )
        zoom = float(
            driver.execute_script(
                "const s = A100M.state.span; const t0 = performance.now();"
                "for (let i = 1; i <= 20; i++) { A100M.setView(0, s / (1 + i)); A100M.layout();"
                " document.body.offsetWidth; }"  # the style and layout work the browser does for it
                "A100M.setView(0, s); A100M.layout(); return (performance.now() - t0) / 21;"
            )
        )
    return sorted(renders)[len(renders) // 2], highlight, zoom, nodes


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--repeats", type=int, default=5, help="page loads per tree (the median is reported)")
    args = p.parse_args()
    driver = browser()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cases = [
                ("synthetic 100 (baseline)", write_parquet([balanced_tree_row("b", 100)], Path(tmp) / "b.parquet"))
            ]
            if RELEASED.exists():
                cases.append(("released hySSAAw4t24", RELEASED))
            cases += [
                (f"synthetic {n}", write_parquet([balanced_tree_row(f"s{n}", n)], Path(tmp) / f"s{n}.parquet"))
                for n in args.nodes
            ]
            baseline = None
            for name, dataset in cases:
                render_ms, highlight_ms, zoom_ms, nodes = measure(driver, dataset, args.repeats)
                baseline = baseline or render_ms
                rows.append(
                    {
                        "tree": name,
                        "nodes": nodes,
                        "first_render_ms": round(render_ms, 1),
                        "render_vs_baseline": round(render_ms / baseline, 2),
                        "highlight_ms": round(highlight_ms, 4),
                        "zoom_ms": round(zoom_ms, 2),
                    }
                )
    finally:
        driver.quit()
    emit(
        rows,
        args.json,
        ["first render: median of page loads, navigation start to the timeline built (every node in the page)"],
    )


if __name__ == "__main__":
    main()
