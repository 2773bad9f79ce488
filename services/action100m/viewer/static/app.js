// The Tree-of-Captions viewer. Data arrive as scripts calling A100M.add(name, payload), so the same
// page works from the server and from file://. Every dataset text is written with textContent or as
// a DOM property: nothing from a dataset is ever parsed as HTML.
"use strict";

const A100M = (() => {
  const loaded = new Map();  // data file name -> its payload
  const pending = new Map();  // data file name -> { promise, resolve } while it loads
  const state = {
    videoNumber: null, video: null, byId: new Map(), children: new Map(), levels: [], selected: null, playing: [],
    span: 1, view: { start: 0, end: 1 },  // the video's length and the seconds the timeline shows
    transcript: [], spoken: null,  // the video's transcript lines, and the one under the playhead
  };
  const LABEL_MIN_PX = 36;  // a box narrower than this shows no text
  const TICK_PX = 70;  // about one time-axis tick per this many pixels
  // Over HTTP the data files are fetched and parsed, so a payload dropped from `loaded` is freed;
  // from file://, where a page may not fetch, they run as scripts that call add().
  const overHttp = location.protocol === "http:" || location.protocol === "https:";

  function add(name, payload) {
    loaded.set(name, payload);
    const entry = pending.get(name);
    if (entry) entry.resolve(payload);
  }

  async function fetchData(name) {
    const response = await fetch(`data/${name}.js`);
    if (!response.ok) throw new Error(`cannot load data/${name}.js (${response.status})`);
    const text = await response.text();  // A100M.add("NAME",{...});
    return JSON.parse(text.slice(text.indexOf(",") + 1, text.lastIndexOf(")")));
  }

  function load(name) {
    if (loaded.has(name)) return Promise.resolve(loaded.get(name));
    if (!pending.has(name)) {
      let resolve, reject;
      const promise = new Promise((yes, no) => { resolve = yes; reject = no; });
      pending.set(name, { promise, resolve });
      promise.finally(() => pending.delete(name)).catch(() => {});
      if (overHttp) {
        fetchData(name).then((payload) => add(name, payload), reject);
      } else {
        const script = document.createElement("script");
        script.src = `data/${name}.js`;
        script.onload = () => script.remove();
        script.onerror = () => reject(new Error(`cannot load data/${name}.js`));
        document.body.appendChild(script);
      }
    }
    return pending.get(name).promise;
  }

  const $ = (id) => document.getElementById(id);

  function clock(seconds) {
    const s = Math.max(0, seconds);
    const m = Math.floor(s / 60);
    return `${m}:${(s - m * 60).toFixed(2).padStart(5, "0")}`;
  }

  function cell(row, text) {
    const td = document.createElement("td");
    td.textContent = text;
    row.appendChild(td);
  }

  async function start() {
    const index = await load("index");
    if (index.against) {
      $("against-line").hidden = false;
      $("legend-differs").hidden = false;
      $("against-name").textContent = index.against;
    }
    const rows = $("video-rows");
    index.videos.forEach((video, number) => {
      const row = document.createElement("tr");
      row.dataset.number = String(number);
      cell(row, video.title || video.uid);
      cell(row, clock(video.duration));
      cell(row, String(video.nodes));
      cell(row, String(video.annotated));
      row.addEventListener("click", () => openVideo(number));
      rows.appendChild(row);
    });
    $("search").addEventListener("input", onSearch);
    const timeline = $("timeline");
    timeline.addEventListener("keydown", onKey);
    timeline.addEventListener("wheel", onWheel, { passive: false });
    timeline.addEventListener("pointerdown", onPointerDown);
    timeline.addEventListener("click", swallowDragClick, true);
    window.addEventListener("resize", () => scheduleLayout());
    // the track's width also changes without the window's (a scrollbar appears, the panel beside it fills)
    if (window.ResizeObserver) new ResizeObserver(() => scheduleLayout()).observe(timeline);
    $("player").addEventListener("timeupdate", onTime);
    $("player").addEventListener("seeked", onTime);
    const wanted = /v=(\d+)/.exec(location.hash);
    if (index.videos.length) await openVideo(wanted ? Number(wanted[1]) : 0);
    document.body.dataset.readyMs = String(Math.round(performance.now()));  // since navigation start
    document.body.dataset.ready = "1";
  }

  async function openVideo(number, nodeId) {
    const video = await load(`video-${number}`);
    state.videoNumber = number;
    state.video = video;
    document.querySelectorAll("#video-rows tr").forEach((row) => row.classList.toggle("current", row.dataset.number === String(number)));
    $("video").hidden = false;
    $("title").textContent = video.title || video.uid;
    const player = $("player");
    if (video.media) {
      player.hidden = false;
      if (player.getAttribute("src") !== video.media) player.src = video.media;
    } else {
      player.hidden = true;
      player.removeAttribute("src");
      player.load();
    }
    $("youtube-line").hidden = !video.youtube;
    if (video.youtube) $("youtube").href = video.youtube;
    buildTimeline(video);
    buildTranscript(video);
    showDetails(false);
    history.replaceState(null, "", `#v=${number}`);
    if (nodeId) select(state.byId.get(nodeId), true);
    else highlight(0);
  }

  // One row per level: a label, then a track of boxes placed by the view window (state.view);
  // a time axis on top. Zoom and pan only change the window and re-place the boxes.
  function buildTimeline(video) {
    const timeline = $("timeline");
    timeline.textContent = "";
    state.byId = new Map();
    state.children = new Map();
    state.levels = [];
    state.selected = null;
    state.playing = [];
    state.span = video.duration || Math.max(1e-9, ...video.nodes.map((n) => n.end));
    state.view = { start: 0, end: state.span };
    for (const node of video.nodes) {
      state.byId.set(node.id, node);
      (state.levels[node.level] ||= []).push(node);
      if (node.parent) {
        if (!state.children.has(node.parent)) state.children.set(node.parent, []);
        state.children.get(node.parent).push(node);
      }
    }
    state.children.forEach((list) => list.sort((a, b) => a.start - b.start));
    const fragment = document.createDocumentFragment();
    fragment.appendChild(row("axis", "time", "seconds from the start"));
    state.levels.forEach((nodes = [], level) => {
      nodes.sort((a, b) => a.start - b.start);
      const track = row("level", `L${level}`, `level ${level}: ${nodes.length} nodes`).lastChild;
      track.parentNode.dataset.level = String(level);
      for (const node of nodes) {
        const box = document.createElement("div");
        box.className = node.gpt ? "node gpt" : "node";
        if (video.against && differs(node, video.against[node.id])) box.classList.add("differs");
        box.dataset.id = node.id;
        box.title = `${clock(node.start)} - ${clock(node.end)}: ${brief(node) || "(no action)"}`;
        box.addEventListener("click", () => select(node, true));
        node.box = box;
        node.label = "";
        track.appendChild(box);
      }
      fragment.appendChild(track.parentNode);
    });
    timeline.appendChild(fragment);
    layout();
  }

  function row(kind, label, title) {
    const line = document.createElement("div");
    line.className = kind;
    const name = document.createElement("span");
    name.className = "row-label";
    name.textContent = label;
    name.title = title;
    const track = document.createElement("div");
    track.className = "track";
    line.append(name, track);
    return line;
  }

  const COMPARED = ["plm_caption", "plm_action", "llama3_caption", "gpt"];

  // Whether the other dataset (--against) has this node with other texts, or lacks it.
  function differs(node, other) {
    return !other || COMPARED.some((name) => JSON.stringify(node[name] ?? null) !== JSON.stringify(other[name] ?? null));
  }

  // What a box says: the annotation's brief action, else the captioner's action.
  function brief(node) {
    const gpt = node.gpt && typeof node.gpt === "object" ? node.gpt : null;
    return (gpt && gpt.action && gpt.action.brief) || node.plm_action || "";
  }

  function trackWidth() {
    const track = document.querySelector("#timeline .track");
    return track ? track.clientWidth : 0;
  }

  let layoutFrame = 0;
  function scheduleLayout() {
    if (!layoutFrame) layoutFrame = requestAnimationFrame(() => { layoutFrame = 0; layout(); });
  }

  // Places every box in the view window, with its text when it is wide enough, and redraws the axis.
  function layout() {
    const { start, end } = state.view;
    const seconds = end - start;
    const width = trackWidth();
    for (const nodes of state.levels) {
      for (const node of nodes || []) {
        const box = node.box;
        if (node.end <= start || node.start >= end) {
          box.style.display = "none";
          continue;
        }
        box.style.display = "";
        box.style.left = `${(100 * (node.start - start)) / seconds}%`;
        box.style.width = `${(100 * (node.end - node.start)) / seconds}%`;
        const label = (width * (node.end - node.start)) / seconds >= LABEL_MIN_PX ? brief(node) : "";
        if (label !== node.label) {
          box.textContent = label;
          node.label = label;
        }
      }
    }
    drawAxis(width);
    const zoom = state.span / seconds;
    $("zoom").textContent = `${clock(start)} - ${clock(end)}` + (zoom > 1.01 ? ` (×${zoom.toFixed(zoom < 10 ? 1 : 0)})` : "");
  }

  // Ticks at a round step (1, 2 or 5 times a power of ten seconds) about TICK_PX apart.
  function drawAxis(width) {
    const track = document.querySelector("#timeline .axis .track");
    if (!track) return;
    const { start, end } = state.view;
    const rough = ((end - start) * TICK_PX) / Math.max(width, 1);
    const power = 10 ** Math.floor(Math.log10(rough));
    const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= rough);
    const decimals = Math.max(0, -Math.floor(Math.log10(step)));
    track.textContent = "";
    for (let t = Math.ceil(start / step) * step; t <= end + step * 1e-6; t += step) {
      const tick = document.createElement("span");
      tick.className = "tick";
      tick.style.left = `${(100 * (t - start)) / (end - start)}%`;
      tick.textContent = tickText(t, decimals);
      tick.dataset.seconds = String(t);
      track.appendChild(tick);
    }
  }

  function tickText(t, decimals) {
    const m = Math.floor(t / 60 + 1e-9);
    const s = Math.max(0, t - m * 60);
    return `${m}:${s.toFixed(decimals).padStart(decimals ? 3 + decimals : 2, "0")}`;
  }

  // The view window, kept inside the video and no narrower than a twentieth of a second.
  function setView(start, end) {
    const seconds = Math.min(state.span, Math.max(end - start, Math.min(0.05, state.span)));
    const from = Math.min(Math.max(0, start), state.span - seconds);
    state.view = { start: from, end: from + seconds };
    scheduleLayout();
  }

  // Zoom by `factor` (> 1 zooms in) keeping time `at` where it is on the screen.
  function zoom(factor, at) {
    const { start, end } = state.view;
    const pivot = at === undefined ? (start + end) / 2 : at;
    setView(pivot - (pivot - start) / factor, pivot + (end - pivot) / factor);
  }

  function pan(seconds) {
    setView(state.view.start + seconds, state.view.end + seconds);
  }

  function timeAt(clientX) {
    const track = document.querySelector("#timeline .track");
    const box = track.getBoundingClientRect();
    const { start, end } = state.view;
    return start + ((clientX - box.left) / Math.max(box.width, 1)) * (end - start);
  }

  // Wheel: zoom around the pointer; a sideways wheel (or Shift) pans.
  function onWheel(event) {
    if (!state.video) return;
    event.preventDefault();
    const sideways = event.shiftKey || Math.abs(event.deltaX) > Math.abs(event.deltaY);
    if (sideways) {
      const pixels = event.deltaX || event.deltaY;
      pan((pixels * (state.view.end - state.view.start)) / Math.max(trackWidth(), 1));
    } else zoom(Math.exp(-event.deltaY * 0.002), timeAt(event.clientX));
  }

  // Drag: pans; a press that moves less than a few pixels stays a click (selects the box).
  let drag = null;
  function onPointerDown(event) {
    if (event.button !== 0 || !state.video) return;
    drag = { x: event.clientX, view: { ...state.view }, moved: false };
    const move = (e) => {
      const dx = e.clientX - drag.x;
      if (!drag.moved && Math.abs(dx) < 4) return;
      drag.moved = true;
      const seconds = drag.view.end - drag.view.start;
      const shift = (-dx * seconds) / Math.max(trackWidth(), 1);
      setView(drag.view.start + shift, drag.view.end + shift);
    };
    const up = () => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", up);
      setTimeout(() => { drag = null; }, 0);  // after the click that ends the drag
    };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  }

  function swallowDragClick(event) {
    if (drag && drag.moved) {
      event.stopPropagation();
      event.preventDefault();
    }
  }

  // Brings a node into the view (zooming out only as much as it needs).
  function reveal(node) {
    const { start, end } = state.view;
    if (node.start >= start && node.end <= end) return;
    const seconds = Math.max(end - start, (node.end - node.start) * 1.1);
    const centre = (node.start + node.end) / 2;
    setView(centre - seconds / 2, centre + seconds / 2);
  }

  // The transcript beside the tree: one line per entry; the one being spoken follows the playhead,
  // and clicking a line seeks there.
  function buildTranscript(video) {
    const list = $("transcript");
    list.textContent = "";
    state.transcript = (video.transcript || []).map(([time, text]) => {
      const item = document.createElement("li");
      const stamp = document.createElement("span");
      stamp.className = "stamp";
      stamp.textContent = clock(time);
      item.append(stamp, document.createTextNode(` ${text}`));
      item.dataset.time = String(time);
      item.addEventListener("click", () => playFrom(time));
      list.appendChild(item);
      return { start: time, item };
    });
    state.spoken = null;
    $("transcript-panel").hidden = state.transcript.length === 0;
  }

  // The transcript line being spoken at t: the last one starting at or before t.
  function spokenAt(t) {
    let low = 0;
    let high = state.transcript.length - 1;
    let found = null;
    while (low <= high) {
      const middle = (low + high) >> 1;
      if (state.transcript[middle].start <= t) {
        found = state.transcript[middle];
        low = middle + 1;
      } else high = middle - 1;
    }
    return found;
  }

  // The node of `nodes` (sorted by start, not overlapping) covering time t: start <= t < end.
  function covering(nodes, t) {
    let low = 0;
    let high = nodes.length - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      if (nodes[middle].start <= t) {
        found = middle;
        low = middle + 1;
      } else high = middle - 1;
    }
    return found >= 0 && t < nodes[found].end ? nodes[found] : null;
  }

  // The playhead moved: highlight what it covers, and keep it in a zoomed view (the view turns a
  // page, the playhead a tenth in from the left, when it leaves the window).
  function onTime() {
    const t = $("player").currentTime;
    highlight(t);
    const { start, end } = state.view;
    const seconds = end - start;
    if (!(drag && drag.moved) && seconds < state.span && (t < start || t > end)) setView(t - 0.1 * seconds, t + 0.9 * seconds);
  }

  function showDetails(shown) {
    $("details-empty").hidden = shown;
    $("node-details").hidden = !shown;
  }

  // The node of each level that covers t, root first.
  function coveringAt(t) {
    return state.levels.map((nodes) => (nodes ? covering(nodes, t) : null)).filter(Boolean);
  }

  // The player (when there is one) at t, and the highlights there.
  function playFrom(t) {
    const player = $("player");
    if (!player.hidden) player.currentTime = t;
    highlight(t);
  }

  function highlight(t) {
    state.playing.forEach((node) => node.box.classList.remove("playing"));
    state.playing = coveringAt(t);
    state.playing.forEach((node) => node.box.classList.add("playing"));
    const spoken = state.transcript && state.transcript.length ? spokenAt(t) : null;
    if (spoken !== state.spoken) {
      if (state.spoken) state.spoken.item.classList.remove("spoken");
      if (spoken) {
        spoken.item.classList.add("spoken");
        const list = $("transcript");  // keep it in view inside the list, without scrolling the page
        const top = spoken.item.offsetTop - list.offsetTop;
        if (top < list.scrollTop || top > list.scrollTop + list.clientHeight - spoken.item.offsetHeight) {
          list.scrollTop = top - list.clientHeight / 3;
        }
      }
      state.spoken = spoken;
    }
  }

  const shown = (value) => (value === null || value === undefined ? "" : typeof value === "string" ? value : JSON.stringify(value, null, 1));

  // One field of the selected node; with --against, the other dataset's value under it, the name
  // marked where they differ.
  function field(list, name, value, other) {
    const comparing = other !== undefined;
    if (shown(value) === "" && (!comparing || shown(other) === "")) return;
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = shown(value);
    list.append(dt, dd);
    if (!comparing) return;
    const against = document.createElement("dd");
    against.className = "against";
    against.textContent = shown(other) || "(none)";
    list.append(against);
    if (shown(value) !== shown(other)) dt.classList.add("differs");
  }

  function valueAt(node, path) {
    return path.split(".").reduce((value, part) => (value && typeof value === "object" ? value[part] : undefined), node);
  }

  function select(node, seek) {
    if (!node) return;
    if (state.selected) state.selected.box.classList.remove("selected");
    state.selected = node;
    node.box.classList.add("selected");
    showDetails(true);
    $("node-times").textContent = `level ${node.level}: ${clock(node.start)} - ${clock(node.end)} (${(node.end - node.start).toFixed(2)} s)`;
    const list = $("node-fields");
    list.textContent = "";
    const against = state.video.against ? state.video.against[node.id] || null : undefined;
    $("against-note").hidden = against !== null;
    const other = (path) => (against === undefined ? undefined : valueAt(against || {}, path));
    for (const name of ["plm_caption", "plm_action", "llama3_caption"]) field(list, name, node[name], other(name));
    const gpt = node.gpt;
    const otherGpt = other("gpt");
    const groups = new Set([...Object.keys(gpt && typeof gpt === "object" ? gpt : {}), ...Object.keys(otherGpt && typeof otherGpt === "object" ? otherGpt : {})]);
    if (groups.size) {
      for (const group of groups) {
        const values = { ...((gpt || {})[group] || {}), ...((otherGpt || {})[group] || {}) };
        for (const name of Object.keys(values)) {
          const path = `gpt.${group}.${name}`;
          field(list, path, valueAt(node, path), other(path));
        }
      }
    } else field(list, "gpt", gpt, otherGpt);
    const player = $("player");
    if (seek && !player.hidden) player.currentTime = node.start;
    reveal(node);
    highlight(node.start);
    $("timeline").focus({ preventScroll: true });
  }

  // Keys: + and - zoom (around the selected node), 0 shows the whole video, Shift+arrows pan;
  // the arrows move through the tree.
  function onKey(event) {
    const seconds = state.view.end - state.view.start;
    const centre = state.selected ? (state.selected.start + state.selected.end) / 2 : undefined;
    const views = {
      "+": () => zoom(1.5, centre),
      "=": () => zoom(1.5, centre),
      "-": () => zoom(1 / 1.5, centre),
      "_": () => zoom(1 / 1.5, centre),
      "0": () => setView(0, state.span),
    };
    if (event.key in views && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      views[event.key]();
      return;
    }
    if (event.shiftKey && (event.key === "ArrowLeft" || event.key === "ArrowRight")) {
      event.preventDefault();
      pan((event.key === "ArrowLeft" ? -0.25 : 0.25) * seconds);
      return;
    }
    const node = state.selected;
    if (!node) return;
    const siblings = node.parent ? state.children.get(node.parent) : state.levels[node.level];
    const position = siblings.indexOf(node);
    const moves = {
      ArrowUp: () => state.byId.get(node.parent),
      ArrowDown: () => (state.children.get(node.id) || [])[0],
      ArrowLeft: () => siblings[position - 1],
      ArrowRight: () => siblings[position + 1],
    };
    if (!(event.key in moves)) return;
    event.preventDefault();
    select(moves[event.key](), true);
  }

  let searchTimer = null;
  function onSearch() {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, 120);
  }

  const MAX_HITS = 50;
  const KEPT_SEARCH_PARTS = 4;  // ~90 MB of text; later parts are read again per query
  let searchToken = 0;

  // The index comes in parts (see catalog.py): read them in order until MAX_HITS are shown, and
  // give up on a query as soon as a newer one is typed.
  async function runSearch() {
    const token = ++searchToken;
    const query = $("search").value.trim().toLowerCase();
    const results = $("results");
    results.textContent = "";
    results.hidden = true;
    if (query.length < 2) return;
    const index = await load("index");
    let shown = 0;
    for (let part = 0; part < index.search_parts && shown < MAX_HITS; part++) {
      const name = `search-${part}`;
      const search = await load(name);
      if (part >= KEPT_SEARCH_PARTS) loaded.delete(name);
      if (token !== searchToken) return;
      for (const [number, nodeId, text, at] of search.entries) {
        if (!text.includes(query)) continue;
        results.appendChild(resultItem(index.videos[number], number, nodeId, text, query, at));
        results.hidden = false;
        if (++shown === MAX_HITS) break;
      }
    }
    if (!shown) {
      const none = document.createElement("li");
      none.className = "none";
      none.textContent = `nothing matches “${query}” (titles, video ids, transcripts, captions, annotations)`;
      results.appendChild(none);
      results.hidden = false;
    }
  }

  // A hit: a node's texts (opens it), a title or video id (opens the video), or a transcript line
  // (`at`: its time; opens the video there).
  function resultItem(video, number, nodeId, text, query, at) {
    const item = document.createElement("li");
    const found = text.indexOf(query);
    const where = at !== undefined ? `transcript ${clock(at)}` : nodeId ? "segment" : "title / id";
    const label = document.createElement("span");
    label.className = "where";
    label.textContent = ` (${where})`;
    item.append(`${video.title || video.uid}: …${text.slice(Math.max(0, found - 40), found + query.length + 60)}…`, label);
    item.addEventListener("click", async () => {
      $("results").hidden = true;
      await openVideo(number, nodeId || undefined);
      if (at !== undefined) seekTo(at);
    });
    return item;
  }

  // Play from `t` with the deepest node covering it selected.
  function seekTo(t) {
    const deepest = coveringAt(t).pop();
    if (deepest) select(deepest, false);
    playFrom(t);
  }

  return { add, load, start, openVideo, highlight, layout, setView, zoom, pan, state };
})();

document.addEventListener("DOMContentLoaded", () => {
  A100M.start().catch((error) => {
    document.body.dataset.error = String(error);
    console.error(error);
  });
});
