// The Tree-of-Captions viewer. Data arrive as scripts calling A100M.add(name, payload), so the same
// page works from the server and from file://. Every dataset text is written with textContent or as
// a DOM property: nothing from a dataset is ever parsed as HTML.
"use strict";

const A100M = (() => {
  const loaded = new Map();  // data file name -> its payload
  const pending = new Map();  // data file name -> { promise, resolve } while it loads
  const state = { videoNumber: null, video: null, byId: new Map(), children: new Map(), levels: [], selected: null, playing: [] };
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
    $("timeline").addEventListener("keydown", onKey);
    $("player").addEventListener("timeupdate", () => highlight($("player").currentTime));
    $("player").addEventListener("seeked", () => highlight($("player").currentTime));
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
    $("details").hidden = true;
    history.replaceState(null, "", `#v=${number}`);
    if (nodeId) select(state.byId.get(nodeId), true);
    else highlight(0);
  }

  function buildTimeline(video) {
    const timeline = $("timeline");
    timeline.textContent = "";
    state.byId = new Map();
    state.children = new Map();
    state.levels = [];
    state.selected = null;
    state.playing = [];
    const span = video.duration || Math.max(1e-9, ...video.nodes.map((n) => n.end));
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
    state.levels.forEach((nodes = [], level) => {
      nodes.sort((a, b) => a.start - b.start);
      const row = document.createElement("div");
      row.className = "level";
      row.dataset.level = String(level);
      for (const node of nodes) {
        const box = document.createElement("div");
        box.className = node.gpt ? "node gpt" : "node";
        box.dataset.id = node.id;
        box.style.left = `${(100 * node.start) / span}%`;
        box.style.width = `${(100 * (node.end - node.start)) / span}%`;
        box.title = `${clock(node.start)} - ${clock(node.end)}`;
        box.textContent = node.plm_action || "";
        box.addEventListener("click", () => select(node, true));
        node.box = box;
        row.appendChild(box);
      }
      fragment.appendChild(row);
    });
    timeline.appendChild(fragment);
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

  function highlight(t) {
    state.playing.forEach((node) => node.box.classList.remove("playing"));
    state.playing = state.levels.map((nodes) => (nodes ? covering(nodes, t) : null)).filter(Boolean);
    state.playing.forEach((node) => node.box.classList.add("playing"));
  }

  function field(list, name, value) {
    if (value === null || value === undefined || value === "") return;
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = typeof value === "string" ? value : JSON.stringify(value, null, 1);
    list.append(dt, dd);
  }

  function select(node, seek) {
    if (!node) return;
    if (state.selected) state.selected.box.classList.remove("selected");
    state.selected = node;
    node.box.classList.add("selected");
    $("details").hidden = false;
    $("node-times").textContent = `level ${node.level}: ${clock(node.start)} - ${clock(node.end)} (${(node.end - node.start).toFixed(2)} s)`;
    const list = $("node-fields");
    list.textContent = "";
    field(list, "plm_caption", node.plm_caption);
    field(list, "plm_action", node.plm_action);
    field(list, "llama3_caption", node.llama3_caption);
    const gpt = node.gpt;
    if (gpt && typeof gpt === "object") {
      for (const [group, values] of Object.entries(gpt)) {
        if (values && typeof values === "object") {
          for (const [name, value] of Object.entries(values)) field(list, `gpt.${group}.${name}`, value);
        } else field(list, `gpt.${group}`, values);
      }
    } else field(list, "gpt", gpt);
    const player = $("player");
    if (seek && !player.hidden) player.currentTime = node.start;
    highlight(node.start);
    $("timeline").focus({ preventScroll: true });
  }

  function onKey(event) {
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
      for (const [number, nodeId, text] of search.entries) {
        if (!text.includes(query)) continue;
        results.appendChild(resultItem(index.videos[number], number, nodeId, text, query));
        results.hidden = false;
        if (++shown === MAX_HITS) break;
      }
    }
  }

  function resultItem(video, number, nodeId, text, query) {
    const item = document.createElement("li");
    const at = text.indexOf(query);
    item.textContent = `${video.title || video.uid}: …${text.slice(Math.max(0, at - 40), at + query.length + 60)}…`;
    item.addEventListener("click", () => {
      $("results").hidden = true;
      openVideo(number, nodeId || undefined);
    });
    return item;
  }

  return { add, load, start, openVideo, highlight, state };
})();

document.addEventListener("DOMContentLoaded", () => {
  A100M.start().catch((error) => {
    document.body.dataset.error = String(error);
    console.error(error);
  });
});
