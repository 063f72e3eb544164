// Queues: the list with counts and rates, adding one, and a queue's page (charts,
// consumers, bindings, publish, get messages, move messages, purge, delete).
//
// Moving messages is done as RabbitMQ's UI does it: a one-shot shovel parameter that
// moves the messages ready now to the destination queue.

import { del, enc, get, post, put, query } from '../api.js';
import { ArgsEditor, QUEUE_ARGS } from '../args.js';
import { LineChart, windowControl } from '../chart.js';
import { act, card, chip, confirm, empty, formDialog, h, kv, pageHead, statePill, swap, toast } from '../dom.js';
import { bytes, dateTime, num, rate, rateOf, value, yes } from '../fmt.js';
import { bindForm, bindingsTable, buttons, checkbox, featureChips, input, namesList, publishForm, row, select, vhostSelect } from '../forms.js';
import { defaultVhost, navigate, refreshNow, route, state } from '../state.js';
import { ListTable } from '../table.js';
import { consumerTable } from './channels.js';
import { RATE_SERIES, rates } from './overview.js';

/** The dialog adding a queue; resolves with [vhost, name] once added. */
export function addQueue() {
  const vhost = vhostSelect('vhost', defaultVhost());
  const type = select('queue_type', [['classic', 'Classic'], ['stream', 'Stream']], 'classic');
  const name = input('name', { required: true, placeholder: 'e.g. orders' });
  const durable = select('durable', [['true', 'Durable'], ['false', 'Transient']], 'true');
  const autoDelete = select('auto_delete', [['false', 'No'], ['true', 'Yes']], 'false');
  const args = new ArgsEditor({ name: 'q-arg', quick: QUEUE_ARGS });
  return formDialog({
    title: 'Add a new queue',
    submitText: 'Add queue',
    fields: [
      row('Virtual host', vhost),
      row('Type', type, 'A stream is an append-only log: consumers read it from any offset and nothing is removed by consuming. Streams are durable.'),
      row('Name', name),
      row('Durability', durable, 'Durable queues and their persistent messages survive a restart.'),
      row('Auto delete', autoDelete, 'Deleted when its last consumer unsubscribes.'),
      row('Arguments', args.el),
    ],
    submit: async () => {
      if (!name.value.trim()) throw new Error('Enter a name for the queue.');
      const stream = type.value === 'stream';
      const queueArgs = args.value();
      if (stream) queueArgs['x-queue-type'] = 'stream';
      await put(`/queues/${enc(vhost.value)}/${enc(name.value)}`, {
        durable: stream || durable.value === 'true', auto_delete: !stream && autoDelete.value === 'true', arguments: queueArgs,
      });
      toast('ok', 'Queue added', `${name.value} in ${vhost.value}`);
      return [vhost.value, name.value];
    },
  });
}

export function list() {
  const stat = (q, k) => rate(rateOf(q.message_stats, k));
  const table = new ListTable({
    id: 'queues',
    noun: 'queues',
    path: () => (state.vhost ? `/queues/${enc(state.vhost)}` : '/queues'),
    columns: [
      { title: 'Virtual host', sort: 'vhost', render: (q) => q.vhost, optional: () => !state.vhost },
      { title: 'Name', sort: 'name', cls: 'name', render: (q) => h('a', { href: route('queues', q.vhost, q.name) }, q.name) },
      { title: 'Type', sort: 'type', render: (q) => q.type || 'classic' },
      { title: 'Features', render: featureChips },
      { title: 'State', sort: 'state', render: (q) => statePill(q.state) },
      { group: 'Messages', title: 'Ready', sort: 'messages_ready', num: true, render: (q) => num(q.messages_ready) },
      { group: 'Messages', title: 'Unacked', sort: 'messages_unacknowledged', num: true, render: (q) => num(q.messages_unacknowledged) },
      { group: 'Messages', title: 'Total', sort: 'messages', num: true, render: (q) => num(q.messages) },
      { group: 'Message rates', title: 'Incoming', sort: 'message_stats.publish_details.rate', num: true, render: (q) => stat(q, 'publish') },
      { group: 'Message rates', title: 'Deliver / get', sort: 'message_stats.deliver_get_details.rate', num: true, render: (q) => stat(q, 'deliver_get') },
      { group: 'Message rates', title: 'Ack', sort: 'message_stats.ack_details.rate', num: true, render: (q) => stat(q, 'ack') },
      { title: 'Consumers', sort: 'consumers', num: true, render: (q) => num(q.consumers) },
    ],
    emptyState: empty({
      iconName: 'queue', title: 'No queues yet',
      text: 'Queues declared by clients, or added here, appear with their message counts and rates.',
      cta: h('button', { type: 'button', class: 'primary', onclick: () => openAdd() }, '+ Add a queue'),
    }),
  });
  const openAdd = async () => {
    const r = await addQueue();
    if (r) refreshNow();
  };
  const add = h('button', { type: 'button', class: 'primary', id: 'add-queue', onclick: openAdd }, '+ Add queue');
  const el = h('div', null,
    pageHead({ title: 'Queues', sub: state.vhost ? `Virtual host ${state.vhost}` : 'All virtual hosts', actions: [add] }),
    card({ body: table.el, flush: true }));
  return { el, refresh: () => table.refresh(), title: 'Queues' };
}

