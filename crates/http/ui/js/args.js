// A key = value (type) editor for arguments, headers, properties and policy
// definitions, with one-click shortcuts for the keys that mean something to the broker.

import { h } from './dom.js';

const TYPES = ['String', 'Number', 'Boolean', 'List'];

/** Queue arguments RabbitMQ's UI offers (and Warren implements). */
export const QUEUE_ARGS = [
  { key: 'x-message-ttl', label: 'Message TTL', type: 'Number', hint: 'ms' },
  { key: 'x-expires', label: 'Auto expire', type: 'Number', hint: 'ms' },
  { key: 'x-max-length', label: 'Max length', type: 'Number' },
  { key: 'x-max-length-bytes', label: 'Max length bytes', type: 'Number' },
  { key: 'x-overflow', label: 'Overflow behaviour', type: 'String', hint: 'drop-head, reject-publish or reject-publish-dlx' },
  { key: 'x-dead-letter-exchange', label: 'Dead letter exchange', type: 'String' },
  { key: 'x-dead-letter-routing-key', label: 'Dead letter routing key', type: 'String' },
  { key: 'x-single-active-consumer', label: 'Single active consumer', type: 'Boolean', value: 'true' },
  { key: 'x-max-priority', label: 'Maximum priority', type: 'Number', hint: '1 to 255' },
  { key: 'x-delivery-limit', label: 'Delivery limit', type: 'Number' },
  { key: 'x-message-deduplication', label: 'Deduplication', type: 'Boolean', value: 'true' },
];

export const EXCHANGE_ARGS = [
  { key: 'alternate-exchange', label: 'Alternate exchange', type: 'String' },
  { key: 'x-delayed-type', label: 'Delayed type', type: 'String', hint: 'for x-delayed-message exchanges' },
];

export const BINDING_ARGS = [
  { key: 'x-match', label: 'x-match', type: 'String', hint: 'all, any, all-with-x or any-with-x (headers exchanges)' },
];

export const POLICY_KEYS = [
  { key: 'message-ttl', label: 'Message TTL', type: 'Number' },
  { key: 'expires', label: 'Auto expire', type: 'Number' },
  { key: 'max-length', label: 'Max length', type: 'Number' },
  { key: 'max-length-bytes', label: 'Max length bytes', type: 'Number' },
  { key: 'overflow', label: 'Overflow behaviour', type: 'String' },
  { key: 'dead-letter-exchange', label: 'Dead letter exchange', type: 'String' },
  { key: 'dead-letter-routing-key', label: 'Dead letter routing key', type: 'String' },
  { key: 'delivery-limit', label: 'Delivery limit', type: 'Number' },
  { key: 'consumer-timeout', label: 'Consumer timeout', type: 'Number' },
  { key: 'alternate-exchange', label: 'Alternate exchange', type: 'String' },
  { key: 'max-priority', label: 'Max priority', type: 'Number' },
];

export const PROPERTIES = [
  { key: 'content_type', label: 'content_type', type: 'String', value: 'application/json' },
  { key: 'content_encoding', label: 'content_encoding', type: 'String' },
  { key: 'priority', label: 'priority', type: 'Number' },
  { key: 'correlation_id', label: 'correlation_id', type: 'String' },
  { key: 'reply_to', label: 'reply_to', type: 'String' },
  { key: 'expiration', label: 'expiration', type: 'String', hint: 'ms, as a string' },
  { key: 'message_id', label: 'message_id', type: 'String' },
  { key: 'timestamp', label: 'timestamp', type: 'Number', hint: 'seconds since 1970' },
  { key: 'type', label: 'type', type: 'String' },
  { key: 'user_id', label: 'user_id', type: 'String' },
  { key: 'app_id', label: 'app_id', type: 'String' },
];

function typeOf(v) {
  if (typeof v === 'number') return 'Number';
  if (typeof v === 'boolean') return 'Boolean';
  if (Array.isArray(v)) return 'List';
  return 'String';
}

