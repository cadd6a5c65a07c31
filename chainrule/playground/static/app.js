// chainrule playground page: plain JavaScript, no libraries, no request leaves the server it came from.
// The server trains (chainrule); this page only draws what it is sent and forwards the user's actions.
"use strict";

const $ = (sel, el) => (el || document).querySelector(sel);
const $$ = (sel, el) => Array.from((el || document).querySelectorAll(sel));
const SVGNS = "http://www.w3.org/2000/svg";
const CLASS_COLORS = [[245, 147, 34], [8, 119, 189], [46, 160, 67], [148, 87, 191], [214, 39, 40]];
const NEG = [245, 147, 34], MID = [232, 234, 235], POS = [8, 119, 189];
const DATASETS = { classification: ["circle", "xor", "gauss", "spiral"], regression: ["plane", "multigauss"] };

const S = {
  state: null, index: {}, values: [], grads: [], deltas: [], heat: null, heatKind: "binary",
  thumbs: [], hist: null, playing: false, ws: null, wsReady: false, selected: null, chainPoint: null,
  addLabel: 1, phase: null, frames: 0, frameTimes: [], nodeEls: {}, edgeEls: {}, biasEls: {},
  lastHead: null, cardPinned: false, frameBusy: false,
};
window.__pg = S;  // for tests and curious readers

// ------------------------------------------------------------------------------------------
// colours
// ------------------------------------------------------------------------------------------
function mix(a, b, t) { return [0, 1, 2].map(i => Math.round(a[i] + (b[i] - a[i]) * t)); }
function colorOf(v) {  // v in [-1, 1]
  v = Math.max(-1, Math.min(1, v));
  return v < 0 ? mix(MID, NEG, -v) : mix(MID, POS, v);
}
const PAL = Array.from({ length: 256 }, (_, i) => colorOf(i / 127.5 - 1));
const rgb = c => `rgb(${c[0]},${c[1]},${c[2]})`;
function fmt(v, d) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  d = d || 6;
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-4 || a >= 1e5)) return v.toExponential(d - 2);
  return (v >= 0 ? "+" : "") + v.toPrecision(d);
}
function fmt3(v) { return v === null || v === undefined ? "–" : Number(v).toFixed(3); }

// ------------------------------------------------------------------------------------------
// talking to the server
// ------------------------------------------------------------------------------------------
function showError(msg) {
  const e = $("#error");
  if (msg) { e.textContent = "error: " + msg; e.hidden = false; } else { e.hidden = true; }
}
async function api(method, url, body, binary) {
  const opt = { method, headers: {} };
  if (body !== undefined) {
    if (typeof body === "string") { opt.body = body; opt.headers["Content-Type"] = "text/plain"; }
    else { opt.body = JSON.stringify(body); opt.headers["Content-Type"] = "application/json"; }
  }
  const r = await fetch(url, opt);
  if (!r.ok) {
    let msg = r.statusText;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    showError(msg);
    throw new Error(msg);
  }
  if (method !== "GET") showError(null);   // a successful action clears the last error
  return binary ? r.arrayBuffer() : r.json();
}

