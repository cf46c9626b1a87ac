// A line chart drawn as SVG by hand (no chart library: nothing to fetch, nothing to
// build). Series are kept by the caller as [{name, points: [[timeMs, value], ...]}];
// each draw replaces the chart, which is cheap at the overview's few hundred points.

import { h, svg } from "./dom.js";

const WIDTH = 640;
const HEIGHT = 200;
const PAD = { left: 64, right: 12, top: 12, bottom: 24 };
const COLORS = ["#2f7bd9", "#2bb673", "#e0a100", "#d9534f", "#8e6cd9", "#15a2b8"];

function extent(values) {
  let low = Math.min(...values);
  let high = Math.max(...values);
  if (low === high) { low -= 1; high += 1; } // a flat line sits in the middle
  return [low, high];
}

function label(value) {
  const magnitude = Math.abs(value);
  if (magnitude >= 1e6) return `${(value / 1e6).toFixed(2)} M`;
  if (magnitude >= 1e3) return `${(value / 1e3).toFixed(2)} k`;
  return value.toFixed(magnitude < 10 ? 2 : 0);
}

/** Return an SVG line chart of `series`, titled `title`, with a legend of last values. */
export function lineChart(title, series, { testid } = {}) {
  const drawn = series.filter((s) => s.points.length);
  const box = h("figure", { class: "chart", "data-testid": testid });
  box.append(h("figcaption", {}, title));
  if (!drawn.length) {
    box.append(h("p", { class: "empty" }, "waiting for data"));
    return box;
  }
  const times = drawn.flatMap((s) => s.points.map((p) => p[0]));
  const values = drawn.flatMap((s) => s.points.map((p) => p[1]));
  const [t0, t1] = times.length > 1 ? extent(times) : [times[0] - 1000, times[0] + 1000];
  const [v0, v1] = extent(values);
  const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * (WIDTH - PAD.left - PAD.right);
  const y = (v) => HEIGHT - PAD.bottom - ((v - v0) / (v1 - v0)) * (HEIGHT - PAD.top - PAD.bottom);
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-label": title });
  const grid = [v0, (v0 + v1) / 2, v1];
  for (const value of grid) {
    chart.append(svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(value), y2: y(value), class: "grid" }));
    chart.append(svg("text", { x: PAD.left - 6, y: y(value) + 4, "text-anchor": "end", class: "axis" }, label(value)));
  }
  const seconds = Math.round((t1 - t0) / 1000);
  chart.append(svg("text", { x: WIDTH - PAD.right, y: HEIGHT - 6, "text-anchor": "end", class: "axis" }, "now"));
  chart.append(svg("text", { x: PAD.left, y: HEIGHT - 6, class: "axis" }, `-${seconds} s`));
  drawn.forEach((s, index) => {
    const color = COLORS[index % COLORS.length];
    const path = s.points.map((p, i) => `${i ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
    chart.append(svg("path", { d: path, fill: "none", stroke: color, "stroke-width": 2 }));
    const last = s.points[s.points.length - 1];
    chart.append(svg("circle", { cx: x(last[0]), cy: y(last[1]), r: 3, fill: color }));
  });
  box.append(chart);
  box.append(h("ul", { class: "legend" }, drawn.map((s, index) => {
    const swatch = svg("svg", { viewBox: "0 0 10 10", class: "swatch" },
      svg("rect", { width: 10, height: 10, fill: COLORS[index % COLORS.length] }));
    const last = s.points[s.points.length - 1][1];
    return h("li", { "data-series": s.name }, swatch, ` ${s.name}: `, h("strong", {}, label(last)));
  })));
  return box;
}

/** Append a point to a named series, keeping at most `keep` points. */
export function record(series, name, time, value, keep = 300) {
  if (value === null || value === undefined || !Number.isFinite(Number(value))) return;
  let found = series.find((s) => s.name === name);
  if (!found) { found = { name, points: [] }; series.push(found); }
  found.points.push([time, Number(value)]);
  if (found.points.length > keep) found.points.splice(0, found.points.length - keep);
}
