// Building the DOM without innerHTML (names from the broker are never parsed as HTML),
// and the UI's small widgets: toasts, dialogs, cards, pills, empty states.

import { ApiError } from './api.js';

/** h('a', {href: '#/', class: 'x', onclick: f}, 'text', child, [more]) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  add(el, children);
  return el;
}

const SVGNS = 'http://www.w3.org/2000/svg';

export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVGNS, tag);
  setAttrs(el, attrs);
  add(el, children);
  return el;
}

function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style') Object.assign(el.style, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' || k === 'checked' || k === 'selected' || k === 'disabled') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
}

function add(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/**
 * Brings the rows of `tbody` to those of `fresh` (another tbody), keeping every row and
 * cell whose content did not change: a live refresh then leaves alone the button under
 * the pointer, a text selection and keyboard focus. Rows are matched by `data-name`
 * (else by position).
 */
export function morphRows(tbody, fresh) {
  // The same name may appear more than once (one per vhost): its n-th row is matched
  // with its n-th row.
  const keys = (body) => {
    const seen = new Map();
    return [...body.rows].map((r, i) => {
      if (r.dataset.name === undefined) return 'i:' + i;
      const n = (seen.get(r.dataset.name) || 0) + 1;
      seen.set(r.dataset.name, n);
      return `n:${n}:${r.dataset.name}`;
    });
  };
  const oldKeys = keys(tbody);
  const old = new Map([...tbody.rows].map((r, i) => [oldKeys[i], r]));
  const freshKeys = keys(fresh);
  const rows = [...fresh.rows].map((r, i) => {
    const o = old.get(freshKeys[i]);
    if (!o || o.cells.length !== r.cells.length || o.className !== r.className) return r;
    [...r.cells].forEach((c, j) => {
      const oc = o.cells[j];
      if (oc.innerHTML !== c.innerHTML || oc.className !== c.className || oc.colSpan !== c.colSpan) oc.replaceWith(c);
    });
    return o;
  });
  rows.forEach((r, i) => {
    if (tbody.rows[i] !== r) tbody.insertBefore(r, tbody.rows[i] || null);
  });
  while (tbody.rows.length > rows.length) tbody.rows[rows.length].remove();
}

/**
 * Shows `node` in `container`: when both the shown and the new node are tables with the
 * same head, only the changed rows and cells are replaced (see morphRows).
 */
export function swap(container, node) {
  const cur = container.firstElementChild;
  if (cur && container.childElementCount === 1 && cur.className === node.className) {
    const [a, b] = [cur, node].map((n) => (n.tagName === 'TABLE' ? n : n.querySelector(':scope > table')));
    if (a && b && a.tHead && b.tHead && a.tHead.innerHTML === b.tHead.innerHTML && a.tBodies[0] && b.tBodies[0]) {
      morphRows(a.tBodies[0], b.tBodies[0]);
      return;
    }
  }
  container.replaceChildren(node);
}

export function clear(el, ...children) {
  el.replaceChildren();
  add(el, children);
  return el;
}

// ---------- icons (24x24, stroked) ----------

const ICONS = {
  queue: 'M4 6h16M4 12h16M4 18h10',
  exchange: 'M7 7h13l-4-4M17 17H4l4 4',
  connection: 'M9 7V3M15 7V3M7 7h10v4a5 5 0 0 1-10 0zM12 16v5',
  channel: 'M3 8h18M3 16h18M8 4l-2 16M18 4l-2 16',
  user: 'M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8zM4 21a8 8 0 0 1 16 0',
  vhost: 'M4 5h16v6H4zM4 13h16v6H4zM8 8h.01M8 16h.01',
  policy: 'M12 3l8 3v6c0 5-3.5 8-8 9-4.5-1-8-4-8-9V6z',
  search: 'M11 18a7 7 0 1 1 0-14 7 7 0 0 1 0 14zM21 21l-5-5',
  alert: 'M12 3l10 18H2zM12 10v5M12 18h.01',
  consumer: 'M5 12h11M12 6l6 6-6 6M20 5v14',
  binding: 'M10 14a5 5 0 0 0 7 0l3-3a5 5 0 0 0-7-7l-1 1M14 10a5 5 0 0 0-7 0l-3 3a5 5 0 0 0 7 7l1-1',
  message: 'M4 5h16v11H8l-4 4z',
  download: 'M12 3v12M7 10l5 5 5-5M4 20h16',
  upload: 'M12 21V9M7 14l5-5 5 5M4 4h16',
};