// ------------------------------------------------------------------------------------------
// the URL holds the whole state (a link reproduces it)
// ------------------------------------------------------------------------------------------
function parseHash() {
  const out = {}, hide = [];
  const h = location.hash.replace(/^#/, "");
  if (!h) return out;
  for (const part of h.split("&")) {
    if (!part) continue;
    const i = part.indexOf("=");
    const k = decodeURIComponent(i < 0 ? part : part.slice(0, i));
    const v = i < 0 ? "true" : decodeURIComponent(part.slice(i + 1));
    const m = k.match(/^(\w+)_hide$/);   // Playground's own spelling: noise_hide=true
    if (m) { if (v === "true" || v === "1") hide.push(m[1]); continue; }
    out[k] = v;
  }
  if (hide.length) out.hide = (out.hide ? out.hide + "," : "") + hide.join(",");
  return out;
}
function writeHash() {
  const s = S.state.settings, parts = [];
  for (const [k, v] of Object.entries(s)) {
    if (Array.isArray(v)) { if (v.length || k === "networkShape") parts.push(`${k}=${v.join(",")}`); }
    else parts.push(`${k}=${encodeURIComponent(v)}`);
  }
  history.replaceState(null, "", "#" + parts.join("&"));
}

// ------------------------------------------------------------------------------------------
// state (structure) and frames (numbers and pictures)
// ------------------------------------------------------------------------------------------
function applyState(st) {
  S.state = st;
  S.index = {};
  st.parameters.forEach((p, i) => { S.index[p.name] = i; });
  S.values = st.parameters.map(p => p.value);
  S.grads = st.parameters.map(p => p.grad);
  S.deltas = st.parameters.map(p => p.delta);
  S.hist = { epoch: st.history.epoch.slice(), lossTrain: st.history.lossTrain.slice(),
             lossTest: st.history.lossTest.slice(), gradNorms: st.history.gradNorms.slice() };
  syncControls();
  buildDatasets();
  buildAddLabel();
  layoutNetwork();
  $("#epoch").textContent = st.epoch;
  $("#loss-train").textContent = fmt3(st.lossTrain);
  $("#loss-test").textContent = fmt3(st.lossTest);
  showAccuracy(st.accuracy, st.confusion);
  showFlags(st.flags);
  drawLossChart(); drawGradChart();
  writeHash();
}

function syncControls() {
  const s = S.state.settings;
  for (const el of $$("[data-setting]")) {
    const k = el.dataset.setting, v = s[k];
    if (el.type === "checkbox") el.checked = !!v;
    else if (el.tagName === "SELECT") {
      const val = String(v);
      if (![...el.options].some(o => (o.value || o.text) === val)) {
        const o = document.createElement("option"); o.text = val; el.add(o);
      }
      el.value = val;
    } else el.value = (el.type === "number" && (k === "stopEpoch" || k === "stopLoss") && !v) ? "" : v;
    const lab = $("#" + k + "-v"); if (lab) lab.textContent = v;
  }
  $("#classes").disabled = s.problem !== "classification";
  const hide = new Set(s.hide || []);
  for (const el of $$("[data-control]")) el.dataset.hidden = hide.has(el.dataset.control) ? "1" : "0";
  $("#layers-count").textContent = s.networkShape.length;
  $("#stop-reason").textContent = S.state.stopReason ? "stopped: " + S.state.stopReason : "";
}

function buildDatasets() {
  const box = $("#datasets"); box.innerHTML = "";
  const s = S.state.settings;
  for (const d of DATASETS[s.problem]) {
    const b = document.createElement("button");
    b.textContent = d; b.title = d; b.dataset.testid = "dataset-" + d;
    b.setAttribute("data-testid", "dataset-" + d);
    b.style.fontSize = "10px";
    if (d === s.dataset && !S.state.custom) b.classList.add("on");
    b.onclick = () => changeSettings({ dataset: d });
    box.appendChild(b);
  }
}

function buildAddLabel() {
  const box = $("#add-label"); box.innerHTML = "add: ";
  const st = S.state;
  const labels = st.task === "classification" ? [...Array(st.classes).keys()] : [-1, 1];
  if (!labels.includes(S.addLabel)) S.addLabel = labels[labels.length - 1];
  for (const l of labels) {
    const b = document.createElement("button");
    const c = st.task === "classification" ? (st.classes === 2 ? (l ? POS : NEG) : CLASS_COLORS[l]) : colorOf(l);
    b.style.background = rgb(c); b.title = "label " + l;
    b.setAttribute("data-testid", "add-label-" + l);
    if (l === S.addLabel) b.classList.add("on");
    b.onclick = () => { S.addLabel = l; buildAddLabel(); };
    box.appendChild(b);
  }
}

function decodeFrame(buf) {
  const dv = new DataView(buf);
  const n = dv.getUint32(0, true);
  const head = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 4, n)));
  let off = 4 + n;
  const G = head.heat.size, T = head.thumbs.size;
  const heat = [], thumbs = [];
  for (let c = 0; c < head.heat.channels; c++) { heat.push(new Uint8Array(buf, off, G * G)); off += G * G; }
  for (let t = 0; t < head.thumbs.count; t++) { thumbs.push(new Uint8Array(buf, off, T * T)); off += T * T; }
  return { head, heat, thumbs };
}

async function applyFrame(buf) {
  const t0 = performance.now();
  const { head, heat, thumbs } = decodeFrame(buf);
  if (!S.state || head.dataVersion !== S.state.dataVersion || head.modelVersion !== S.state.modelVersion) {
    applyState(await api("GET", "/api/state"));
  }
  S.lastHead = head;
  S.values = head.values; S.grads = head.grads; S.deltas = head.deltas;
  S.heat = heat; S.heatKind = head.heat.kind; S.heatSize = head.heat.size;
  S.thumbs = thumbs; S.thumbSize = head.thumbs.size;
  S.state.epoch = head.epoch; S.state.lastBatch = head.lastBatch;
  $("#epoch").textContent = head.epoch;
  $("#loss-train").textContent = fmt3(head.lossTrain);
  $("#loss-test").textContent = fmt3(head.lossTest);
  const h = S.hist;
  if (head.epoch > 0 && (h.epoch.length === 0 || h.epoch[h.epoch.length - 1] < head.epoch)) {
    h.epoch.push(head.epoch); h.lossTrain.push(head.lossTrain); h.lossTest.push(head.lossTest);
    if (head.gradNorms) h.gradNorms.push(head.gradNorms);
  }
  showAccuracy(head.accuracy, head.confusion);
  showFlags(head.flags);
  $("#stop-reason").textContent = head.stopReason ? "stopped: " + head.stopReason : "";
  if (!head.playing && S.playing && head.stopReason) setPlaying(false, true);
  drawHeat(); drawThumbs(); styleNetwork(); drawLossChart(); drawGradChart();
  S.frames++;
  S.drawMs = (S.drawMs || 0) + performance.now() - t0;   // script time spent on frames
  const now = performance.now();
  S.frameTimes.push(now);
  while (S.frameTimes.length && now - S.frameTimes[0] > 2000) S.frameTimes.shift();
  if (S.frameTimes.length > 1) {
    const span = (S.frameTimes[S.frameTimes.length - 1] - S.frameTimes[0]) / 1000;
    $("#rate").textContent = span > 0 ? ((S.frameTimes.length - 1) / span).toFixed(1) : "–";
  }
  if (S.selected && !S.playing) openChain(S.selected, S.chainPoint, true);
}

async function fetchFrame() { await applyFrame(await api("GET", "/api/frame", undefined, true)); }

// ------------------------------------------------------------------------------------------
// the network: nodes (thumbnails), edges (weights), biases
// ------------------------------------------------------------------------------------------
const NODE = 40, ROW = 54, TOP = 56;

