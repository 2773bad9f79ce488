"""The viewer's page in a real browser (headless chromium): what a user sees and does."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from action100m.viewer.catalog import load_catalog
from action100m.viewer.site import export_site

from .conftest import DEMO_VIDEOS, XSS_CAPTION


def wait(browser, script: str, timeout: float = 30.0):
    """Until `script` (a JS expression) is truthy; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = browser.execute_script(f"return {script}")
        if value:
            return value
        error = browser.execute_script("return document.body && document.body.dataset.error")
        assert not error, error
        assert time.monotonic() < deadline, f"timed out waiting for {script}"
        time.sleep(0.05)


def open_page(browser, url: str) -> None:
    browser.get(url)
    wait(browser, "document.body.dataset.ready === '1'")


def node_count(browser) -> int:
    return int(browser.execute_script("return document.querySelectorAll('#timeline .node').length"))


def open_video(browser, number: int) -> None:
    browser.find_elements("css selector", "#video-rows tr")[number].click()
    wait(browser, f"A100M.state.videoNumber === {number}")


def rows_of(path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def test_a_run_output_lists_its_videos_and_renders_every_node(browser, serve, demo_output):
    served = serve([demo_output / "out"])  # videos found through the run's own manifest
    open_page(browser, served.url)
    titles = [row.text for row in browser.find_elements("css selector", "#video-rows tr td:first-child")]
    assert len(titles) == len(DEMO_VIDEOS)
    rows = rows_of(next((demo_output / "out" / "dataset" / "data").glob("*.parquet")))
    for number, row in enumerate(rows):
        open_video(browser, number)
        assert node_count(browser) == len(row["nodes"])
        assert browser.execute_script("return document.getElementById('player').hidden") is False
        assert browser.execute_script("return document.getElementById('youtube-line').hidden") is True


def test_clicking_a_node_seeks_and_the_playing_time_highlights_the_nodes_covering_it(browser, serve, demo_output):
    served = serve([demo_output / "out"])
    open_page(browser, served.url)
    wait(browser, "document.getElementById('player').readyState >= 1")  # metadata through /media (Range)
    nodes = browser.execute_script("return A100M.state.video.nodes.map(n => [n.id, n.level, n.start, n.end])")
    deepest = max(nodes, key=lambda n: (n[1], n[2]))
    browser.find_element("css selector", f'#timeline .node[data-id="{deepest[0]}"]').click()
    wait(browser, f"Math.abs(document.getElementById('player').currentTime - {deepest[2]}) < 0.05")
    for t in (0.3, 1.7, 3.05, 4.5):
        browser.execute_script(f"document.getElementById('player').currentTime = {t}")
        expected = {n[0] for n in nodes if n[2] <= t < n[3]}
        wait(
            browser,
            f"document.getElementById('player').currentTime === {t} && !document.getElementById('player').seeking",
        )
        time.sleep(0.1)
        playing = set(
            browser.execute_script("return [...document.querySelectorAll('.node.playing')].map(e => e.dataset.id)")
        )
        assert playing == expected and len(playing) == len({n[1] for n in nodes if n[2] <= t < n[3]})


def test_arrow_keys_move_through_the_tree(browser, serve, demo_output):
    served = serve([demo_output / "out"])
    open_page(browser, served.url)
    state = "A100M.state"
    root = browser.execute_script(f"return {state}.video.nodes.find(n => !n.parent).id")
    browser.find_element("css selector", f'#timeline .node[data-id="{root}"]').click()
    timeline = browser.find_element("id", "timeline")
    timeline.send_keys("\ue015")  # down: the first child
    child = browser.execute_script(f"return {state}.selected")
    assert child["parent"] == root
    timeline.send_keys("\ue014")  # right: the next sibling
    sibling = browser.execute_script(f"return {state}.selected")
    assert sibling["parent"] == root and sibling["start"] == child["end"]
    timeline.send_keys("\ue013")  # up: the parent
    assert browser.execute_script(f"return {state}.selected.id") == root


def test_the_released_video_renders_all_its_nodes_with_a_youtube_link_and_no_player(browser, serve, released_sample):
    served = serve([released_sample])
    open_page(browser, served.url)
    assert node_count(browser) == 917
    assert browser.execute_script("return document.getElementById('player').hidden") is True
    link = browser.find_element("id", "youtube")
    assert link.get_attribute("href") == "https://www.youtube.com/watch?v=hySSAAw4t24"


def test_markup_in_a_dataset_shows_as_text_and_runs_nothing(browser, serve, hostile_dataset):
    served = serve([hostile_dataset])
    open_page(browser, served.url)
    browser.find_elements("css selector", "#timeline .node")[0].click()
    details = browser.find_element("id", "details").text
    assert XSS_CAPTION in details and "<b>bold?</b>" in details
    assert browser.find_element("id", "title").text == XSS_CAPTION
    browser.find_element("id", "search").send_keys("onerror")
    wait(browser, "!document.getElementById('results').hidden")
    time.sleep(0.5)  # an injected image would have failed to load by now
    assert browser.execute_script("return window.__pwned") is None
    assert (
        browser.execute_script("return document.querySelectorAll('#details img, #details script, #results img').length")
        == 0
    )


def test_search_jumps_to_the_matching_node(browser, serve, demo_output, tmp_path):
    served = serve([demo_output / "out"])
    open_page(browser, served.url)
    target = browser.execute_script("return A100M.state.video.nodes[3]")
    browser.find_element("id", "search").send_keys(target["plm_caption"][:60])
    wait(browser, "!document.getElementById('results').hidden")
    browser.find_elements("css selector", "#results li")[0].click()
    wait(browser, "A100M.state.selected !== null")
    assert browser.execute_script("return A100M.state.selected.plm_caption") == target["plm_caption"]


def test_search_reads_the_parts_in_order_until_it_finds_the_node(browser, serve, demo_output, monkeypatch):
    from action100m.viewer import catalog as catalog_module

    monkeypatch.setattr(catalog_module, "SEARCH_PART_NODES", 1)  # compressed: each video its own part
    served = serve([demo_output / "out"])
    open_page(browser, served.url)
    assert browser.execute_script("return A100M.state.video.nodes.length") > 1
    open_video(browser, 2)
    target = browser.execute_script("return A100M.state.video.nodes[2]")
    open_video(browser, 0)
    browser.find_element("id", "search").send_keys(target["plm_caption"])
    wait(browser, "!document.getElementById('results').hidden")
    browser.find_elements("css selector", "#results li")[0].click()
    wait(browser, "A100M.state.videoNumber === 2 && A100M.state.selected !== null")
    assert browser.execute_script("return A100M.state.selected.id") == target["id"]


def test_the_exported_site_works_from_file_urls(browser, demo_output, tmp_path):
    catalog = load_catalog([str(demo_output / "out")])
    page = export_site(catalog, tmp_path / "site", copy_videos=True)
    assert sorted(p.name for p in (tmp_path / "site" / "videos").iterdir()) == ["0.mp4", "1.mp4", "2.mp4"]
    open_page(browser, page.as_uri())
    for number, video in enumerate(catalog.videos):
        open_video(browser, number)
        assert node_count(browser) == len(video.nodes)
    wait(browser, "document.getElementById('player').readyState >= 1")  # the copied video plays from file://


def test_a_10000_node_tree_renders_and_highlights(browser, serve, big_dataset):
    served = serve([big_dataset])
    started = time.monotonic()
    open_page(browser, served.url)
    assert node_count(browser) == 10_000
    assert time.monotonic() - started < 60  # generous: the benchmark measures it
    browser.execute_script("A100M.openVideo(0, 'n9999')")
    assert browser.execute_script("return A100M.state.selected.id") == "n9999"
    assert browser.execute_script("return document.querySelectorAll('.node.playing').length") >= 13


def test_a_screenshot_of_the_page_has_content(browser, serve, demo_output, tmp_path_factory):
    from PIL import Image

    served = serve([demo_output / "out"])
    open_page(browser, served.url)
    browser.find_elements("css selector", "#timeline .node")[0].click()
    png = browser.get_screenshot_as_png()
    (tmp_path_factory.getbasetemp() / "viewer-screenshot.png").write_bytes(png)  # kept with the test's files
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size[0] >= 1000
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, boxes, highlights: not a blank page


@pytest.fixture(autouse=True)
def _fresh_page(browser):
    """Each test starts from a blank page (no state from the previous one)."""
    browser.get("about:blank")


def view(browser) -> dict:
    return browser.execute_script("return {...A100M.state.view, span: A100M.state.span}")


def boxes(browser) -> list[dict]:
    """Every node's box as drawn: its level, on-screen width, text, and what it should say."""
    return browser.execute_script(
        "return A100M.state.video.nodes.map(n => ({level: n.level, width: n.box.getBoundingClientRect().width, "
        "shown: n.box.style.display !== 'none', text: n.box.textContent, "
        "brief: (n.gpt && n.gpt.action && n.gpt.action.brief) || n.plm_action || ''}))"
    )


def test_the_timeline_has_a_time_axis_level_labels_and_brief_actions_in_wide_boxes(browser, serve, released_sample):
    served = serve([released_sample])
    open_page(browser, served.url)
    drawn = boxes(browser)
    levels = max(b["level"] for b in drawn) + 1
    labels = [e.text for e in browser.find_elements("css selector", "#timeline .level .row-label")]
    assert labels == [f"L{level}" for level in range(levels)]
    ticks = browser.execute_script(
        "return [...document.querySelectorAll('#timeline .tick')].map(t => [Number(t.dataset.seconds), t.textContent])"
    )
    seconds = [t for t, _ in ticks]
    assert ticks[0] == [0, "0:00"] and len(ticks) >= 5 and seconds == sorted(seconds)
    assert seconds[-1] <= view(browser)["span"]
    for box in drawn:  # the brief action where it fits, nothing in a sliver
        assert box["text"] == (box["brief"] if box["width"] >= 36 else ""), box
    assert 0 < sum(1 for b in drawn if b["text"]) < len(drawn)


def test_the_wheel_zooms_around_the_pointer_and_drag_and_keys_pan(browser, serve, released_sample):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    served = serve([released_sample])
    open_page(browser, served.url)
    span = view(browser)["span"]
    deepest = max(b["level"] for b in boxes(browser))
    sliver = max(b["width"] for b in boxes(browser) if b["level"] == deepest)
    assert sliver < 20  # the deepest level: slivers at the whole video's scale
    browser.execute_script(
        "const track = document.querySelector('#timeline .level .track'), r = track.getBoundingClientRect();"
        "for (let i = 0; i < 12; i++) document.getElementById('timeline').dispatchEvent(new WheelEvent('wheel',"
        " {deltaY: -200, clientX: r.left + 0.25 * r.width, clientY: r.top + 5, bubbles: true, cancelable: true}));"
    )
    wait(browser, f"A100M.state.view.end - A100M.state.view.start < {span / 50}")
    time.sleep(0.1)  # the layout runs on the next animation frame
    zoomed = view(browser)
    width = zoomed["end"] - zoomed["start"]
    pixels = browser.execute_script("return document.querySelector('#timeline .track').clientWidth")
    # the time under the pointer stays put (to the pixel the pointer's position is rounded to)
    assert abs(zoomed["start"] + 0.25 * width - 0.25 * span) < span / pixels
    in_view = [b for b in boxes(browser) if b["level"] == deepest and b["shown"]]
    if in_view:
        assert max(b["width"] for b in in_view) > 5 * sliver
    ticks = browser.execute_script(
        "return [...document.querySelectorAll('#timeline .tick')].map(t => Number(t.dataset.seconds))"
    )
    assert ticks and zoomed["start"] <= ticks[0] and ticks[-1] <= zoomed["end"] + 1e-6 and len(ticks) >= 4
    # drag 200 px left: the window moves 200 px of time right, and nothing is selected by the drag
    track = browser.find_element("css selector", "#timeline .level .track")
    ActionChains(browser).move_to_element(track).click_and_hold().move_by_offset(-200, 0).release().perform()
    dragged = view(browser)
    assert abs((dragged["start"] - zoomed["start"]) - 200 * width / pixels) < 0.05 * 200 * width / pixels
    assert browser.execute_script("return A100M.state.selected") is None
    timeline = browser.find_element("id", "timeline")
    timeline.send_keys(Keys.SHIFT + Keys.ARROW_RIGHT)  # a quarter of the window to the right
    time.sleep(0.1)
    assert abs(view(browser)["start"] - (dragged["start"] + 0.25 * width)) < 1e-6 * span
    timeline.send_keys("-")
    time.sleep(0.1)
    assert abs((view(browser)["end"] - view(browser)["start"]) - 1.5 * width) < 1e-6 * span
    timeline.send_keys("0")  # the whole video again
    time.sleep(0.1)
    assert view(browser) == {"start": 0, "end": span, "span": span}


def test_against_another_dataset_the_differing_nodes_are_marked_and_both_texts_shown(browser, serve, tmp_path):
    import copy

    from action100m.common.release import write_parquet

    from ..support import synthetic_release_row

    row = synthetic_release_row("compared", seconds=60.0, seed=3)
    other = copy.deepcopy(row)
    changed = other["nodes"][2]
    changed["plm_caption"] = "a different caption"
    mine = write_parquet([row], tmp_path / "a" / "a.parquet")
    theirs = write_parquet([other], tmp_path / "b" / "b.parquet")
    served = serve([mine], against=[theirs])
    open_page(browser, served.url)
    marked = browser.execute_script("return [...document.querySelectorAll('.node.differs')].map(e => e.dataset.id)")
    assert marked == [changed["node_id"]]
    assert browser.execute_script("return document.getElementById('against-line').hidden") is False
    browser.find_element("css selector", f'#timeline .node[data-id="{changed["node_id"]}"]').click()
    names = browser.execute_script(
        "return [...document.querySelectorAll('#node-fields dt.differs')].map(e => e.textContent)"
    )
    assert names == ["plm_caption"]
    texts = browser.execute_script(
        "return [...document.querySelectorAll('#node-fields dd.against')].map(e => e.textContent)"
    )
    assert "a different caption" in texts


def test_the_transcript_is_shown_and_the_line_under_the_playhead_highlighted(browser, serve, release_file):
    (row,) = rows_of_release(release_file)
    entries = sorted((float(e["time"]), e["text"]) for e in row["metadata"]["transcript"])
    served = serve([release_file])
    open_page(browser, served.url)
    assert browser.execute_script("return document.getElementById('transcript-panel').hidden") is False
    lines = browser.execute_script("return [...document.querySelectorAll('#transcript li')].map(e => e.textContent)")
    assert len(lines) == len(entries) and lines[1].endswith(entries[1][1])
    for index in (0, len(entries) // 2, len(entries) - 1):
        t = entries[index][0] + 0.001
        browser.execute_script(f"A100M.highlight({t})")
        spoken = browser.execute_script(
            "return [...document.querySelectorAll('#transcript li.spoken')].map(e => Number(e.dataset.time))"
        )
        assert spoken == [max(time for time, _ in entries if time <= t)]


def rows_of_release(path) -> list[dict]:
    from action100m.common.release import read_rows

    return read_rows(path)


def at_viewport(browser, width: int, height: int) -> None:
    """The page's viewport exactly this size (as a screen of that size shows it)."""
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )


@pytest.fixture
def small_screen(browser):
    at_viewport(browser, 1280, 720)
    yield browser
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def rect(browser, selector: str) -> dict:
    return browser.execute_script(f"return document.querySelector('{selector}').getBoundingClientRect().toJSON()")


def test_the_details_sit_beside_the_timeline_and_the_legend_names_the_colours(small_screen, serve, demo_output):
    browser = small_screen
    served = serve([demo_output / "out"])
    open_page(browser, served.url)
    assert "Click a box" in browser.find_element("id", "details").text  # says what a click does before one
    node = browser.execute_script("return A100M.state.video.nodes.find(n => n.level === 1)")
    browser.find_element("css selector", f'#timeline .node[data-id="{node["id"]}"]').click()
    wait(browser, "A100M.state.selected !== null")
    details, timeline, player = rect(browser, "#details"), rect(browser, "#timeline"), rect(browser, "#player")
    assert details["left"] >= timeline["right"] and details["top"] < 720 and timeline["bottom"] <= 720  # no scrolling
    assert node["plm_caption"][:40] in browser.find_element("id", "details").text
    assert player["height"] <= 0.35 * 720  # the player leaves the page to the timeline
    legend = browser.find_element("id", "legend").text
    assert "annotated (gpt)" in legend and "not annotated" in legend and "under the playhead" in legend
    box_colour = (  # a box of these classes, as the timeline's stylesheet paints it
        "const box = document.createElement('div'); box.className = arguments[0];"
        "document.querySelector('#timeline .track').appendChild(box);"
        "const colour = getComputedStyle(box).backgroundColor; box.remove(); return colour"
    )
    for swatch, classes in (("gpt", "node gpt"), ("plain", "node"), ("playing", "node gpt playing")):
        shown = browser.execute_script(
            f"return getComputedStyle(document.querySelector('#legend .{swatch}')).backgroundColor"
        )
        assert shown == browser.execute_script(box_colour, classes), swatch


def test_a_zoomed_timeline_follows_the_playhead(browser, serve, demo_output):
    served = serve([demo_output / "out"])
    open_page(browser, served.url)
    wait(browser, "document.getElementById('player').readyState >= 1")
    span = browser.execute_script("return A100M.state.span")
    browser.execute_script(f"A100M.setView(0, {span / 8})")
    browser.execute_script(f"document.getElementById('player').currentTime = {span * 0.7}")
    wait(browser, f"A100M.state.view.start <= {span * 0.7} && {span * 0.7} <= A100M.state.view.end")
    shown = view(browser)
    assert abs((shown["end"] - shown["start"]) - span / 8) < 1e-6  # the same zoom, a page further


def test_search_finds_video_ids_and_transcript_lines_and_says_when_nothing_matches(browser, serve, release_file):
    from action100m.common.release import read_rows

    (row, *_) = read_rows(release_file)
    line = next(e for e in row["metadata"]["transcript"] if len(e["text"].split()) >= 4 and float(e["time"]) > 30)
    served = serve([release_file])
    open_page(browser, served.url)
    search = browser.find_element("id", "search")
    search.send_keys(row["video_uid"][:8])
    wait(browser, "!document.getElementById('results').hidden")
    assert "(title / id)" in browser.find_elements("css selector", "#results li")[0].text
    search.clear()
    search.send_keys(line["text"][:24].strip())  # as written (the release's auto-captions have double spaces)
    wait(browser, "[...document.querySelectorAll('#results li')].some(li => li.textContent.includes('(transcript'))")
    hit = next(li for li in browser.find_elements("css selector", "#results li") if "(transcript" in li.text)
    hit.click()
    wait(browser, "A100M.state.selected !== null")
    selected = browser.execute_script("return [A100M.state.selected.start, A100M.state.selected.end]")
    assert selected[0] <= float(line["time"]) < selected[1]
    search.clear()
    search.send_keys("zzqxj nowhere")
    wait(browser, "document.querySelector('#results li.none') !== null")
    assert browser.find_element("css selector", "#results li.none").text.startswith("nothing matches")


SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "images"


@pytest.mark.parametrize("size", [(1280, 720), (1920, 1080)])
def test_screenshots_of_the_page_for_the_docs(browser, serve, released_sample, tmp_path, size):
    """The docs' pictures of the viewer, made here: written to docs/images/ when
    A100M_WRITE_SCREENSHOTS=1 (`make screenshots`), else to the test's folder; either way the node's
    details show in the picture, beside the timeline."""
    import os

    from PIL import Image

    width, height = size
    at_viewport(browser, width, height)
    try:
        served = serve([released_sample])
        open_page(browser, served.url)
        node = browser.execute_script("return A100M.state.video.nodes.find(n => n.level === 3 && n.gpt)")
        browser.execute_script(f"A100M.setView({node['start'] - 60}, {node['end'] + 120})")
        browser.find_element("css selector", f'#timeline .node[data-id="{node["id"]}"]').click()
        wait(browser, "A100M.state.selected !== null")
        png = browser.get_screenshot_as_png()
        details = rect(browser, "#details")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    folder = SCREENSHOTS if os.environ.get("A100M_WRITE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"viewer-{width}x{height}.png").write_bytes(png)
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.size == (width, height)
    panel = image.crop((int(details["left"]) + 2, int(details["top"]) + 2, int(details["right"]) - 2, height - 2))
    assert len(panel.getcolors(maxcolors=1 << 20) or []) > 20  # text in the panel, not an empty box