const ACK_MODES = [
  ['ack_requeue_true', 'Nack message requeue true'],
  ['ack_requeue_false', 'Automatic ack'],
  ['reject_requeue_true', 'Reject requeue true'],
  ['reject_requeue_false', 'Reject requeue false'],
];

function getForm(vhost, name) {
  const mode = select('ackmode', ACK_MODES, 'ack_requeue_true');
  const encoding = select('encoding', [['auto', 'Automatic string/base64'], ['base64', 'base64']], 'auto');
  const count = input('count', { type: 'number', min: 1, value: '1', class: 'short' });
  const btn = h('button', { type: 'submit', class: 'primary', id: 'get-messages' }, 'Get message(s)');
  const results = h('div', { class: 'messages', id: 'got-messages' });
  const form = h('form', { class: 'form get-form' },
    h('div', { class: 'callout wide' }, 'Getting messages from a queue is a destructive action: with "Nack message requeue true" they go back to the queue flagged redelivered, with the other modes they are gone.'),
    row('Ack mode', mode),
    row('Encoding', encoding),
    row('Messages', count),
    buttons(btn));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const n = Math.max(1, Number(count.value) || 1);
    const msgs = await act(btn, () => post(`/queues/${enc(vhost)}/${enc(name)}/get`, { count: n, ackmode: mode.value, encoding: encoding.value, truncate: 50000 }),
      null, null, 'Get failed');
    if (!msgs) return;
    if (!msgs.length) {
      results.replaceChildren(empty({ small: true, iconName: 'message', title: 'Queue is empty', text: 'There was no message to get.' }));
    } else {
      results.replaceChildren(...msgs.map((m, i) => messageView(m, i + 1)));
    }
    refreshNow();
  });
  return h('div', null, form, results);
}

/** RabbitMQ's "Move messages": a shovel that deletes itself once the queue's current
 * messages are moved. */
function moveForm(vhost, name) {
  const { list, load } = namesList('queues', vhost);
  const dest = input('dest-queue', { list: list.id, placeholder: 'queue name', required: true });
  dest.addEventListener('focus', load);
  const btn = h('button', { type: 'submit', class: 'primary', id: 'move-messages' }, 'Move messages');
  const form = h('form', { class: 'form move-form' },
    h('p', { class: 'muted wide', style: { margin: '0' } }, 'Moves the messages ready in this queue now to another queue of this virtual host (a missing one is created, durable). Each message is acknowledged here only once the destination has it.'),
    row('Destination queue', [dest, list]),
    buttons(btn));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const to = dest.value.trim();
    if (!to) { toast('error', 'Cannot move messages', 'Enter the destination queue.'); return; }
    if (to === name) { toast('error', 'Cannot move messages', 'The destination is this queue.'); return; }
    const uri = 'amqp:///' + enc(vhost);
    const shovel = `Move from ${name}`;
    const value = {
      'src-uri': uri, 'src-queue': name, 'src-protocol': 'amqp091', 'src-prefetch-count': 1000,
      'src-delete-after': 'queue-length', 'dest-protocol': 'amqp091', 'dest-uri': uri,
      'dest-add-forward-headers': false, 'ack-mode': 'on-confirm', 'dest-queue': to,
    };
    const done = await act(btn, () => put(`/parameters/shovel/${enc(vhost)}/${enc(shovel)}`, { component: 'shovel', vhost, name: shovel, value }).then(() => true),
      'Messages moved', `from ${name} to ${to}`, 'Move failed');
    if (done) { dest.value = ''; refreshNow(); }
  });
  return form;
}

