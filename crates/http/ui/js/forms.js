// Form pieces shared by pages: labelled rows, selects, and the forms the exchange and
// queue pages share (publish a message, bind, list bindings).

import { del, enc, exSeg, get, post } from './api.js';
import { ArgsEditor, BINDING_ARGS, PROPERTIES } from './args.js';
import { act, chip, confirm, empty, h, toast } from './dom.js';
import { value as fmtValue } from './fmt.js';
import { refreshNow, route, state } from './state.js';

/** A labelled row of a `.form` grid: [label, control, hint]. */
export function row(label, control, hint) {
  const controls = Array.isArray(control) ? control : [control];
  const first = controls[0];
  const id = first.id || (first.querySelector && first.querySelector('input, select, textarea')?.id);
  return [
    h('label', { for: id || null, class: controls.some((c) => c.classList && (c.classList.contains('kvedit') || c.tagName === 'TEXTAREA')) ? 'top' : null }, label),
    h('div', { class: 'control' }, controls),
    hint ? h('div', { class: 'hint' }, hint) : null,
  ];
}

let uid = 0;
export function input(name, attrs = {}) {
  return h('input', { type: 'text', name, id: `in-${name}-${++uid}`, autocomplete: 'off', ...attrs });
}

export function select(name, options, value, attrs = {}) {
  return h('select', { name, id: `in-${name}-${++uid}`, ...attrs },
    options.map((o) => {
      const [v, t] = Array.isArray(o) ? o : [o, o];
      return h('option', { value: v, selected: v === value }, t);
    }));
}

export function textarea(name, attrs = {}) {
  return h('textarea', { name, id: `in-${name}-${++uid}`, rows: 5, ...attrs });
}

export function vhostSelect(name, value, { all = false } = {}) {
  const opts = state.vhosts.map((v) => [v, v]);
  return select(name, all ? [['', 'All virtual hosts'], ...opts] : opts, value);
}

export function checkbox(name, label, checked = false) {
  return h('label', { class: 'checkline' }, h('input', { type: 'checkbox', name, checked }), label);
}

export function buttons(...btns) {
  return h('div', { class: 'buttons' }, btns);
}

/** Names of exchanges or queues of a vhost, for a datalist (fetched once per focus). */
export function namesList(kind, vhost) {
  const list = h('datalist', { id: `dl-${kind}-${++uid}` });
  const load = async () => {
    try {
      const items = await get(`/${kind}/${enc(vhost)}?columns=name&sort=name`);
      list.replaceChildren(...items.filter((x) => x.name !== '').map((x) => h('option', { value: x.name })));
    } catch { /* suggestions only */ }
  };
  return { list, load };
}

/** The form to publish a message to `exchange` (routing key fixed for a queue's page). */
export function publishForm({ vhost, exchange, routingKey, fixedKey = false }) {
  const key = input('routing_key', { value: routingKey ?? '', readonly: fixedKey, placeholder: fixedKey ? '' : 'routing key' });
  const mode = select('delivery_mode', [['1', '1 - Non-persistent'], ['2', '2 - Persistent']], '1', { class: 'short' });
  const headers = new ArgsEditor({ name: 'header' });
  const props = new ArgsEditor({ name: 'prop', quick: PROPERTIES, types: false });
  const payload = textarea('payload', { rows: 6, placeholder: 'Message body' });
  const encoding = select('payload_encoding', [['string', 'String'], ['base64', 'Base64']], 'string', { class: 'short' });
  const btn = h('button', { type: 'submit', class: 'primary' }, 'Publish message');
  const form = h('form', { class: 'form publish-form' },
    row('Routing key', key, fixedKey ? 'Published to the default exchange, which routes by queue name.' : null),
    row('Delivery mode', mode),
    row('Headers', headers.el),
    row('Properties', props.el),
    row('Payload', payload),
    row('Payload encoding', encoding),
    buttons(btn));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    let properties;
    try {
      properties = { delivery_mode: Number(mode.value) };
      const hs = headers.value();
      if (Object.keys(hs).length) properties.headers = hs;
      for (const [k, v] of Object.entries(props.value())) {
        properties[k] = ['priority', 'timestamp', 'delivery_mode'].includes(k) && v !== '' ? Number(v) : v;
      }
    } catch (err) {
      toast('error', 'Cannot publish', err.message);
      return;
    }
    const r = await act(btn, () => post(`/exchanges/${enc(vhost)}/${exSeg(exchange)}/publish`, {
      properties, routing_key: key.value, payload: payload.value, payload_encoding: encoding.value,
    }), null, null, 'Publish failed');
    if (!r) return;
    if (r.routed) toast('ok', 'Message published', fixedKey ? `to queue ${key.value}` : `routing key "${key.value}"`);
    else toast('warn', 'Message published, but not routed', 'No queue is bound to match its routing key.');
    refreshNow();
  });
  return form;
}

/**
 * The form to add a binding. On a queue's page `queue` is set (the source exchange is
 * entered); on an exchange's page `exchange` is set (the destination is entered).
 */
