// DOM building for the dashboard: strings always become text nodes, never HTML.
//
// Invariant: text that came from the daemon (tool inputs, reasons, notes...) only ever reaches the
// page through `textContent` or attribute values, never as HTML: an agent controls those strings.
// Invisible and direction-changing characters in it (bidi overrides, zero-width, controls) are
// shown escaped and highlighted (`\u{202E}`), so a command cannot read as another.

export function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    if (child instanceof Node) node.append(child);
    else node.append(...visible(String(child)));
  }
  return node;
}

export function setText(node, text) {
  if (text === null || text === undefined || text === '') node.textContent = '—';
  else setVisible(node, String(text));
}

// Characters that are invisible or change how text around them reads: C0/C1 controls (not
// newline or tab), DEL, soft hyphen, bidi marks, embeddings, overrides and isolates, zero-width
// and word-joiner characters, line/paragraph separators, variation selectors, BOM, fillers,
// interlinear annotation marks, and tag characters.
export const HIDDEN_CHARS = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F\u00AD\u034F\u061C\u115F\u1160\u17B4\u17B5\u180B-\u180F\u200B-\u200F\u2028-\u202E\u2060-\u206F\u3164\uFE00-\uFE0F\uFEFF\uFFA0\uFFF9-\uFFFB]|\uDB40[\uDC00-\uDCFF]/g;

export function codePointName(ch) {
  const cp = ch.codePointAt(0);
  return `\\u{${cp.toString(16).toUpperCase().padStart(4, '0')}}`;
}

/** Whether `text` holds a character `visible` escapes. */
export function hasHidden(text) {
  HIDDEN_CHARS.lastIndex = 0;
  const found = typeof text === 'string' && HIDDEN_CHARS.test(text);
  HIDDEN_CHARS.lastIndex = 0;
  return found;
}

/** `text` as nodes: plain runs as text, each hidden character as a highlighted escape. */
export function visible(text) {
  const nodes = [];
  let last = 0;
  HIDDEN_CHARS.lastIndex = 0;
  for (const match of text.matchAll(HIDDEN_CHARS)) {
    if (match.index > last) nodes.push(document.createTextNode(text.slice(last, match.index)));
    const esc = document.createElement('span');
    esc.className = 'esc';
    esc.dataset.testid = 'escaped-char';
    esc.title = 'invisible or direction-changing character';
    esc.textContent = codePointName(match[0]);
    nodes.push(esc);
    last = match.index + match[0].length;
  }
  if (last < text.length) nodes.push(document.createTextNode(text.slice(last)));
  return nodes;
}

export function setVisible(node, text) {
  node.replaceChildren(...visible(String(text)));
}