/** The feature chips for a page title: nothing (rather than a dash) without features. */
/** A stream's log (offsets, segments, size) and where each consumer is in it. */
function streamView(s) {
  const figure = (label, v, key) => h('div', { class: 'figure', dataset: { stream: key } }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, v));
  const rows = (s.consumers || []).map((c) => h('tr', { dataset: { consumer: c.consumer_tag } },
    h('td', null, h('code', null, c.consumer_tag)), h('td', { class: 'num' }, num(c.offset)), h('td', { class: 'num' }, num(c.offset_lag))));
  return h('div', null,
    h('div', { class: 'figures' },
      figure('First offset', num(s.first_offset), 'first'),
      figure('Last offset', s.last_offset == null ? '—' : num(s.last_offset), 'last'),
      figure('Segments', num(s.segments), 'segments'),
      figure('Size', bytes(s.size_bytes), 'size')),
    rows.length
      ? h('div', { class: 'table-wrap' }, h('table', { class: 'list', id: 'stream-readers' },
        h('thead', null, h('tr', null, h('th', null, 'Consumer'), h('th', { class: 'num' }, 'Next offset'), h('th', { class: 'num' }, 'Lag'))),
        h('tbody', null, rows)))
      : h('p', { class: 'muted' }, 'No consumer is reading this stream.'));
}

function featureBadges(q) {
  const c = featureChips(q);
  return c.classList.contains('chips') ? c : null;
}

function messageView(m, n) {
  const props = Object.entries(m.properties || {}).filter(([k]) => k !== 'headers');
  const headers = Object.entries((m.properties || {}).headers || {});
  return h('div', { class: 'message', dataset: { message: String(n) } },
    h('div', { class: 'mhead' }, h('b', null, `Message ${n}`),
      m.redelivered ? chip('redelivered', 'accent') : null,
      h('span', { class: 'muted' }, `${m.message_count} left in the queue`)),
    h('div', { class: 'mbody' },
      kv([
        ['Exchange', m.exchange === '' ? '(AMQP default)' : m.exchange],
        ['Routing key', h('code', null, m.routing_key)],
        ['Redelivered', yes(m.redelivered)],
        ['Properties', props.length ? h('span', { class: 'chips' }, props.map(([k, v]) => chip(`${k}: ${value(v)}`, 'mono'))) : '—'],
        headers.length ? ['Headers', h('span', { class: 'chips' }, headers.map(([k, v]) => chip(`${k}: ${value(v)}`, 'mono')))] : null,
        ['Payload', `${bytes(m.payload_bytes)}, encoding: ${m.payload_encoding}`],
      ]),
      h('pre', { class: 'payload' }, m.payload)));
}