export class ArgsEditor {
  /** quick: shortcut keys; initial: an object to start from; name: used in input names. */
  constructor({ quick = [], initial = {}, name = 'arg', types = true } = {}) {
    this.quick = quick;
    this.name = name;
    this.types = types;
    this.rows = h('div', { class: 'rows' });
    this.el = h('div', { class: types ? 'kvedit' : 'kvedit notypes' }, this.rows);
    for (const [k, v] of Object.entries(initial)) {
      this.addRow(k, typeof v === 'object' ? JSON.stringify(v) : String(v), typeOf(v));
    }
    this.addRow();
    if (quick.length) {
      this.el.append(h('div', { class: 'quick' }, 'Add',
        quick.map((q) => h('button', {
          type: 'button', class: 'chip', title: q.hint ? `${q.key} (${q.hint})` : q.key,
          onclick: () => this.set(q.key, q.value ?? '', q.type),
        }, q.label))));
    }
  }

  addRow(key = '', val = '', type = 'String') {
    const k = h('input', { type: 'text', name: `${this.name}-key`, placeholder: 'key', value: key, 'aria-label': 'Key', autocomplete: 'off' });
    const v = h('input', { type: 'text', name: `${this.name}-value`, placeholder: 'value', value: val, 'aria-label': 'Value', autocomplete: 'off' });
    const t = h('select', { name: `${this.name}-type`, 'aria-label': 'Type' }, TYPES.map((x) => h('option', { value: x, selected: x === type }, x)));
    const row = h('div', { class: 'row' }, k, h('span', { class: 'eq' }, '='), v, this.types ? t : null,
      h('button', { type: 'button', class: 'ghost small', 'aria-label': 'Remove', title: 'Remove', onclick: () => {
        row.remove();
        if (!this.rows.children.length) this.addRow();
      } }, '×'));
    const grow = () => {
      if (row === this.rows.lastElementChild && (k.value || v.value)) this.addRow();
    };
    k.addEventListener('input', grow);
    v.addEventListener('input', grow);
    this.rows.append(row);
    return row;
  }

  /** Sets a key (reusing its row, or the empty last row) and focuses its value. */
  set(key, val, type) {
    let row = [...this.rows.children].find((r) => r.querySelector('input').value === key);
    if (!row) {
      const last = this.rows.lastElementChild;
      const inputs = last && last.querySelectorAll('input');
      row = last && !inputs[0].value && !inputs[1].value ? last : this.addRow();
    }
    const [k, v] = row.querySelectorAll('input');
    k.value = key;
    if (val !== undefined && !v.value) v.value = val;
    const sel = row.querySelector('select');
    if (sel) sel.value = type || 'String';
    if (row === this.rows.lastElementChild) this.addRow();
    v.focus();
  }

  /** Without a type column, the type of a quick key, else String. */
  typeOf(key) {
    const q = this.quick.find((x) => x.key === key);
    return q ? q.type : 'String';
  }

  /** The object entered; throws an Error naming a bad value. */
  value() {
    const out = {};
    for (const row of this.rows.children) {
      const [k, v] = row.querySelectorAll('input');
      const sel = row.querySelector('select');
      const key = k.value.trim();
      const type = sel ? sel.value : this.typeOf(key);
      if (!key) {
        if (v.value.trim()) throw new Error(`A value (${v.value}) has no key`);
        continue;
      }
      out[key] = convert(key, v.value, type);
    }
    return out;
  }
}

function convert(key, raw, type) {
  const text = raw.trim();
  switch (type) {
    case 'Number': {
      const n = Number(text);
      if (text === '' || !Number.isFinite(n)) throw new Error(`${key}: "${raw}" is not a number`);
      return n;
    }
    case 'Boolean':
      if (/^(true|yes|1)$/i.test(text)) return true;
      if (/^(false|no|0)$/i.test(text)) return false;
      throw new Error(`${key}: "${raw}" is not true or false`);
    case 'List':
      if (text.startsWith('[')) {
        try { return JSON.parse(text); } catch { throw new Error(`${key}: "${raw}" is not a JSON list`); }
      }
      return text ? text.split(',').map((x) => x.trim()) : [];
    default:
      return raw;
  }
}
