// A small Markdown renderer for the runbooks, building DOM nodes directly: the text is
// never turned into an HTML string, so markup inside a runbook (<script>, <img onerror>)
// shows up as the characters it is. It covers what runbooks use: headings, paragraphs,
// bullet and numbered lists (with continuation lines), tables, fenced code, inline code,
// bold, emphasis and links (shown as text with their target: the console opens nothing).

import { h } from "./dom.js";

const HEADING = /^(#{1,6})\s+(.*)$/;
const BULLET = /^(\s*)[-*+]\s+(.*)$/;
const NUMBERED = /^(\s*)(\d+)[.)]\s+(.*)$/;
const FENCE = /^\s*```/;
const TABLE_RULE = /^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/;
const INLINE = /(`[^`]+`)|(\*\*[^*]+\*\*)|(\*[^*\s][^*]*\*)|(\[[^\]]+\]\([^)\s]+\))/;

/** Return inline nodes for a line: code, bold, emphasis, links; the rest is text. */
export function inline(text) {
  const nodes = [];
  let rest = text;
  while (rest) {
    const match = INLINE.exec(rest);
    if (!match) { nodes.push(rest); break; }
    if (match.index) nodes.push(rest.slice(0, match.index));
    const token = match[0];
    if (match[1]) nodes.push(h("code", {}, token.slice(1, -1)));
    else if (match[2]) nodes.push(h("strong", {}, inline(token.slice(2, -2))));
    else if (match[3]) nodes.push(h("em", {}, inline(token.slice(1, -1))));
    else {
      const [, label, target] = /^\[([^\]]+)\]\(([^)\s]+)\)$/.exec(token);
      nodes.push(h("span", { class: "md-link", title: target }, inline(label)),
        " (", h("code", {}, target), ")");
    }
    rest = rest.slice(match.index + token.length);
  }
  return nodes;
}

function cells(line) {
  const trimmed = line.trim().replace(/^\|/, "").replace(/\|$/, "");
  return trimmed.split("|").map((cell) => cell.trim());
}

function isBlockStart(line, next) {
  return HEADING.test(line) || BULLET.test(line) || NUMBERED.test(line) || FENCE.test(line)
    || (line.includes("|") && next !== undefined && TABLE_RULE.test(next));
}

function list(lines, start, ordered) {
  const pattern = ordered ? NUMBERED : BULLET;
  const items = [];
  let i = start;
  while (i < lines.length) {
    const match = pattern.exec(lines[i]);
    if (!match) {
      // an indented continuation line belongs to the item above it
      if (items.length && /^\s{2,}\S/.test(lines[i]) && !BULLET.test(lines[i]) && !NUMBERED.test(lines[i])) {
        items[items.length - 1].push(lines[i].trim());
        i += 1;
        continue;
      }
      break;
    }
    items.push([ordered ? match[3] : match[2]]);
    i += 1;
  }
  const node = h(ordered ? "ol" : "ul", {}, items.map((parts) => h("li", {}, inline(parts.join(" ")))));
  return [node, i];
}

/** Return a document fragment rendering `text` (Markdown) as safe DOM nodes. */
export function renderMarkdown(text) {
  const fragment = document.createDocumentFragment();
  const lines = String(text).replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) { i += 1; continue; }
    if (FENCE.test(line)) {
      const code = [];
      i += 1;
      while (i < lines.length && !FENCE.test(lines[i])) { code.push(lines[i]); i += 1; }
      fragment.append(h("pre", { class: "md-code" }, h("code", {}, code.join("\n"))));
      i += 1;
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      const level = Math.min(6, heading[1].length + 1); // the page has its own h1
      fragment.append(h(`h${level}`, {}, inline(heading[2])));
      i += 1;
      continue;
    }
    if (line.includes("|") && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1])) {
      const header = cells(line);
      const rows = [];
      i += 2;
      while (i < lines.length && lines[i].includes("|") && lines[i].trim()) { rows.push(cells(lines[i])); i += 1; }
      fragment.append(h("table", { class: "md-table" },
        h("thead", {}, h("tr", {}, header.map((c) => h("th", {}, inline(c))))),
        h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, inline(c))))))));
      continue;
    }
    if (BULLET.test(line) || NUMBERED.test(line)) {
      const [node, next] = list(lines, i, NUMBERED.test(line));
      fragment.append(node);
      i = next;
      continue;
    }
    const paragraph = [line.trim()];
    i += 1;
    while (i < lines.length && lines[i].trim() && !isBlockStart(lines[i], lines[i + 1])) {
      paragraph.push(lines[i].trim());
      i += 1;
    }
    fragment.append(h("p", {}, inline(paragraph.join(" "))));
  }
  return fragment;
}