export function icon(name, cls) {
  return s('svg', { viewBox: '0 0 24 24', fill: 'none', stroke: 'currentColor', 'stroke-width': '1.8',
    'stroke-linecap': 'round', 'stroke-linejoin': 'round', class: cls || 'icon', 'aria-hidden': 'true' },
  s('path', { d: ICONS[name] || ICONS.alert }));
}

// ---------- layout pieces ----------

/** A page header: crumbs (array of [text, href]), title, extra title nodes, actions. */
export function pageHead({ crumbs, title, badges, sub, actions }) {
  return h('div', { class: 'page-head' },
    h('div', { class: 'titles' },
      crumbs && crumbs.length ? h('div', { class: 'crumbs' },
        crumbs.map(([t, href], i) => [i ? h('span', { class: 'sep', 'aria-hidden': 'true' }, '›') : null,
          href ? h('a', { href }, t) : h('span', { class: 'vh', title: 'Virtual host' }, t)])) : null,
      h('h1', null, h('span', { class: 'title-text' }, title), badges || null),
      sub ? h('div', { class: 'sub' }, sub) : null),
    actions && actions.length ? h('div', { class: 'actions' }, actions) : null);
}

export function card({ title, actions, body, flush, id, cls }) {
  return h('section', { class: ['card', cls], id },
    title ? h('div', { class: 'card-head' }, h('h2', null, title), actions || null) : null,
    h('div', { class: flush ? 'card-body flush' : 'card-body' }, body));
}

export function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', null, k), h('dd', null, v ?? '—')]));
}

export function pill(text, kind) {
  return h('span', { class: ['pill', kind] }, text);
}

/** A status pill coloured by what the state means. */
export function statePill(state) {
  const st = String(state ?? 'unknown');
  const kind = {
    running: 'ok', up: 'ok', ok: 'ok', idle: '', flow: 'warn', blocking: 'warn', blocked: 'err',
    starting: 'info', tuning: 'info', opening: 'info', closing: '', closed: '', down: 'err', stopped: 'err',
    crashed: 'err', terminated: 'err', waiting: 'warn', 'single_active': 'info',
  }[st] ?? '';
  return pill(st, kind);
}

export function chip(text, cls, title) {
  return h('span', { class: ['chip', cls], title }, text);
}

/** An empty state: what is missing and what to do about it. */
export function empty({ iconName, title, text, cta, small }) {
  return h('div', { class: ['empty', small && 'small'] },
    h('div', { class: 'icon' }, icon(iconName || 'search')),
    h('div', { class: 'title' }, title),
    text ? h('div', { class: 'text' }, text) : null,
    cta ? h('div', { class: 'cta' }, cta) : null);
}

export function loading(text = 'Loading…') {
  return h('div', { class: 'loading' }, text);
}

