// The glass box: draws the report of `rnnkit explain --json` embedded in this page (#report) as
// SVG heatmaps. Every number drawn is one of the report's; hovering a cell shows it exactly.
"use strict";

const NS = "http://www.w3.org/2000/svg"; // the SVG namespace: a name, never fetched
const DATA = JSON.parse(document.getElementById("report").textContent);
const REPORTS = DATA.reports || [DATA];
const state = { sentence: 0, unit: 0 };
const tip = document.getElementById("tip");

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

function sv(tag, attrs = {}) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

const transpose = (m) => (m.length ? m[0].map((_, j) => m.map((row) => row[j])) : []);
const finite = (m) => m.flat().filter((v) => v !== null && Number.isFinite(v));
const shown = (token) => (token === " " ? "␣" : JSON.stringify(token).slice(1, -1)); // a space, a newline, visible

// colour scales: t in [0, 1] (sequential, white to blue) or [-1, 1] (diverging, blue-white-red)
function mix(a, b, t) {
  return `rgb(${a.map((x, i) => Math.round(x + (b[i] - x) * t)).join(",")})`;
}
const WHITE = [255, 255, 255], BLUE = [8, 48, 107], COOL = [59, 76, 192], WARM = [180, 4, 38];

function scaleOf(values, kind) {
  const v = finite(values);
  if (!v.length) return { kind: "none", text: "no values" };
  const lo = Math.min(...v), hi = Math.max(...v);
  if (kind === "log") {
    const pos = v.filter((x) => x > 0);
    const top = Math.log10(Math.max(...pos, 1e-300));
    const bottom = Math.max(Math.log10(Math.min(...pos, 1e300)), top - 8);
    return { kind, lo: bottom, hi: top, text: `log scale, ${(10 ** bottom).toExponential(1)} .. ${hi.toExponential(1)}` };
  }
  if (kind === "probability" || lo >= 0) {
    const top = kind === "probability" ? 1 : hi || 1;
    return { kind: "sequential", hi: top, text: `0 .. ${top.toPrecision(3)}` };
  }
  const m = Math.max(-lo, hi) || 1;
  return { kind: "diverging", hi: m, text: `-${m.toPrecision(3)} .. ${m.toPrecision(3)}` };
}

// where v lies on scale s: -1 .. 1 (diverging) or 0 .. 1
function level(v, s) {
  if (s.kind === "diverging") return Math.max(-1, Math.min(1, v / s.hi));
  if (s.kind === "log") return v <= 0 ? 0 : Math.min(1, Math.max(0, (Math.log10(v) - s.lo) / (s.hi - s.lo || 1)));
  return Math.min(1, Math.max(0, v / s.hi));
}

function colour(v, s) {
  if (v === null || !Number.isFinite(v) || s.kind === "none") return "#eee";
  const t = level(v, s);
  return t < 0 ? mix(WHITE, COOL, -t) : mix(WHITE, s.kind === "diverging" ? WARM : BLUE, t);
}

// a heatmap of values (rows × cols), null where undefined; each cell's exact value in data-v, and
// what hovering says in data-tip and its <title>. o: name, title, note, values, rows and cols (the
// labels), kind ("probability", "log" or "": by the values), pick (a row is a unit to follow),
// text(i, j) (a label drawn in the cell) and tipOf(i, j, v)
function heatmap(o) {
  const { values, rows, cols } = o, R = values.length, C = R ? values[0].length : 0;
  const w = Math.max(10, Math.min(o.text ? 64 : 34, Math.floor(760 / Math.max(C, 1))));
  const h = R > 64 ? 6 : R > 24 ? 10 : 18;
  const left = 8 + 7 * Math.min(14, Math.max(2, ...rows.map((l) => String(l).length)));
  const top = 8 + 6.5 * Math.min(14, Math.max(2, ...cols.map((l) => String(l).length)));
  const s = scaleOf(values, o.kind);
  const g = sv("svg", { width: left + C * w + 8, height: top + R * h + 8, class: "heatmap" });
  const label = (x, y, text, attrs = {}) => {
    const t = sv("text", { x, y, ...attrs });
    t.textContent = String(text).slice(0, 14);
    g.append(t);
  };
  cols.forEach((c, j) => {
    const x = left + j * w + w / 2 + 4;
    label(x, top - 4, c, { transform: `rotate(-60 ${x} ${top - 4})` });
  });
  rows.forEach((r, i) => {
    if (R <= 24 || i % (R > 64 ? 8 : 4) === 0 || (o.pick && i === state.unit))
      label(left - 4, top + i * h + h / 2 + 4, r, { "text-anchor": "end" });
  });
  const tipOf = o.tipOf || ((i, j, v) => `${rows[i]} × ${cols[j]}: ${v === null ? "none" : String(v)}`);
  values.forEach((row, i) =>
    row.forEach((v, j) => {
      const x = left + j * w, y = top + i * h;
      const r = sv("rect", { x, y, width: w - 1, height: h - 1, fill: colour(v, s), class: "cell" });
      Object.assign(r.dataset, { v: v === null ? "" : String(v), row: i, tip: tipOf(i, j, v) });
      r.append(sv("title"));
      r.firstChild.textContent = r.dataset.tip;
      g.append(r);
      const dark = v !== null && Math.abs(level(v, s)) > 0.55;
      if (o.text) label(x + 3, y + 13, o.text(i, j).slice(0, 8), { class: dark ? "in-cell dark" : "in-cell" });
    })
  );
  if (o.pick && state.unit < R)
    g.append(sv("rect", { x: left - 1, y: top + state.unit * h - 1, width: C * w + 1, height: h + 1, class: "picked" }));
  if (o.pick) g.addEventListener("click", (e) => e.target.dataset.row !== undefined && pick(+e.target.dataset.row));
  return section(o.name, o.title, `${o.note ? o.note + "; " : ""}${s.text}`, g);
}

