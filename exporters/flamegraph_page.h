// The flame graph page template (internal to flamegraph.cpp). @TITLE@ is replaced by the
// HTML-escaped title and @DATA@ by the JSON document; nothing else is substituted.
#pragma once

namespace hostprof::detail {

inline constexpr const char kFlameGraphPage[] = R"PAGE(<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@TITLE@</title>
<style>
  body { margin: 0; font: 13px system-ui, -apple-system, "Segoe UI", sans-serif; background: #fafafa; color: #222; }
  header { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; padding: 8px 12px;
           background: #2d333b; color: #eee; }
  header h1 { font-size: 15px; margin: 0 12px 0 0; font-weight: 600; }
  header label { display: flex; gap: 4px; align-items: center; }
  header input, header select, header button { font: inherit; padding: 3px 6px; border-radius: 4px;
           border: 1px solid #667; background: #f6f8fa; color: #222; }
  header button { cursor: pointer; }
  #summary { margin-left: auto; color: #cdd; }
  #matched { color: #f8c; }
  #crumbs { padding: 4px 12px; color: #555; min-height: 18px; }
  #fg { position: relative; margin: 0 12px 12px; }
  .frame { position: absolute; height: 17px; box-sizing: border-box; border: 1px solid #fafafa;
           border-radius: 2px; overflow: hidden; white-space: nowrap; text-overflow: ellipsis;
           padding: 0 3px; line-height: 15px; font: 11px ui-monospace, Menlo, Consolas, monospace;
           cursor: pointer; color: #111; }
  .frame:hover { border-color: #333; }
  .frame.ancestor { opacity: 0.55; }
  .frame.match { background: #e040c0 !important; color: #fff; }
  #tip { position: fixed; pointer-events: none; display: none; background: #222; color: #eee;
         padding: 6px 8px; border-radius: 4px; font: 12px ui-monospace, Menlo, monospace;
         max-width: 70vw; word-break: break-all; z-index: 10; }
  #legend { padding: 0 12px 8px; color: #666; font-size: 12px; }
  #legend span { display: inline-block; width: 10px; height: 10px; margin: 0 4px 0 12px; border-radius: 2px; }
</style>
</head>
<body>
<header>
  <h1 id="title">@TITLE@</h1>
  <label>Service <select id="group"></select></label>
  <label>Search <input id="search" type="search" placeholder="regex, e.g. ^malloc" size="28"></label>
  <button id="reset" type="button">Reset zoom</button>
  <span id="matched"></span>
  <span id="summary"></span>
</header>
<div id="crumbs"></div>
<div id="fg"></div>
<div id="legend">Click a frame to zoom, click a dimmed frame to zoom out.
  <span style="background:hsl(20,75%,62%)"></span>user <span style="background:hsl(200,55%,62%)"></span>kernel
  <span style="background:#bbb"></span>unknown</div>
<div id="tip"></div>
<script type="application/json" id="hostprof-data">@DATA@</script>
<script>
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("hostprof-data").textContent);
  const ROW = 18;
  const fg = document.getElementById("fg");
  const tip = document.getElementById("tip");
  const groupSel = document.getElementById("group");
  const search = document.getElementById("search");
  let root = null, focus = null, pattern = null;

  function fmt(v) {
    const u = data.unit;
    if (u === "nanoseconds") {
      if (v >= 1e9) return (v / 1e9).toFixed(2) + " s";
      if (v >= 1e6) return (v / 1e6).toFixed(2) + " ms";
      if (v >= 1e3) return (v / 1e3).toFixed(2) + " \u00b5s";
      return v + " ns";
    }
    if (u === "bytes") {
      if (v >= 1 << 30) return (v / (1 << 30)).toFixed(2) + " GiB";
      if (v >= 1 << 20) return (v / (1 << 20)).toFixed(2) + " MiB";
      if (v >= 1 << 10) return (v / (1 << 10)).toFixed(2) + " KiB";
      return v + " B";
    }
    return v.toLocaleString("en-US") + (u === "count" ? " samples" : " " + u);
  }
  function pct(v, total) { return total > 0 ? (100 * v / total).toFixed(2) + "%" : "0%"; }

  function hash(s) { let h = 2166136261; for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 16777619); } return h >>> 0; }
  function color(n) {
    const [name, kind] = data.names[n];
    const h = hash(name);
    if (kind === 1) return "hsl(" + (185 + h % 30) + "," + (45 + (h >> 8) % 20) + "%," + (55 + (h >> 16) % 15) + "%)";
    if (kind === 2) return "hsl(0,0%," + (68 + h % 12) + "%)";
    return "hsl(" + (h % 55) + "," + (70 + (h >> 8) % 20) + "%," + (55 + (h >> 16) % 12) + "%)";
  }

  function node(n, parent) { return { n: n, v: 0, self: 0, kids: new Map(), parent: parent }; }
  function build(group) {
    const r = node(-1, null);
    for (const s of data.stacks) {
      if (group !== "" && s[0] !== Number(group)) continue;
      let cur = r;
      cur.v += s[1];
      for (let i = 2; i < s.length; i++) {
        let k = cur.kids.get(s[i]);
        if (!k) { k = node(s[i], cur); cur.kids.set(s[i], k); }
        k.v += s[1];
        cur = k;
      }
      cur.self += s[1];
    }
    return r;
  }
  function label(nd) { return nd.n < 0 ? "all" : data.names[nd.n][0]; }
  function matches(nd) { return pattern !== null && nd.n >= 0 && pattern.test(data.names[nd.n][0]); }

  function render() {
    const width = fg.clientWidth || 1000;
    const scale = focus.v > 0 ? 1 / focus.v : 0;
    const parts = [];
    let maxDepth = 0;
    const chain = [];
    for (let a = focus.parent; a; a = a.parent) chain.unshift(a);
    chain.forEach((a, d) => parts.push([a, 0, 1, d, true]));
    const base = chain.length;
    (function walk(nd, x, depth) {
      const w = nd.v * scale;
      if (w * width < 0.5) return;
      parts.push([nd, x, w, depth, false]);
      if (depth > maxDepth) maxDepth = depth;
      const kids = Array.from(nd.kids.values()).sort((p, q) => q.v - p.v || label(p).localeCompare(label(q)));
      let cx = x;
      for (const k of kids) { walk(k, cx, depth + 1); cx += k.v * scale; }
    })(focus, 0, base);
    fg.textContent = "";
    fg.style.height = ((Math.max(maxDepth, base) + 1) * ROW) + "px";
    const frag = document.createDocumentFragment();
    for (const [nd, x, w, depth, anc] of parts) {
      const el = document.createElement("div");
      el.className = "frame" + (anc ? " ancestor" : "") + (matches(nd) ? " match" : "");
      el.style.left = (100 * x) + "%";
      el.style.width = (100 * w) + "%";
      el.style.top = (depth * ROW) + "px";
      el.style.background = nd.n < 0 ? "hsl(30,10%,75%)" : color(nd.n);
      el.textContent = w * width > 24 ? label(nd) : "";
      el.dataset.name = label(nd);
      el._node = nd;
      frag.appendChild(el);
    }
    fg.appendChild(frag);
    document.getElementById("crumbs").textContent =
      chain.concat([focus]).map(label).join(" \u25b8 ");
    document.getElementById("summary").textContent =
      data.sample_type + ": " + fmt(root.v) + (focus !== root ? "  |  zoomed: " + fmt(focus.v) + " (" + pct(focus.v, root.v) + ")" : "");
    updateMatched();
  }

  function updateMatched() {
    const out = document.getElementById("matched");
    if (pattern === null) { out.textContent = ""; return; }
    let sum = 0;
    (function walk(nd) { if (matches(nd)) { sum += nd.v; return; } for (const k of nd.kids.values()) walk(k); })(root);
    out.textContent = "Matched: " + fmt(sum) + " (" + pct(sum, root.v) + ")";
  }

  function selectGroup() { root = build(groupSel.value); focus = root; render(); }

  fg.addEventListener("click", (e) => {
    const el = e.target.closest(".frame");
    if (!el || !el._node) return;
    focus = el._node;
    render();
  });
  fg.addEventListener("mousemove", (e) => {
    const el = e.target.closest(".frame");
    if (!el || !el._node) { tip.style.display = "none"; return; }
    const nd = el._node;
    tip.textContent = label(nd) + "\n" + fmt(nd.v) + " (" + pct(nd.v, root.v) + " of total" +
      (focus !== root ? ", " + pct(nd.v, focus.v) + " of zoom" : "") + "), self " + fmt(nd.self);
    tip.style.whiteSpace = "pre-wrap";
    tip.style.display = "block";
    tip.style.left = Math.min(e.clientX + 12, window.innerWidth - tip.offsetWidth - 4) + "px";
    tip.style.top = (e.clientY + 14) + "px";
  });
  fg.addEventListener("mouseleave", () => { tip.style.display = "none"; });
  document.getElementById("reset").addEventListener("click", () => {
    search.value = ""; pattern = null; focus = root; render();
  });
  function setSearch(q) {
    if (q === "") pattern = null;
    else {
      try { pattern = new RegExp(q, "i"); }
      catch (err) { pattern = new RegExp(q.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), "i"); }
    }
  }
  search.addEventListener("input", () => { setSearch(search.value); render(); });
  groupSel.addEventListener("change", selectGroup);
  window.addEventListener("resize", () => { if (root) render(); });

  const totals = data.groups.map(() => 0);
  let all = 0;
  for (const s of data.stacks) { all += s[1]; if (s[0] >= 0) totals[s[0]] += s[1]; }
  const opt = (value, text) => { const o = document.createElement("option"); o.value = value; o.textContent = text; groupSel.appendChild(o); };
  opt("", "all (" + pct(all, all) + ")");
  data.groups.map((g, i) => i).sort((a, b) => totals[b] - totals[a])
    .forEach((i) => opt(String(i), data.groups[i] + " (" + pct(totals[i], all) + ")"));
  if (!data.group_label) groupSel.parentElement.style.display = "none";

  // Deep links: #service=NAME&search=REGEX&zoom=FUNCTION (the widest frame of that name).
  const params = new URLSearchParams(location.hash.slice(1));
  const wanted = data.groups.indexOf(params.get("service"));
  if (wanted >= 0) groupSel.value = String(wanted);
  root = build(groupSel.value);
  focus = root;
  if (params.get("search")) { search.value = params.get("search"); setSearch(search.value); }
  if (params.get("zoom")) {
    let best = null;
    (function walk(nd) {
      if (label(nd) === params.get("zoom") && (!best || nd.v > best.v)) best = nd;
      for (const k of nd.kids.values()) walk(k);
    })(root);
    if (best) focus = best;
  }
  render();
})();
</script>
</body>
</html>
)PAGE";

} // namespace hostprof::detail