function layoutNetwork() {
  const net = $("#network");
  net.innerHTML = "";
  S.nodeEls = {}; S.edgeEls = {}; S.biasEls = {};
  const st = S.state, cols = st.nodes;
  const W = Math.max(420, net.clientWidth || 600);
  const left = 70, right = 20;
  const dx = (W - left - right - NODE) / Math.max(1, cols.length - 1);
  const pos = {};
  let maxRows = 0;
  cols.forEach((col, ci) => {
    maxRows = Math.max(maxRows, col.length);
    col.forEach((n, r) => { pos[n.id] = { x: left + ci * dx, y: TOP + r * ROW }; });
  });
  const H = TOP + maxRows * ROW + 10;
  net.style.height = H + "px";
  const svg = document.createElementNS(SVGNS, "svg");
  svg.setAttribute("width", W); svg.setAttribute("height", H);
  net.appendChild(svg);
  const active = cols[0].filter(n => n.active);
  // edges, layer by layer: source column -> target column through linear unit t
  for (let t = 1; t < cols.length; t++) {
    const k = st.linearIndex[t - 1];
    const src = t === 1 ? active : cols[t - 1];
    cols[t].forEach((dst, j) => {
      src.forEach((sn, i) => {
        const name = `${k}.weight[${j},${i}]`;
        const a = pos[sn.id], b = pos[dst.id];
        const x1 = a.x + NODE, y1 = a.y + NODE / 2, x2 = b.x, y2 = b.y + NODE / 2, mx = (x1 + x2) / 2;
        const d = `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
        const g = document.createElementNS(SVGNS, "g");
        g.setAttribute("data-param", name);
        const p = document.createElementNS(SVGNS, "path");
        p.setAttribute("d", d); p.setAttribute("class", "edge");
        const hit = document.createElementNS(SVGNS, "path");
        hit.setAttribute("d", d); hit.setAttribute("class", "edge-hit");
        g.appendChild(p); g.appendChild(hit);
        svg.appendChild(g);
        hookParam(g, name);
        S.edgeEls[name] = { g, p };
      });
    });
  }
  // nodes
  cols.forEach((col, ci) => {
    col.forEach((n) => {
      const el = document.createElement("div");
      el.className = "node" + (ci === 0 && !n.active ? " inactive" : "");
      el.setAttribute("data-testid", "node-" + n.id);
      el.dataset.node = n.id;
      el.style.left = pos[n.id].x + "px"; el.style.top = pos[n.id].y + "px";
      const c = document.createElement("canvas");
      c.width = st.thumb; c.height = st.thumb;
      el.appendChild(c);
      const ring = document.createElement("div"); ring.className = "ring"; el.appendChild(ring);
      const val = document.createElement("div"); val.className = "val"; el.appendChild(val);
      if (ci === 0) {
        const lbl = document.createElement("div"); lbl.className = "lbl"; lbl.textContent = n.label;
        el.appendChild(lbl);
        el.title = "click to toggle this input";
        el.onclick = () => toggleFeature(n.feature);
      }
      el.addEventListener("mouseenter", ev => showZoom(n.id, el));
      el.addEventListener("mouseleave", hideZoom);
      net.appendChild(el);
      S.nodeEls[n.id] = { el, canvas: c, ring, val };
      if (n.bias) {
        const r = document.createElementNS(SVGNS, "rect");
        r.setAttribute("x", pos[n.id].x - 11); r.setAttribute("y", pos[n.id].y + NODE - 11);
        r.setAttribute("width", 10); r.setAttribute("height", 10);
        r.setAttribute("class", "bias"); r.setAttribute("data-param", n.bias);
        svg.appendChild(r);
        hookParam(r, n.bias);
        S.biasEls[n.bias] = r;
      }
    });
  });
  // per-layer controls: neurons +/-, activation
  const acts = st.settings.activations.length ? st.settings.activations
    : st.settings.networkShape.map(() => st.settings.activation);
  st.settings.networkShape.forEach((h, l) => {
    const ctl = document.createElement("div");
    ctl.className = "layer-ctl"; ctl.setAttribute("data-control", "networkShape");
    ctl.style.left = (left + (l + 1) * dx - 15) + "px"; ctl.style.top = "2px";
    ctl.innerHTML = `<button data-testid="add-neuron-${l}" title="more neurons">+</button>
      <button data-testid="remove-neuron-${l}" title="fewer neurons">−</button><br>
      <span>${h} neuron${h > 1 ? "s" : ""}</span>
      <select data-testid="layer-act-${l}" title="activation of this layer">${
        ["tanh", "relu", "sigmoid", "linear", "leaky_relu"].map(a =>
          `<option value="${a}"${a === acts[l] ? " selected" : ""}>${a}</option>`).join("")}</select>`;
    const [plus, minus] = ctl.querySelectorAll("button");
    plus.onclick = () => changeShape(l, +1);
    minus.onclick = () => changeShape(l, -1);
    ctl.querySelector("select").onchange = ev => {
      const a = acts.slice(); a[l] = ev.target.value;
      changeSettings({ activations: a.join(",") });
    };
    net.appendChild(ctl);
    if ((st.settings.hide || []).includes("networkShape")) ctl.dataset.hidden = "1";
  });
  styleNetwork(); drawThumbs();
}

function hookParam(el, name) {
  el.addEventListener("mouseenter", ev => { if (!S.cardPinned) showCard(name, ev, false); });
  el.addEventListener("mouseleave", () => { if (!S.cardPinned) $("#card").hidden = true; });
  el.addEventListener("click", ev => {
    ev.stopPropagation();
    showCard(name, ev, true);
    openChain(name, null);
  });
}

function styleNetwork() {
  const st = S.state; if (!st) return;
  const grad = st.settings.gradView || (S.phase && S.phase.gradEdges);
  const arr = grad ? S.grads : S.values;
  let gmax = 1e-12;
  if (grad) for (const name in S.edgeEls) gmax = Math.max(gmax, Math.abs(arr[S.index[name]]));
  const l1 = new Set((S.lastHead ? S.lastHead.flags : st.flags).filter(f => f.kind === "l1zero").map(f => f.param));
  for (const [name, { g, p }] of Object.entries(S.edgeEls)) {
    const v = arr[S.index[name]];
    const t = grad ? v / gmax : v;
    p.setAttribute("stroke", rgb(colorOf(grad ? Math.sign(t) * Math.max(0.35, Math.abs(t)) : t)));
    p.setAttribute("stroke-width", grad ? (0.6 + 7 * Math.abs(t)).toFixed(2) : (0.6 + 1.8 * Math.min(5, Math.abs(v))).toFixed(2));
    g.classList.toggle("sel", name === S.selected);
    g.classList.toggle("l1zero", l1.has(name));
  }
  for (const [name, r] of Object.entries(S.biasEls)) {
    r.setAttribute("fill", rgb(colorOf(S.values[S.index[name]])));
    r.setAttribute("stroke-width", name === S.selected ? 2 : 0.5);
  }
  // rings: δ of each neuron = ∂L/∂b (mean over the mini-batch of ∂L/∂z)
  let dmax = 1e-12;
  const deltas = {};
  for (const col of st.nodes.slice(1)) for (const n of col) {
    deltas[n.id] = S.grads[S.index[n.bias]]; dmax = Math.max(dmax, Math.abs(deltas[n.id]));
  }
  for (const [id, ne] of Object.entries(S.nodeEls)) {
    if (grad && id in deltas) {
      const t = deltas[id] / dmax;
      ne.ring.style.border = `${(1 + 5 * Math.abs(t)).toFixed(1)}px solid ${rgb(colorOf(Math.sign(t) * Math.max(0.4, Math.abs(t))))}`;
      ne.ring.title = "δ = ∂L/∂z (batch mean) = " + fmt(deltas[id], 4);
    } else { ne.ring.style.border = "none"; }
    ne.el.classList.remove("flag-dead", "flag-saturated");
  }
  for (const f of (S.lastHead ? S.lastHead.flags : st.flags)) {
    if (f.node && S.nodeEls[f.node]) S.nodeEls[f.node].el.classList.add(f.kind === "dead" ? "flag-dead" : "flag-saturated");
  }
  $("#view-name").textContent = grad ? "gradient view: edge width ∝ |∂L/∂w|, ring ∝ δ = ∂L/∂z" : "edge width ∝ |w|";
}

function drawThumbs() {
  if (!S.thumbs.length || !S.state) return;
  const T = S.thumbSize;
  const ids = S.state.nodes.flat().map(n => n.id);
  ids.forEach((id, i) => {
    const ne = S.nodeEls[id]; const data = S.thumbs[i];
    if (!ne || !data) return;
    const ctx = ne.canvas.getContext("2d");
    if (ne.canvas.width !== T) { ne.canvas.width = T; ne.canvas.height = T; }
    const img = ctx.createImageData(T, T);
    for (let p = 0; p < T * T; p++) {
      const c = PAL[data[p]];
      img.data[4 * p] = c[0]; img.data[4 * p + 1] = c[1]; img.data[4 * p + 2] = c[2]; img.data[4 * p + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  });
}

// ------------------------------------------------------------------------------------------
// the output heatmap with the points
// ------------------------------------------------------------------------------------------
const off = document.createElement("canvas");
function drawHeat() {
  if (!S.heat) return;
  const G = S.heatSize, st = S.state, s = st.settings;
  off.width = G; off.height = G;
  const octx = off.getContext("2d");
  const img = octx.createImageData(G, G);
  for (let p = 0; p < G * G; p++) {
    let c;
    if (S.heatKind === "multiclass") {
      let best = 0, bp = -1;
      for (let j = 0; j < S.heat.length; j++) if (S.heat[j][p] > bp) { bp = S.heat[j][p]; best = j; }
      c = s.discretize ? CLASS_COLORS[best] : mix(MID, CLASS_COLORS[best], Math.max(0, (bp / 255 - 1 / S.heat.length) / (1 - 1 / S.heat.length)));
    } else {
      const v = S.heat[0][p];
      c = s.discretize ? PAL[v >= 128 ? 255 : 0] : PAL[v];
    }
    img.data[4 * p] = c[0]; img.data[4 * p + 1] = c[1]; img.data[4 * p + 2] = c[2]; img.data[4 * p + 3] = 255;
  }
  octx.putImageData(img, 0, 0);
  const cv = $("#heatmap"), ctx = cv.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(off, 0, 0, cv.width, cv.height);
  const D = st.domain, sc = cv.width / (2 * D);
  const colorPt = y => st.task === "classification" ? (st.classes === 2 ? (y ? POS : NEG) : CLASS_COLORS[y]) : colorOf(y);
  const draw = (pts, stroke) => {
    for (const [x1, x2, y] of pts) {
      ctx.beginPath(); ctx.arc((x1 + D) * sc, (D - x2) * sc, 3.2, 0, 2 * Math.PI);
      ctx.fillStyle = rgb(colorPt(y)); ctx.fill();
      ctx.lineWidth = 1; ctx.strokeStyle = stroke; ctx.stroke();
    }
  };
  draw(st.points.train, "#fff");
  if (s.showTest) draw(st.points.test, "#000");
  if (S.chainPoint !== null && S.selected && st.points.train[S.chainPoint]) {
    const [x1, x2] = st.points.train[S.chainPoint];
    ctx.beginPath(); ctx.arc((x1 + D) * sc, (D - x2) * sc, 7, 0, 2 * Math.PI);
    ctx.lineWidth = 2; ctx.strokeStyle = "#000"; ctx.stroke();
  }
}

// ------------------------------------------------------------------------------------------
// charts, accuracy, confusion matrix, flags
// ------------------------------------------------------------------------------------------
function drawLossChart() {
  const cv = $("#loss-chart"), ctx = cv.getContext("2d"), h = S.hist;
  ctx.clearRect(0, 0, cv.width, cv.height);
  if (!h || h.epoch.length < 1) return;
  const all = h.lossTrain.concat(h.lossTest).filter(v => v !== null && isFinite(v));
  const ymax = 1.1 * Math.max(1e-9, ...all), n = h.epoch.length;
  const line = (arr, color) => {
    ctx.beginPath();
    arr.forEach((v, i) => {
      if (v === null) return;
      const x = n === 1 ? cv.width : i / (n - 1) * cv.width, y = cv.height - 2 - v / ymax * (cv.height - 6);
      i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
    });
    ctx.strokeStyle = color; ctx.lineWidth = 1.5; ctx.stroke();
  };
  line(h.lossTest, "#999"); line(h.lossTrain, "#222");
}

function drawGradChart() {
  const cv = $("#grad-chart"), ctx = cv.getContext("2d"), h = S.hist;
  ctx.clearRect(0, 0, cv.width, cv.height);
  if (!h || !h.gradNorms.length) return;
  const L = h.gradNorms[0].length, n = h.gradNorms.length;
  let lo = Infinity, hi = -Infinity;
  for (const row of h.gradNorms) for (const v of row) if (v > 0) { lo = Math.min(lo, Math.log10(v)); hi = Math.max(hi, Math.log10(v)); }
  if (!isFinite(lo)) return;
  if (hi - lo < 1) { hi += 0.5; lo -= 0.5; }
  const colors = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d"];
  for (let l = 0; l < L; l++) {
    ctx.beginPath();
    h.gradNorms.forEach((row, i) => {
      const v = row[l] > 0 ? Math.log10(row[l]) : lo;
      const x = n === 1 ? cv.width : i / (n - 1) * cv.width, y = cv.height - 12 - (v - lo) / (hi - lo) * (cv.height - 16);
      i ? ctx.lineTo(x, y) : ctx.moveTo(x, y);
    });
    ctx.strokeStyle = colors[l % colors.length]; ctx.lineWidth = 1.3; ctx.stroke();
    ctx.fillStyle = colors[l % colors.length]; ctx.font = "10px sans-serif";
    ctx.fillText(l === L - 1 ? "out" : "L" + (l + 1), 4 + l * 30, cv.height - 1);
  }
  ctx.fillStyle = "#777"; ctx.fillText("1e" + hi.toFixed(1), cv.width - 40, 10);
  ctx.fillText("1e" + lo.toFixed(1), cv.width - 40, cv.height - 14);
}

let lastAccKey = null, lastFlagsKey = null;
function showAccuracy(acc, conf) {
  const key = JSON.stringify([acc, conf]);
  if (key === lastAccKey) return;      // rebuild the table only when a number changed
  lastAccKey = key;
  const el = $("#accuracy");
  el.textContent = acc && acc.train !== undefined
    ? `Accuracy: train ${(100 * acc.train).toFixed(1)}%` + (acc.test !== undefined ? `, test ${(100 * acc.test).toFixed(1)}%` : "")
    : "";
  const t = $("#confusion");
  if (!conf) { t.innerHTML = ""; return; }
  let html = "<caption class='hint'>test confusion matrix (rows: true, columns: predicted)</caption><tr><th></th>";
  conf.forEach((_, j) => { html += `<th>${j}</th>`; });
  html += "</tr>";
  conf.forEach((row, i) => { html += `<tr><th>${i}</th>` + row.map(v => `<td>${v}</td>`).join("") + "</tr>"; });
  t.innerHTML = html;
}

function showFlags(flags) {
  const key = JSON.stringify(flags);
  if (key === lastFlagsKey) return;
  lastFlagsKey = key;
  const ul = $("#flags"); ul.innerHTML = "";
  for (const f of flags.slice(0, 40)) {
    const li = document.createElement("li"); li.textContent = f.text; li.dataset.kind = f.kind;
    ul.appendChild(li);
  }
  if (flags.length > 40) { const li = document.createElement("li"); li.textContent = `… ${flags.length - 40} more`; ul.appendChild(li); }
}

// ------------------------------------------------------------------------------------------
// hover card, zoom, chain-rule panel
// ------------------------------------------------------------------------------------------
function showCard(name, ev, pin) {
  const card = $("#card"), i = S.index[name];
  S.cardPinned = pin;
  card.innerHTML = `<b>${name}</b><br>value ${fmt(S.values[i], 6)}<br>∂L/∂w ${fmt(S.grads[i], 6)}<br>last Δw ${fmt(S.deltas[i], 4)}` +
    (pin ? `<br><label>edit <input data-testid="edit-value" value="${S.values[i].toPrecision(6)}"></label> <button data-testid="card-close">×</button>` : "");
  card.style.left = (ev.clientX + 14) + "px"; card.style.top = (ev.clientY + 10) + "px";
  card.hidden = false;
  if (pin) {
    const inp = card.querySelector("input");
    inp.addEventListener("keydown", async e => {
      if (e.key !== "Enter") return;
      const v = Number(inp.value);
      await applyFrame(await api("POST", "/api/param", { name, value: v }, true));
      if (S.selected === name) openChain(name, S.chainPoint, true);
    });
    card.querySelector("button").onclick = () => { S.cardPinned = false; card.hidden = true; };
  }
}

let zoomReq = 0;
async function showZoom(id, el) {
  const my = ++zoomReq;
  const d = await api("GET", "/api/neuron?node=" + encodeURIComponent(id));
  if (my !== zoomReq) return;
  const z = $("#zoom"), cv = z.querySelector("canvas"), G = d.size;
  cv.width = G; cv.height = G;
  const ctx = cv.getContext("2d"), img = ctx.createImageData(G, G);
  d.values.forEach((v, p) => { const c = colorOf(v); img.data.set([c[0], c[1], c[2], 255], 4 * p); });
  ctx.putImageData(img, 0, 0);
  z.querySelector("div").textContent = id;
  const r = el.getBoundingClientRect();
  z.style.left = (r.right + 8) + "px"; z.style.top = Math.max(0, r.top - 80) + "px";
  z.hidden = false;
}
function hideZoom() { zoomReq++; $("#zoom").hidden = true; }

function row(label, unit, value, tid, note) {
  return `<tr><td>${label}<div class="unit">${unit}</div></td><td class="n" data-testid="${tid}" data-value="${value}">${fmt(value, 7)}</td><td class="unit">${note || ""}</td></tr>`;
}
function agree(a, b) {
  const ok = Math.abs(a - b) <= 1e-6 + 1e-4 * Math.abs(b);
  return `<span class="${ok ? "ok" : "bad"}">${ok ? "✓ agree" : "✗ differ"}</span>`;
}

async function openChain(name, point, quiet) {
  S.selected = name;
  let d;
  try {
    d = await api("GET", "/api/chain?param=" + encodeURIComponent(name) + (point !== null && point !== undefined ? "&point=" + point : ""));
  } catch (e) { return; }
  S.chainPoint = d.point;
  const p = $("#chain-panel"), t = d.terms, b = d.batch, o = d.optimizer;
  const w = d.kind === "weight" ? "w" : "b";
  const layerWord = d.last ? "the output" : `hidden layer ${d.layer + 1}`;
  const inputWord = d.kind === "bias" ? "the bias (its input is 1)"
    : d.layer === 0 ? `input ${S.state.nodes[0].filter(n => n.active)[d.input].label}` : `neuron ${d.input + 1} of hidden layer ${d.layer}`;
  const actLabel = d.activation ? `activation σ′(z) = ∂a/∂z` : `activation: none (the loss unit takes z)`;
  const actUnit = d.activation ? `${d.activation} unit, z = ${fmt(t.z, 4)}, a = ${fmt(t.a, 4)} — its backward applied to 1` : "identity: 1";
  const lossLabel = d.last ? (d.activation ? "loss unit ∂L/∂a" : "loss unit ∂L/∂z") : "∂L/∂a (back-propagated)";
  const lossUnit = d.last ? `${d.loss}, y = ${d.y}` : `gradient delivered to this neuron's output a (retained)`;
  let bp = "";
  if (d.backprop) {
    bp = `<details><summary>where ∂L/∂a came from: Σₖ ∂L/∂zₖ · wₖⱼ over the next layer = <span data-testid="chain-backprop-sum">${fmt(d.backprop.sum, 7)}</span></summary><table>` +
      d.backprop.terms.map(x => `<tr><td>${x.param}</td><td class="n">∂L/∂z = ${fmt(x.dLdz, 5)}</td><td class="n">w = ${fmt(x.w, 5)}</td></tr>`).join("") + "</table></details>";
  }
  const pts = b.points.map((q, i) => `<span data-point="${q}" title="product ${fmt(b.products[i], 5)}">${q === d.point ? "<b>" + q + "</b>" : q}</span>`).join(" ");
  let optRows = "";
  if (o.name === "sgd") {
    optRows = `<tr><td>optimizer</td><td class="n">SGD${o.momentum ? ", momentum " + o.momentum : ""}</td><td class="unit">${o.formula}</td></tr>` +
      (o.velocity !== undefined ? `<tr><td>velocity v</td><td class="n">${fmt(o.velocity, 6)}</td><td class="unit">optimizer state</td></tr>` : "") +
      `<tr><td>−lr · g</td><td class="n">${fmt(o.plain, 6)}</td><td class="unit">lr = ${o.lr}</td></tr>`;
  } else {
    optRows = `<tr><td>optimizer</td><td class="n">Adam (step ${o.step})</td><td class="unit">${o.formula}</td></tr>` +
      `<tr><td>m, v</td><td class="n">${fmt(o.exp_avg, 4)}, ${fmt(o.exp_avg_sq, 4)}</td><td class="unit">optimizer state, lr = ${o.lr}</td></tr>`;
  }
  p.innerHTML = `<button class="close" data-testid="chain-close" title="close">×</button>
    <h4 data-testid="chain-title">∂L/∂${w} for <code>${d.param}</code></h4>
    <div class="unit">${layerWord}, neuron ${d.neuron + 1}; ${inputWord}. Numbers read from chainrule's recorded units on a float64 copy of the network before the last update (${w} = ${fmt(d.value, 6)}).</div>
    <div style="margin-top:6px"><b>Training point #<span data-testid="chain-point">${d.point}</span></b> ${d.inBatch ? "(in the last mini-batch)" : "(not in the last mini-batch)"}:
      x = [${d.x.map(v => v.toFixed(3)).join(", ")}], y = ${d.y}
      · other point: <input data-testid="chain-point-input" type="number" min="0" style="width:60px" value="${d.point}"></div>
    <table>
      ${row(lossLabel, lossUnit, t.dLda, "chain-dLda")}
      ${row(actLabel, actUnit, t.sigmaPrime, "chain-sigma")}
      ${row(`linear unit ∂z/∂${w}`, d.kind === "bias" ? "z = … + b: 1" : "= the input h of this weight", t.dzdw, "chain-dzdw")}
      <tr class="prod"><td>product ∂L/∂${w}</td><td class="n" data-testid="chain-product" data-value="${t.product}">${fmt(t.product, 7)}</td><td></td></tr>
      ${row("engine (backward on this point)", "p.grad after loss.backward()", d.enginePoint, "chain-engine-point", agree(t.product, d.enginePoint))}
      ${row("central difference", "(L(w+ε) − L(w−ε)) / 2ε, float64", d.cdPoint, "chain-cd-point", agree(t.product, d.cdPoint))}
    </table>
    ${bp}
    <div style="margin-top:6px"><b>The mini-batch</b> (${b.points.length} points; click one): <div class="pts">${pts}</div></div>
    <table>
      ${row("mean of the per-point products", "(1/B) Σₙ ∂Lₙ/∂a · σ′(zₙ) · hₙ", b.mean, "chain-batch-mean")}
      ${row("+ regularization term", b.regularization === "none" || !b.regRate ? "none" : `${b.regularization}, rate ${b.regRate} (weights only)`, b.reg, "chain-reg")}
      <tr class="prod"><td>= gradient g</td><td class="n" data-testid="chain-total" data-value="${b.total}">${fmt(b.total, 7)}</td><td></td></tr>
      ${row("engine's gradient (GET /api/state)", "p.grad of the last step (float32)", b.engineGrad, "chain-engine-grad", agree(b.total, b.engineGrad))}
      ${row("central difference", "of the batch loss + penalty", b.cd, "chain-cd-batch", agree(b.total, b.cd))}
      ${row("product of the means (not the gradient)", "mean(∂L/∂a)·mean(σ′)·mean(h)", b.productOfMeans, "chain-product-of-means")}
      ${optRows}
      <tr class="prod"><td>actual update Δ${w}</td><td class="n" data-testid="chain-delta" data-value="${o.delta}">${fmt(o.delta, 6)}</td><td class="unit">${fmt(o.before, 6)} → ${fmt(o.after, 6)}</td></tr>
    </table>`;
  p.hidden = false;
  p.querySelector(".close").onclick = () => { p.hidden = true; S.selected = null; styleNetwork(); drawHeat(); };
  p.querySelector("[data-testid=chain-point-input]").onchange = ev => openChain(name, Number(ev.target.value));
  for (const sp of p.querySelectorAll(".pts span")) sp.onclick = () => openChain(name, Number(sp.dataset.point));
  styleNetwork(); drawHeat();
}

// ------------------------------------------------------------------------------------------
// actions
// ------------------------------------------------------------------------------------------
async function changeSettings(upd) {
  try {
    applyState(await api("POST", "/api/settings", upd));
  } catch (e) { syncControls(); return; }
  await fetchFrame();
  if (S.selected && !(S.selected in S.index)) { $("#chain-panel").hidden = true; S.selected = null; }
}
function changeShape(l, d) {
  const shape = S.state.settings.networkShape.slice();
  shape[l] = Math.max(1, Math.min(8, shape[l] + d));
  changeSettings({ networkShape: shape.join(",") });
}
function toggleFeature(f) {
  const fs = new Set(S.state.settings.features);
  fs.has(f) ? fs.delete(f) : fs.add(f);
  changeSettings({ features: [...fs].join(",") });
}

function setPlaying(on, fromServer) {
  S.playing = on;
  $("#play").textContent = on ? "❚❚" : "▶";
  $("#play").classList.toggle("on", on);
  if (!fromServer && S.ws && S.wsReady) S.ws.send(JSON.stringify({ cmd: on ? "play" : "pause" }));
}

function connectWs() {
  const ws = new WebSocket(`ws://${location.host}/ws`);
  ws.binaryType = "arraybuffer";
  S.wsOpen = new Promise(resolve => {
    ws.onopen = () => {
      S.wsReady = true;
      if (S.playing) ws.send(JSON.stringify({ cmd: "play" }));
      resolve();
    };
  });
  ws.onclose = () => { S.wsReady = false; setPlaying(false, true); setTimeout(connectWs, 1000); };
  ws.onmessage = async ev => {
    if (typeof ev.data === "string") return;
    await applyFrame(ev.data);          // drawn (canvas and SVG updated): ask for the next one
    if (S.wsReady) ws.send(JSON.stringify({ cmd: "ack" }));
  };
  S.ws = ws;
}

// step by phase: forward (layer by layer) → loss → backward (layer by layer) → update
let phaseBusy = false;
async function phaseStep() {
  if (phaseBusy) return;       // one stage at a time
  phaseBusy = true;
  try { await phaseStage(); } finally { phaseBusy = false; }
}
async function phaseStage() {
  if (S.playing) setPlaying(false);
  const st = S.state, L = st.linearIndex.length;
  if (!S.phase) {
    const d = await api("POST", "/api/phase/begin");
    const stages = [];
    for (let t = 0; t < L; t++) stages.push({ kind: "forward", t });
    stages.push({ kind: "loss" });
    for (let t = L - 1; t >= 0; t--) stages.push({ kind: "backward", t });
    stages.push({ kind: "update" });
    S.phase = { d, stages, i: 0 };
  } else {
    S.phase.i++;
  }
  const { d, stages, i } = S.phase;
  const stg = stages[i];
  const status = $("#phase-status"); status.hidden = false;
  for (const ne of Object.values(S.nodeEls)) { ne.el.classList.remove("lit"); ne.val.textContent = ""; }
  const col = t => st.nodes[t + 1];
  if (stg.kind === "forward") {
    const lay = d.layers[stg.t];
    col(stg.t).forEach((n, j) => {
      const ne = S.nodeEls[n.id]; ne.el.classList.add("lit");
      ne.val.textContent = `z=${fmt(lay.z[j], 3)} a=${fmt(lay.a[j], 3)}`;
    });
    status.textContent = `forward ${stg.t + 1}/${L}: point #${d.point} of the mini-batch (${d.batch.length} points) through ` +
      `${stg.t === L - 1 ? "the output unit" : "hidden layer " + (stg.t + 1)}: z = W·h + b, a = σ(z)`;
  } else if (stg.kind === "loss") {
    col(L - 1).forEach(n => S.nodeEls[n.id].el.classList.add("lit"));
    col(L - 1).forEach((n, j) => { S.nodeEls[n.id].val.textContent = `a=${fmt(d.layers[L - 1].a[j], 3)} y=${d.y}`; });
    status.textContent = `loss: L = ${d.loss.toFixed(5)} (mean over the mini-batch)` + (d.penalty !== null ? ` + penalty ${d.penalty.toFixed(5)}` : "");
  } else if (stg.kind === "backward") {
    const lay = d.layers[stg.t];
    S.grads = d.parameters.map(p => p.grad);
    S.phase.gradEdges = true;
    col(stg.t).forEach((n, j) => {
      const ne = S.nodeEls[n.id]; ne.el.classList.add("lit");
      ne.val.textContent = `δ=${fmt(lay.deltaSum[j], 3)}`;
    });
    status.textContent = `backward ${L - stg.t}/${L}: δ = ∂L/∂z of ${stg.t === L - 1 ? "the output unit" : "hidden layer " + (stg.t + 1)}` +
      ` (summed over the batch = ∂L/∂b); edges now show ∂L/∂w = δ·h`;
    styleNetwork();
  } else {
    await applyFrame(await api("POST", "/api/phase/update", undefined, true));
    status.textContent = `update: each w ← w + Δw (${S.state.settings.optimizer}); edges show the new weights. Press phase again for the next mini-batch.`;
    S.phase = null;
    styleNetwork();
    return;
  }
}

function wire() {
  $("#play").onclick = () => setPlaying(!S.playing);
  $("#step").onclick = async () => {
    if (S.playing) setPlaying(false);
    S.phase = null; $("#phase-status").hidden = true;
    await applyFrame(await api("POST", "/api/step", { epochs: 1 }, true));
  };
  $("#reset").onclick = async () => {
    setPlaying(false); S.phase = null; $("#phase-status").hidden = true;
    applyState(await api("POST", "/api/reset")); await fetchFrame();
  };
  $("#phase").onclick = () => phaseStep();
  $("#regenerate").onclick = async () => { applyState(await api("POST", "/api/regenerate")); await fetchFrame(); };
  $("#add-layer").onclick = () => {
    const sh = S.state.settings.networkShape.slice(); if (sh.length < 6) sh.push(2);
    changeSettings({ networkShape: sh.join(",") });
  };
  $("#remove-layer").onclick = () => {
    const sh = S.state.settings.networkShape.slice(); sh.pop();
    changeSettings({ networkShape: sh.join(",") });
  };
  for (const el of $$("[data-setting]")) {
    const k = el.dataset.setting, type = el.dataset.type;
    if (el.type === "range") el.addEventListener("input", () => { const l = $("#" + k + "-v"); if (l) l.textContent = el.value; });
    el.addEventListener("change", () => {
      let v = el.type === "checkbox" ? el.checked : el.value;
      if (type === "int") v = v === "" ? 0 : parseInt(v, 10);
      if (type === "float") v = v === "" ? 0 : parseFloat(v);
      changeSettings({ [k]: v });
    });
  }
  $("#heatmap").addEventListener("click", async ev => {
    const cv = $("#heatmap"), r = cv.getBoundingClientRect(), D = S.state.domain;
    const x1 = (ev.clientX - r.left) / r.width * 2 * D - D, x2 = D - (ev.clientY - r.top) / r.height * 2 * D;
    applyState(await api("POST", "/api/points", { x1, x2, label: S.addLabel, split: ev.shiftKey ? "test" : "train" }));
    await fetchFrame();
  });
  $("#upload").addEventListener("change", async ev => {
    const f = ev.target.files[0]; if (!f) return;
    const text = await f.text();
    try { applyState(await api("POST", "/api/upload?name=" + encodeURIComponent(f.name), text)); await fetchFrame(); }
    catch (e) { /* shown in the error line */ }
    ev.target.value = "";
  });
  window.addEventListener("hashchange", async () => {
    const h = parseHash();
    if (Object.keys(h).length) await changeSettings(h);
  });
  window.addEventListener("resize", () => { if (S.state) { layoutNetwork(); } });
}

async function boot() {
  wire();
  const h = parseHash();
  let st = null;
  if (Object.keys(h).length) { try { st = await api("POST", "/api/settings", h); } catch (e) { st = null; } }
  if (!st) st = await api("GET", "/api/state");
  applyState(st);
  await fetchFrame();
  connectWs();
  await Promise.race([S.wsOpen, new Promise(r => setTimeout(r, 3000))]);
  document.body.dataset.ready = "1";
}
boot();
