// Overview: totals, live charts of queued messages and message rates, the node's
// resources, churn and listeners.

import { ApiError, enc, get } from '../api.js';
import { LineChart, windowControl } from '../chart.js';
import { card, chip, empty, h, kv, meter, pageHead, pill, swap } from '../dom.js';
import { bytes, duration, num, rate, rateOf } from '../fmt.js';
import { isMonitor, state } from '../state.js';
import { simpleTable } from '../table.js';

export const RATE_SERIES = [
  { key: 'publish', label: 'Publish' },
  { key: 'confirm', label: 'Publisher confirm' },
  { key: 'deliver', label: 'Deliver (manual ack)' },
  { key: 'deliver_no_ack', label: 'Deliver (auto ack)' },
  { key: 'ack', label: 'Consumer ack' },
  { key: 'redeliver', label: 'Redelivered' },
  { key: 'get', label: 'Get' },
  { key: 'unroutable', label: 'Unroutable' },
];

/** The rates of a `message_stats` object, by RATE_SERIES key. */
export function rates(ms) {
  const r = (k) => rateOf(ms, k) ?? 0;
  return {
    publish: r('publish'),
    confirm: r('confirm'),
    deliver: r('deliver'),
    deliver_no_ack: r('deliver_no_ack'),
    ack: r('ack'),
    redeliver: r('redeliver'),
    get: r('get') + r('get_no_ack'),
    unroutable: r('return_unroutable') + r('drop_unroutable'),
  };
}

function tile(label, value, href, hint) {
  return h(href ? 'a' : 'div', { class: 'tile', href, dataset: { tile: label.toLowerCase() } },
    h('div', { class: 'label' }, label), h('div', { class: 'value' }, value), hint ? h('div', { class: 'hint' }, hint) : null);
}

