"""The viewer's search in headless chromium: time from a query to its first hit, and the page's
JavaScript heap after it, on a catalog of many videos.

Baseline, in the same run: the whole search index as one file (`SEARCH_PART_NODES` set beyond the
catalog: what the viewer served before the index came in parts). Rows, for each layout: a query
whose hit is in the first video (the parts layout reads one part) and one whose only hit is in the
last video (every part is read, the worst case). The catalog is synthetic: `--videos` videos of
`--nodes-per-video` nodes (the release averages ~120), each node with ~1.2 kB of text like the
release's. One file costs time and heap linear in the whole catalog for every query; parts cost
what is read before enough hits are found, and a bounded heap (4 parts kept). The heap is measured
after a full garbage collection, half a second after the first hit (the search is over by then for
catalogs of a few thousand videos).

    python benchmarks/viewer_search.py [--json] [--videos 1000] [--nodes-per-video 120]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from report import emit, parser
from viewer import browser, open_page, serving

from action100m.common.release import write_parquet
from action100m.common.release.synthetic import balanced_tree_row
from action100m.viewer import catalog as catalog_module
from action100m.viewer.catalog import load_catalog

DEBOUNCE_MS = 120  # the page waits this long after the last keystroke (app.js)
FILLER = "The person picks up the tool, turns it over and sets it down beside the board. " * 15

SEARCH_SCRIPT = """
const [query, done] = arguments;
const box = document.getElementById("search");
const results = document.getElementById("results");
const started = performance.now();
box.value = query;
box.dispatchEvent(new Event("input"));
(function check() {
  if (results.hidden) return setTimeout(check, 1);
  const elapsed = performance.now() - started;
  setTimeout(() => {  // once the search is over: what the page keeps, after a full collection
    gc();
    done([elapsed, performance.memory.usedJSHeapSize]);
  }, 500);
})();
"""


def catalog_file(folder: Path, videos: int, nodes: int) -> Path:
    rows = []
    for number in range(videos):
        row = balanced_tree_row(f"v{number}", nodes)
        for node in row["nodes"]:
            node["llama3_caption"] = FILLER
        rows.append(row)
    rows[0]["nodes"][1]["plm_caption"] = "the firstneedle of the catalog"
    rows[-1]["nodes"][1]["plm_caption"] = "the lastneedle of the catalog"
    return write_parquet(rows, folder / "catalog.parquet")


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=1000)
    p.add_argument("--nodes-per-video", type=int, default=120)
    p.add_argument("--repeats", type=int, default=3, help="searches per row, each on a fresh page (the median)")
    args = p.parse_args()
    in_use = catalog_module.SEARCH_PART_NODES
    driver = browser()
    driver.set_script_timeout(600)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            dataset = catalog_file(Path(tmp), args.videos, args.nodes_per_video)
            baseline = None
            for layout, part_nodes in (("one file (baseline)", 10**12), (f"parts of {in_use:,} nodes", in_use)):
                catalog_module.SEARCH_PART_NODES = part_nodes
                catalog = load_catalog([str(dataset)])
                with serving(catalog) as url:
                    for query, where in (("firstneedle", "first video"), ("lastneedle", "last video")):
                        measured = []
                        for _ in range(args.repeats):
                            open_page(driver, url)
                            elapsed, heap = driver.execute_async_script(SEARCH_SCRIPT, query)
                            measured.append((elapsed - DEBOUNCE_MS, heap))
                        elapsed_ms, heap = sorted(measured)[len(measured) // 2]
                        baseline = baseline or elapsed_ms
                        rows.append(
                            {
                                "index": layout,
                                "parts": len(catalog.search_parts),
                                "hit in": where,
                                "first_hit_ms": round(elapsed_ms, 1),
                                "vs_baseline": round(elapsed_ms / baseline, 3),
                                "js_heap_mb": round(heap / 2**20, 1),
                            }
                        )
    finally:
        catalog_module.SEARCH_PART_NODES = in_use
        driver.quit()
    emit(
        rows,
        args.json,
        [
            f"{args.videos} videos x {args.nodes_per_video} nodes; first hit: median of {args.repeats} searches, "
            f"each on a fresh page, from the keystroke to the first result shown, less the {DEBOUNCE_MS} ms debounce"
        ],
    )


if __name__ == "__main__":
    main()