function section(name, title, note, ...body) {
  return el("section", { "data-view": name }, el("h2", {}, title), el("p", { class: "note" }, note), ...body);
}

// the prediction at every step: rank × step, each cell the label and its probability
function predictions(r) {
  const cols = (r.target || r.row).map(shown);
  const tops = r.steps.map((s) => s.top3 || s.top || []);
  const k = Math.max(0, ...tops.map((t) => t.length));
  const at = (i, j) => tops[j][i];
  const values = Array.from({ length: k }, (_, i) => tops.map((t) => (t[i] ? t[i].probability : null)));
  const of = r.probabilities ? r.probabilities.of : r.target ? "each output token" : "the next token, at each step";
  return heatmap({
    name: "predictions", title: "prediction at every step", note: `top ${k} of ${of}`, values, cols,
    rows: Array.from({ length: k }, (_, i) => `${i + 1}.`), kind: "probability",
    text: (i, j) => (at(i, j) ? shown(at(i, j).label) : ""),
    tipOf: (i, j, v) => (at(i, j) ? `${cols[j]}: ${shown(at(i, j).label)} ${v}` : `${cols[j]}: none`),
  });
}

// one unit followed over the steps: its state and each gate, as lines
function unitChart(r, cols) {
  const series = [["s", transpose(r.states)[state.unit] || []]];
  if (r.gates) for (const [name, m] of Object.entries(r.gates.values)) series.push([name, transpose(m)[state.unit] || []]);
  const v = series.flatMap(([, s]) => s).filter(Number.isFinite);
  const lo = Math.min(0, ...v), hi = Math.max(1e-9, ...v);
  const W = Math.max(300, cols.length * 34) + 20, H = 160, x = (j) => 40 + j * ((W - 80) / Math.max(cols.length - 1, 1));
  const y = (val) => 10 + (H - 40) * (1 - (val - lo) / (hi - lo));
  const g = sv("svg", { width: W, height: H, class: "chart" });
  [lo, hi].forEach((val) => {
    const t = sv("text", { x: 34, y: y(val) + 4, "text-anchor": "end" });
    t.textContent = val.toPrecision(2);
    g.append(t);
  });
  cols.forEach((label, j) => {
    const t = sv("text", { x: x(j), y: H - 10, "text-anchor": "middle" });
    t.textContent = shown(label).slice(0, 6);
    g.append(t);
  });
  series.forEach(([name, s], n) => {
    const hue = (n * 67) % 360;
    g.append(sv("polyline", { points: s.map((val, j) => `${x(j)},${y(val)}`).join(" "), stroke: `hsl(${hue},70%,40%)`, class: "line" }));
    const key = sv("text", { x: W - 14, y: y(s[s.length - 1]) + 4, fill: `hsl(${hue},70%,40%)` });
    key.textContent = name;
    g.append(key);
    s.forEach((val, j) => {
      const c = sv("circle", { cx: x(j), cy: y(val), r: 4, fill: `hsl(${hue},70%,40%)`, class: "cell" });
      c.dataset.v = String(val);
      c.dataset.tip = `unit ${state.unit}, ${name} at ${shown(cols[j])}: ${val}`;
      const t = sv("title");
      t.textContent = c.dataset.tip;
      c.append(t);
      g.append(c);
    });
  });
  const names = series.map(([n]) => n).join(", ");
  return section("unit", `unit ${state.unit} over the steps`, `pick it above, or click a row of a heatmap: ${names}`, g);
}