export function bindForm({ vhost, queue, exchange }) {
  const args = new ArgsEditor({ name: 'bind-arg', quick: BINDING_ARGS });
  const key = input('routing_key', { placeholder: 'routing key' });
  const btn = h('button', { type: 'submit', class: 'primary' }, 'Bind');
  let fields;
  let target;
  if (queue !== undefined) {
    const { list, load } = namesList('exchanges', vhost);
    const src = input('source', { list: list.id, placeholder: 'exchange name', required: true });
    src.addEventListener('focus', load, { once: true });
    fields = [row('From exchange', [src, list])];
    target = () => ({ path: `/bindings/${enc(vhost)}/e/${enc(src.value)}/q/${enc(queue)}`, what: `${src.value} → ${queue}` });
  } else {
    const kind = select('destination_type', [['q', 'To queue'], ['e', 'To exchange']], 'q', { class: 'short' });
    const qs = namesList('queues', vhost);
    const xs = namesList('exchanges', vhost);
    const dest = input('destination', { list: qs.list.id, placeholder: 'queue name', required: true });
    dest.addEventListener('focus', () => (kind.value === 'q' ? qs : xs).load());
    kind.addEventListener('change', () => {
      dest.setAttribute('list', (kind.value === 'q' ? qs : xs).list.id);
      dest.placeholder = kind.value === 'q' ? 'queue name' : 'exchange name';
    });
    fields = [row('Destination', [kind, dest, qs.list, xs.list])];
    target = () => ({ path: `/bindings/${enc(vhost)}/e/${enc(exchange)}/${kind.value}/${enc(dest.value)}`, what: `${exchange} → ${dest.value}` });
  }
  const form = h('form', { class: 'form bind-form' }, fields, row('Routing key', key), row('Arguments', args.el), buttons(btn));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    let a;
    try { a = args.value(); } catch (err) { toast('error', 'Cannot bind', err.message); return; }
    const t = target();
    const done = await act(btn, () => post(t.path, { routing_key: key.value, arguments: a }).then(() => true),
      'Binding added', t.what, 'Bind failed');
    if (done) {
      key.value = '';
      refreshNow();
    }
  });
  return form;
}

/** A table of bindings, with Unbind buttons. `side`: which end to show ('source' or 'destination'). */
export function bindingsTable(bindings, { side, vhost, defaultNote }) {
  if (!bindings.length) {
    return empty({ iconName: 'binding', small: true, title: 'No bindings', text: side === 'destination' ? 'Nothing is bound from this exchange yet.' : 'Nothing is bound to this yet.' });
  }
  const rows = bindings.map((b) => {
    const isDefault = b.source === '' ;
    const endName = side === 'source' ? b.source : b.destination;
    const endType = side === 'source' ? 'exchange' : b.destination_type;
    const link = isDefault && side === 'source'
      ? h('span', { class: 'muted' }, '(Default exchange binding)')
      : h('a', { href: endType === 'queue' ? route('queues', vhost, endName) : route('exchanges', vhost, endName || 'amq.default') }, endName);
    const unbind = isDefault ? h('span', { class: 'faint', title: defaultNote || 'Every queue is bound to the default exchange by its name' }, 'implicit')
      : h('button', { type: 'button', class: 'small danger', onclick: async (e) => {
        const ok = await confirm({ title: 'Remove binding?', text: `Unbind ${b.source} → ${b.destination} (routing key "${b.routing_key}")?`, ok: 'Unbind' });
        if (!ok) return;
        const t = b.destination_type === 'queue' ? 'q' : 'e';
        const done = await act(e.target, () => del(`/bindings/${enc(vhost)}/e/${enc(b.source)}/${t}/${enc(b.destination)}/${enc(b.properties_key)}`).then(() => true),
          'Binding removed', null, 'Unbind failed');
        if (done) refreshNow();
      } }, 'Unbind');
    const args = Object.entries(b.arguments || {});
    return h('tr', null,
      h('td', { class: 'name' }, link, side === 'destination' ? h('span', { class: 'secondary' }, endType) : null),
      h('td', null, b.routing_key === '' ? h('span', { class: 'faint' }, '(empty)') : h('code', null, b.routing_key)),
      h('td', null, args.length ? h('span', { class: 'chips' }, args.map(([k, v]) => chip(`${k}: ${fmtValue(v)}`, 'mono'))) : h('span', { class: 'faint' }, '—')),
      h('td', { class: 'actions' }, unbind));
  });
  return h('div', { class: 'table-wrap' }, h('table', { class: 'bindings' },
    h('thead', null, h('tr', null, h('th', null, side === 'source' ? 'From' : 'To'), h('th', null, 'Routing key'), h('th', null, 'Arguments'), h('th', null, ''))),
    h('tbody', null, rows)));
}


const ARG_ABBREV = {
  'x-message-ttl': 'TTL', 'x-expires': 'Exp', 'x-max-length': 'Lim', 'x-max-length-bytes': 'Lim B',
  'x-overflow': 'Ovfl', 'x-dead-letter-exchange': 'DLX', 'x-dead-letter-routing-key': 'DLK',
  'x-max-priority': 'Pri', 'x-single-active-consumer': 'SAC', 'x-delivery-limit': 'DL',
  'x-message-deduplication': 'Dedup', 'x-queue-type': null, 'alternate-exchange': 'AE', 'x-delayed-type': 'Delayed',
};

/** RabbitMQ's feature abbreviations (D, AD, I, Excl, TTL, DLX, ...) as chips with tooltips. */
export function featureChips(o) {
  const c = [];
  if (o.durable) c.push(chip('D', null, 'durable: true'));
  if (o.auto_delete) c.push(chip('AD', null, 'auto-delete: true'));
  if (o.internal) c.push(chip('I', null, 'internal: true'));
  if (o.exclusive) c.push(chip('Excl', null, 'exclusive: true'));
  for (const [k, v] of Object.entries(o.arguments || {})) {
    const a = k in ARG_ABBREV ? ARG_ABBREV[k] : 'Args';
    if (a) c.push(chip(a, 'info', `${k}: ${fmtValue(v)}`));
  }
  if (o.policy) c.push(chip(o.policy, 'accent', `policy: ${o.policy}`));
  return c.length ? h('span', { class: 'chips' }, c) : h('span', { class: 'faint' }, '—');
}