export function detail(vhost, name) {
  const head = h('div');
  const figures = h('div', { class: 'figures' });
  const info = h('div');
  const consumers = h('div');
  const bindings = h('div');
  const streamBody = h('div');
  const streamCard = card({ title: 'Stream', body: streamBody, id: 'stream-card' });
  streamCard.hidden = true;
  const queued = new LineChart({ key: `queue:${vhost}:${name}:queued`, name: 'queued', format: num,
    series: [{ key: 'ready', label: 'Ready' }, { key: 'unacked', label: 'Unacked' }, { key: 'total', label: 'Total' }] });
  const rateChart = new LineChart({ key: `queue:${vhost}:${name}:rates`, name: 'rates', format: rate,
    series: RATE_SERIES.filter((s) => !['confirm', 'unroutable'].includes(s.key)) });
  const el = h('div', null, head,
    figures,
    h('div', { class: 'grid two' },
      card({ title: 'Queued messages', actions: windowControl(), body: queued.el, id: 'queued-card' }),
      card({ title: 'Message rates', actions: windowControl(), body: rateChart.el, id: 'rates-card' })),
    h('div', { class: 'grid sidebar' },
      h('div', null,
        streamCard,
        card({ title: 'Consumers', body: consumers, flush: true, id: 'consumers-card' }),
        card({ title: 'Bindings', flush: true, id: 'bindings-card', body: [bindings,
          h('div', { class: 'card-body' }, h('h3', null, 'Add binding to this queue'), h('div', { style: { marginTop: '10px' } }, bindForm({ vhost, queue: name })))] })),
      card({ title: 'Details', body: info })),
    h('div', { class: 'grid two' },
      h('div', null,
        card({ title: 'Get messages', body: getForm(vhost, name), id: 'get-card' }),
        card({ title: 'Move messages', body: moveForm(vhost, name), id: 'move-card' })),
      card({ title: 'Publish message', body: publishForm({ vhost, exchange: '', routingKey: name, fixedKey: true }), id: 'publish-card' })));
  let gone = false;

  async function refresh() {
    if (gone) return;
    let q;
    try {
      q = await get(`/queues/${enc(vhost)}/${enc(name)}`);
    } catch (err) {
      if (err.status !== 404) throw err;
      gone = true;
      el.replaceChildren(pageHead({ crumbs: [['Queues', '#/queues'], [vhost, null]], title: name }),
        card({ body: empty({ iconName: 'queue', title: 'This queue does not exist', text: `There is no queue "${name}" in virtual host ${vhost}; it may have been deleted.`, cta: h('a', { href: '#/queues' }, 'Back to queues') }) }));
      return;
    }
    const binds = await get(`/queues/${enc(vhost)}/${enc(name)}/bindings`);
    const purgeBtn = h('button', { type: 'button', id: 'purge-queue', onclick: (e) => purge(e.target) }, 'Purge messages');
    const delBtn = h('button', { type: 'button', class: 'danger', id: 'delete-queue', onclick: (e) => remove(e.target) }, 'Delete queue');
    head.replaceChildren(pageHead({
      crumbs: [['Queues', '#/queues'], [vhost, null]],
      title: name,
      badges: [statePill(q.state), featureBadges(q)],
      actions: [purgeBtn, delBtn],
    }));
    const fig = (label, v, key) => h('div', { class: 'figure', dataset: { figure: key } }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, v));
    figures.replaceChildren(
      fig('Ready', num(q.messages_ready), 'ready'),
      fig('Unacked', num(q.messages_unacknowledged), 'unacked'),
      fig('Total', num(q.messages), 'total'),
      fig('Bytes', bytes(q.message_bytes), 'bytes'),
      fig('Consumers', num(q.consumers), 'consumers'),
      fig('Consumer capacity', q.consumer_capacity != null ? `${Math.round(q.consumer_capacity * 100)}%` : '—', 'capacity'));
    queued.push({ ready: q.messages_ready ?? 0, unacked: q.messages_unacknowledged ?? 0, total: q.messages ?? 0 });
    rateChart.push(rates(q.message_stats || {}));
    const args = Object.entries(q.arguments || {});
    const eff = Object.entries(q.effective_policy_definition || {});
    info.replaceChildren(kv([
      ['Type', q.type || 'classic'],
      ['Virtual host', vhost],
      ['Durable', yes(q.durable)],
      ['Auto delete', yes(q.auto_delete)],
      ['Exclusive', yes(q.exclusive)],
      ['Arguments', args.length ? h('span', { class: 'chips' }, args.map(([k, v]) => chip(`${k}: ${value(v)}`, 'mono'))) : '—'],
      ['Policy', q.policy ? h('a', { href: '#/policies' }, q.policy) : '—'],
      ['Effective policy', eff.length ? h('span', { class: 'chips' }, eff.map(([k, v]) => chip(`${k}: ${value(v)}`, 'mono'))) : '—'],
      ['Persistent messages', num(q.messages_persistent)],
      q.head_message_timestamp ? ['Head message timestamp', dateTime(q.head_message_timestamp * 1000)] : null,
      q.single_active_consumer_tag ? ['Single active consumer', h('code', null, q.single_active_consumer_tag)] : null,
      ['Node', q.node],
    ]));
    swap(consumers, consumerTable(q.consumer_details || [], 'channel'));
    streamCard.hidden = !q.stream;
    if (q.stream) streamBody.replaceChildren(streamView(q.stream));
    // A stream is never emptied or read with basic.get: those forms would only fail.
    for (const id of ['get-card', 'move-card']) {
      const c = el.querySelector(`#${id}`);
      if (c) c.hidden = !!q.stream;
    }
    purgeBtn.hidden = !!q.stream;
    swap(bindings, bindingsTable(binds, { side: 'source', vhost }));
  }

  async function purge(button) {
    const ok = await confirm({ title: 'Purge this queue?', text: `Every ready message of "${name}" will be deleted. Unacknowledged messages stay.`, ok: 'Purge' });
    if (!ok) return;
    const done = await act(button, () => del(`/queues/${enc(vhost)}/${enc(name)}/contents`).then(() => true), 'Queue purged', name, 'Purge failed');
    if (done) refreshNow();
  }

  async function remove(button) {
    const ifUnused = checkbox('if-unused', 'Only if it has no consumers');
    const ifEmpty = checkbox('if-empty', 'Only if it is empty');
    const ok = await confirm({ title: 'Delete this queue?', text: `Queue "${name}" in ${vhost} and all its messages will be deleted.`, extra: h('div', { class: 'stack' }, ifUnused, ifEmpty) });
    if (!ok) return;
    const q = query({
      'if-unused': ifUnused.querySelector('input').checked ? 'true' : '',
      'if-empty': ifEmpty.querySelector('input').checked ? 'true' : '',
    });
    const done = await act(button, () => del(`/queues/${enc(vhost)}/${enc(name)}${q}`).then(() => true), 'Queue deleted', name, 'Delete failed');
    if (done) navigate('#/queues');
  }

  return { el, refresh, title: name };
}