function render() {
  const r = REPORTS[state.sentence], main = document.getElementById("views");
  if (!r) return; // a page with no sentence yet (serve --explain's text box)
  const cols = (r.source || r.row).map(shown), units = Array.from({ length: r.states[0].length }, (_, i) => i);
  const add = (o) => main.append(heatmap(o));
  main.replaceChildren();
  unitBox.max = units.length - 1;
  state.unit = Math.min(state.unit, units.length - 1);
  unitBox.value = state.unit;
  const answer = r.translation !== undefined ? r.translation : [].concat(r.prediction).map(shown).join(" ");
  document.getElementById("said").textContent = `${r.text} → ${answer}`;
  main.append(predictions(r));
  if (r.probabilities) {
    const p = r.probabilities;
    add({ name: "probabilities", title: "every label's probability", note: p.of, values: transpose(p.P), rows: p.labels, cols, kind: "probability" });
  }
  if (r.readout_weights)
    add({ name: "readout", title: "attention readout weights α_t", note: "r = Σ_t α_t s_t", values: [r.readout_weights], rows: ["α"], cols, kind: "probability" });
  if (r.attention)
    add({ name: "attention", title: "attention α (target × source)", note: "each row sums to 1", values: r.attention, rows: r.target.map(shown), cols, kind: "probability" });
  const dirs = r.directions > 1 ? `; units 0 .. ${units.length / 2 - 1} read left to right, the rest right to left` : "";
  add({ name: "states", title: `hidden state s_t (units × steps), ${r.cell} cell`, note: `what the output reads${dirs}`, values: transpose(r.states), rows: units, cols, pick: true });
  if (r.gates)
    for (const [name, m] of Object.entries(r.gates.values))
      add({ name: `gate-${name}`, title: `${name} (units × steps)`, note: `layer ${r.gates.layer} of ${r.gates.layers}`, values: transpose(m), rows: units, cols, pick: true });
  main.append(unitChart(r, r.source || r.row));
  const flow = r.gradient_flow;
  if (flow && flow.G) {
    add({ name: "flow", title: "gradient flow G[t, k] = ‖∂L_t/∂s_k‖", note: `${flow.method}; row t: the loss at step t`, values: flow.G, rows: cols, cols, kind: "log" });
    add({ name: "wshare", title: "share of ∂L/∂W by step k", note: "over every loss", values: [flow.W_share], rows: ["W"], cols, kind: "probability" });
  } else if (flow) main.append(section("flow", "gradient flow", flow.note));
  const losses = r.target ? r.target.map(shown) : cols;
  add({ name: "connectivity", title: "connectivity ‖∂L_t/∂x_k‖", note: "row t: the loss at step t; column k: the input x_k", values: r.connectivity, rows: losses, cols, kind: "log" });
  if (r.hypotheses) {
    const items = r.hypotheses.map((h) => el("li", { "data-v": String(h.score) }, `${h.translation || "(empty)"}  (score ${h.score})`));
    main.append(section("beam", "the beam's hypotheses", "best first: log P / length penalty", el("ol", {}, ...items)));
  }
}

function pick(unit) {
  state.unit = unit;
  render();
}

function hover(e) {
  const said = e.target.dataset && e.target.dataset.tip;
  if (!said) return;
  tip.textContent = said;
  tip.style.left = `${e.pageX + 12}px`;
  tip.style.top = `${e.pageY + 12}px`;
  tip.hidden = false;
}

document.addEventListener("mouseover", hover);
document.addEventListener("mouseout", (e) => e.target.dataset && e.target.dataset.tip && (tip.hidden = true));
const unitBox = document.getElementById("unit");
unitBox.addEventListener("change", () => pick(Math.max(0, Math.floor(+unitBox.value) || 0)));
const picker = document.getElementById("sentence");
if (REPORTS.length > 1) {
  REPORTS.forEach((r, i) => picker.append(el("option", { value: i }, `${i + 1}. ${r.text}`)));
  picker.addEventListener("change", () => {
    state.sentence = +picker.value;
    render();
  });
} else picker.hidden = true;
render();