export function page() {
  const scope = state.vhost;
  const queued = new LineChart({
    key: `overview:queued:${scope}`, name: 'queued', format: num,
    series: [{ key: 'ready', label: 'Ready' }, { key: 'unacked', label: 'Unacked' }, { key: 'total', label: 'Total' }],
  });
  const rateChart = new LineChart({ key: `overview:rates:${scope}`, name: 'rates', series: RATE_SERIES, format: rate });
  const tiles = h('div', { class: 'tiles' });
  const figures = h('div', { class: 'figures' });
  const nodeBody = h('div');
  const churnBody = h('div');
  const listenersBody = h('div');
  const head = h('div');
  const scopeNote = scope ? ` in ${scope}` : '';
  const el = h('div', { class: 'overview' },
    head,
    tiles,
    h('div', { class: 'grid two' },
      card({ title: `Queued messages${scopeNote}`, actions: windowControl(), body: [figures, queued.el], id: 'queued-card' }),
      card({ title: `Message rates${scopeNote}`, actions: windowControl(), body: rateChart.el, id: 'rates-card' })),
    h('div', { class: 'grid three' },
      card({ title: 'Node', body: nodeBody, id: 'node-card' }),
      card({ title: 'Churn', body: churnBody, id: 'churn-card', flush: true }),
      card({ title: 'Listeners', body: listenersBody, id: 'listeners-card', flush: true })));

  async function refresh() {
    const o = state.overview || await get('/overview');
    const [nodes, vh] = await Promise.all([
      isMonitor() ? get('/nodes').catch((e) => (e instanceof ApiError && e.status === 401 ? null : Promise.reject(e))) : null,
      scope ? get(`/vhosts/${enc(scope)}`) : null,
    ]);
    head.replaceChildren(pageHead({
      title: 'Overview',
      sub: `${o.product_name || 'Warren'} ${o.product_version || ''} · RabbitMQ ${o.rabbitmq_version} management API · cluster ${o.cluster_name}`,
      badges: scope ? chip(`vhost ${scope}`, 'info') : null,
    }));
    const t = o.object_totals || {};
    tiles.replaceChildren(
      tile('Connections', num(t.connections), '#/connections'),
      tile('Channels', num(t.channels), '#/channels'),
      tile('Exchanges', num(t.exchanges), '#/exchanges'),
      tile('Queues', num(t.queues), '#/queues'),
      tile('Consumers', num(t.consumers), null));

    const src = vh || o.queue_totals || {};
    const ready = src.messages_ready ?? 0;
    const unacked = src.messages_unacknowledged ?? 0;
    const total = src.messages ?? ready + unacked;
    figures.replaceChildren(
      fig('Ready', ready), fig('Unacked', unacked), fig('Total', total));
    queued.push({ ready, unacked, total });
    rateChart.push(rates((vh || o).message_stats || {}));

    drawNode(nodes && nodes[0]);
    drawChurn(o.churn_rates || {});
    drawListeners(o.listeners || []);
  }

  function fig(label, v) {
    return h('div', { class: 'figure', dataset: { figure: label.toLowerCase() } }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, num(v)));
  }

  function drawNode(n) {
    if (!n) {
      nodeBody.replaceChildren(empty({ small: true, iconName: 'vhost', title: 'Node details need the monitoring tag' }));
      return;
    }
    const memAlarm = n.mem_alarm;
    const diskAlarm = n.disk_free_alarm;
    nodeBody.replaceChildren(
      h('div', { class: 'split', style: { marginBottom: '14px' } },
        h('b', null, n.name),
        n.running ? pill('running', 'ok') : pill('down', 'err'),
        memAlarm ? pill('memory alarm', 'err') : null,
        diskAlarm ? pill('disk alarm', 'err') : null),
      meter({ label: 'Memory', used: n.mem_used, total: n.mem_limit, alarm: memAlarm, text: `${bytes(n.mem_used)} of ${bytes(n.mem_limit)}`, note: 'limit: the memory high watermark' }),
      meter({ label: 'File descriptors', used: n.fd_used, total: n.fd_total, text: `${num(n.fd_used)} of ${num(n.fd_total)}` }),
      meter({ label: 'Sockets', used: n.sockets_used, total: n.sockets_total, text: `${num(n.sockets_used)} of ${num(n.sockets_total)}` }),
      h('div', { class: 'meter' }, h('div', { class: 'top' }, h('span', null, 'Disk free'), h('b', null, bytes(n.disk_free))),
        h('div', { class: 'note' }, diskAlarm ? `Below the limit of ${bytes(n.disk_free_limit)}: publishers are blocked` : `Alarm below ${bytes(n.disk_free_limit)}`)),
      kv([
        ['Uptime', duration(n.uptime)],
        ['Processors', num(n.processors)],
        n.db_dir ? ['Data directory', h('code', null, n.db_dir)] : null,
      ]));
  }

  function drawChurn(c) {
    const cellOf = (k) => {
      const r = rateOf(c, k);
      return h('span', { dataset: { churn: k } }, rate(r), h('span', { class: 'secondary faint' }, `${num(c[k] ?? 0)} total`));
    };
    const items = [
      { what: 'Connections', a: 'connection_created', b: 'connection_closed' },
      { what: 'Channels', a: 'channel_created', b: 'channel_closed' },
      { what: 'Queues', a: 'queue_created', b: 'queue_deleted' },
      { what: 'Queue declarations', a: 'queue_declared', b: null },
    ];
    swap(churnBody, simpleTable([
      { title: 'Object', render: (i) => i.what, cls: 'name' },
      { title: 'Created', render: (i) => cellOf(i.a), num: true, cls: 'churn' },
      { title: 'Closed / deleted', render: (i) => (i.b ? cellOf(i.b) : h('span', { class: 'faint' }, '—')), num: true, cls: 'churn' },
    ], items, empty({ small: true, title: 'No churn figures' })));
  }

  function drawListeners(ls) {
    const names = { amqp: 'AMQP 0-9-1', http: 'HTTP (management)', 'http/prometheus': 'Prometheus', mqtt: 'MQTT', stomp: 'STOMP', 'http/web-mqtt': 'Web MQTT', 'http/web-stomp': 'Web STOMP' };
    swap(listenersBody, simpleTable([
      { title: 'Protocol', render: (l) => h('span', null, h('b', null, l.protocol), h('span', { class: 'secondary' }, names[l.protocol] || '')), cls: 'name' },
      { title: 'Bound to', render: (l) => h('code', null, l.ip_address) },
      { title: 'Port', render: (l) => String(l.port), num: true },
    ], ls, empty({ small: true, title: 'No listeners reported' })));
  }

  return { el, refresh, title: 'Overview' };
}