export function meter({ label, used, total, text, note, warnAt = 0.8, alarm }) {
  const frac = total > 0 ? Math.min(1, used / total) : 0;
  const fill = h('div', { class: 'fill' });
  fill.style.width = (frac * 100).toFixed(1) + '%';
  return h('div', { class: ['meter', alarm ? 'alarm' : frac >= warnAt ? 'warn' : null] },
    h('div', { class: 'top' }, h('span', null, label), h('b', null, text)),
    h('div', { class: 'bar', role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': total, 'aria-valuenow': used, 'aria-label': label }, fill),
    note ? h('div', { class: 'note' }, note) : null);
}

// ---------- toasts ----------

let toastHost = null;

function host() {
  if (!toastHost || !toastHost.isConnected) {
    toastHost = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(toastHost);
  }
  return toastHost;
}

/** kind: ok | error | warn | info */
export function toast(kind, title, text, ms) {
  const close = () => {
    t.classList.add('leaving');
    setTimeout(() => t.remove(), 200);
  };
  const t = h('div', { class: ['toast', kind], role: kind === 'error' ? 'alert' : null, dataset: { kind } },
    h('div', { class: 'tbody' }, h('div', { class: 'ttitle' }, title), text ? h('div', { class: 'ttext' }, text) : null),
    h('button', { type: 'button', 'aria-label': 'Dismiss', onclick: close }, '×'));
  host().append(t);
  setTimeout(close, ms ?? (kind === 'error' ? 12000 : 5000));
  return t;
}

/** A failed action: the API's error name and reason. */
export function toastError(err, what) {
  if (err instanceof ApiError) {
    const title = what ? `${what}: ${err.error || 'failed'}` : (err.error || 'Request failed');
    toast('error', title, err.reason || err.message);
  } else {
    toast('error', what || 'Something went wrong', String(err && err.message || err));
  }
}

// ---------- dialogs ----------

/**
 * A modal dialog. `body` is a node; `buttons` [{text, cls, value}] close it with their
 * value; resolves with that value (or null when dismissed).
 */
export function modal({ title, body, buttons, narrow }) {
  return new Promise((resolve) => {
    const d = h('dialog', { class: narrow ? 'narrow' : null },
      h('div', { class: 'dhead' }, h('h2', null, title),
        h('button', { type: 'button', class: 'ghost small', 'aria-label': 'Close', onclick: () => d.close('') }, '×')),
      h('div', { class: 'dbody' }, body),
      h('div', { class: 'dfoot' }, buttons.map((b) =>
        h('button', { type: 'button', class: b.cls, dataset: { value: b.value }, onclick: () => d.close(b.value) }, b.text))));
    d.addEventListener('close', () => {
      d.remove();
      resolve(d.returnValue || null);
    });
    document.body.append(d);
    d.showModal();
    const first = d.querySelector('.dbody input, .dbody select, .dbody textarea');
    const focus = first || d.querySelector('.dfoot button:last-child');
    if (focus) focus.focus();
  });
}

/** Asks to confirm a destructive action; resolves true to go ahead. */
export async function confirm({ title, text, ok = 'Delete', danger = true, extra }) {
  const v = await modal({
    title,
    narrow: true,
    body: h('div', null, h('p', null, text), extra || null),
    buttons: [{ text: 'Cancel', cls: 'ghost', value: 'cancel' }, { text: ok, cls: danger ? 'danger solid' : 'primary', value: 'ok' }],
  });
  return v === 'ok';
}

/**
 * A dialog holding a form: `submit(form)` runs on submit; an API error is shown in the
 * dialog (and the dialog stays open), success closes it. Resolves with submit's result.
 */
export function formDialog({ title, fields, submitText, submit }) {
  return new Promise((resolve) => {
    const error = h('div', { class: 'form-error', hidden: true, role: 'alert' });
    const id = 'f' + Math.random().toString(36).slice(2);
    const btn = h('button', { type: 'submit', class: 'primary', form: id }, submitText);
    const form = h('form', { class: 'form', novalidate: true, id }, fields, error);
    const d = h('dialog', null,
      h('div', { class: 'dhead' }, h('h2', null, title),
        h('button', { type: 'button', class: 'ghost small', 'aria-label': 'Close', onclick: () => d.close() }, '×')),
      h('div', { class: 'dbody' }, form),
      h('div', { class: 'dfoot' },
        h('button', { type: 'button', class: 'ghost', onclick: () => d.close() }, 'Cancel'),
        btn));
    let result = null;
    const go = async (e) => {
      e.preventDefault();
      error.hidden = true;
      btn.disabled = true;
      btn.classList.add('busy');
      try {
        result = await submit(form);
        if (result === undefined) result = true;
        d.close();
      } catch (err) {
        error.hidden = false;
        error.textContent = err instanceof ApiError ? `${err.error}: ${err.reason}` : String(err.message || err);
        if (err instanceof ApiError) toastError(err, title);
      } finally {
        btn.disabled = false;
        btn.classList.remove('busy');
      }
    };
    form.addEventListener('submit', go);
    d.addEventListener('close', () => {
      d.remove();
      resolve(result);
    });
    document.body.append(d);
    d.showModal();
    const first = form.querySelector('input:not([type=checkbox]), select, textarea');
    if (first) first.focus();
  });
}

/** Runs an action from a button: busy state, success toast, error toast. */
export async function act(button, fn, okTitle, okText, failTitle) {
  if (button) {
    button.disabled = true;
    button.classList.add('busy');
  }
  try {
    const r = await fn();
    if (okTitle) toast('ok', okTitle, okText);
    return r;
  } catch (err) {
    toastError(err, failTitle);
    return undefined;
  } finally {
    if (button && button.isConnected) {
      button.disabled = false;
      button.classList.remove('busy');
    }
  }
}

/** Triggers a download of `text` as a file. */
export function download(name, text, type = 'application/json') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  setTimeout(() => { URL.revokeObjectURL(url); a.remove(); }, 1000);
}
