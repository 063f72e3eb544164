// Connections: the list, a connection's page, and closing one (RabbitMQ's DELETE with
// an X-Reason header).

import { del, enc, get } from '../api.js';
import { LineChart, windowControl } from '../chart.js';
import { act, card, chip, empty, h, kv, modal, pageHead, statePill, swap } from '../dom.js';
import { ago, byteRate, bytes, dateTime, num, rate, rateOf, value } from '../fmt.js';
import { navigate, refreshNow, route, state } from '../state.js';
import { ListTable, simpleTable } from '../table.js';

function clientOf(c) {
  const p = c.client_properties || {};
  const product = [p.product, p.version].filter(Boolean).join(' ') || p.platform || '';
  return [p.connection_name, product].filter(Boolean).join(' · ');
}

/** Asks for a reason and closes the connection; resolves true once closed. */
export async function closeConnection(name, button) {
  const reason = h('input', { type: 'text', name: 'reason', value: 'Closed via management plugin', id: 'close-reason' });
  const v = await modal({
    title: 'Close this connection?',
    narrow: true,
    body: h('div', null,
      h('p', null, 'The client gets connection.close with CONNECTION_FORCED (320) and this reason:'),
      h('div', { class: 'form' }, h('label', { for: 'close-reason' }, 'Reason'), h('div', { class: 'control' }, reason)),
      h('p', { class: 'faint', style: { marginTop: '10px' } }, name)),
    buttons: [{ text: 'Cancel', cls: 'ghost', value: 'cancel' }, { text: 'Force close', cls: 'danger solid', value: 'ok' }],
  });
  if (v !== 'ok') return false;
  const done = await act(button, () => del(`/connections/${enc(name)}`, { headers: { 'X-Reason': reason.value } }).then(() => true),
    'Connection closed', name, 'Close failed');
  return !!done;
}

export function list() {
  const table = new ListTable({
    id: 'connections',
    noun: 'connections',
    path: () => (state.vhost ? `/vhosts/${enc(state.vhost)}/connections` : '/connections'),
    columns: [
      { title: 'Name', sort: 'name', cls: 'name', render: (c) => [h('a', { href: route('connections', c.name) }, c.name), h('span', { class: 'secondary' }, clientOf(c))] },
      { title: 'Virtual host', sort: 'vhost', render: (c) => c.vhost, optional: () => !state.vhost },
      { title: 'User', sort: 'user', render: (c) => c.user },
      { title: 'State', sort: 'state', render: (c) => statePill(c.state) },
      { title: 'Protocol', sort: 'protocol', render: (c) => [c.protocol, c.ssl ? [' ', chip('TLS', 'info')] : null] },
      { title: 'Channels', sort: 'channels', num: true, render: (c) => num(c.channels) },
      { group: 'Network', title: 'From client', sort: 'recv_oct_details.rate', num: true, render: (c) => byteRate(rateOf(c, 'recv_oct')) },
      { group: 'Network', title: 'To client', sort: 'send_oct_details.rate', num: true, render: (c) => byteRate(rateOf(c, 'send_oct')) },
      { title: 'Heartbeat', sort: 'timeout', num: true, render: (c) => (c.timeout ? `${c.timeout} s` : 'off') },
      { title: 'Connected', sort: 'connected_at', render: (c) => h('span', { title: dateTime(c.connected_at) }, ago(c.connected_at)) },
      { title: '', cls: 'actions', render: (c) => h('button', { type: 'button', class: 'small danger', onclick: async (e) => {
        if (await closeConnection(c.name, e.target)) refreshNow();
      } }, 'Close') },
    ],
    emptyState: empty({ iconName: 'connection', title: 'No connections', text: state.vhost ? `No client is connected to virtual host ${state.vhost}.` : 'Clients connected over AMQP, MQTT or STOMP appear here.' }),
  });
  const el = h('div', null,
    pageHead({ title: 'Connections', sub: state.vhost ? `Virtual host ${state.vhost}` : 'All virtual hosts' }),
    card({ body: table.el, flush: true }));
  return { el, refresh: () => table.refresh(), title: 'Connections' };
}

export function detail(name) {
  const head = h('div');
  const info = h('div');
  const props = h('div');
  const chans = h('div');
  const traffic = new LineChart({ key: `conn:${name}`, name: 'traffic', format: byteRate,
    series: [{ key: 'recv', label: 'From client' }, { key: 'send', label: 'To client' }] });
  const totals = h('div', { class: 'figures' });
  const el = h('div', null, head,
    h('div', { class: 'grid sidebar' },
      card({ title: 'Data rates', actions: windowControl(), body: [totals, traffic.el] }),
      card({ title: 'Details', body: info })),
    h('div', { class: 'grid two' },
      card({ title: 'Channels', body: chans, flush: true, id: 'channels-card' }),
      card({ title: 'Client properties', body: props })));
  let gone = false;

  async function refresh() {
    if (gone) return;
    let c;
    try {
      c = await get(`/connections/${enc(name)}`);
    } catch (err) {
      if (err.status !== 404) throw err;
      gone = true;
      el.replaceChildren(pageHead({ crumbs: [['Connections', '#/connections']], title: name }),
        card({ body: empty({ iconName: 'connection', title: 'This connection is closed', text: 'It is no longer open on the broker.', cta: h('a', { href: '#/connections' }, 'Back to connections') }) }));
      return;
    }
    const channels = await get(`/connections/${enc(name)}/channels`).catch(() => []);
    const closeBtn = h('button', { type: 'button', class: 'danger', id: 'close-connection', onclick: async (e) => {
      if (await closeConnection(name, e.target)) navigate('#/connections');
    } }, 'Force close');
    head.replaceChildren(pageHead({ crumbs: [['Connections', '#/connections'], [c.vhost, null]], title: name, badges: statePill(c.state), sub: clientOf(c), actions: [closeBtn] }));
    traffic.push({ recv: rateOf(c, 'recv_oct') ?? 0, send: rateOf(c, 'send_oct') ?? 0 });
    totals.replaceChildren(
      h('div', { class: 'figure' }, h('div', { class: 'label' }, 'Received'), h('div', { class: 'value' }, bytes(c.recv_oct))),
      h('div', { class: 'figure' }, h('div', { class: 'label' }, 'Sent'), h('div', { class: 'value' }, bytes(c.send_oct))));
    info.replaceChildren(kv([
      ['Virtual host', h('a', { href: route('vhosts', c.vhost) }, c.vhost)],
      ['Username', c.user],
      ['Protocol', c.protocol],
      ['Authentication', c.auth_mechanism],
      ['Connected at', dateTime(c.connected_at)],
      ['Peer', `${c.peer_host}:${c.peer_port}`],
      ['Broker port', String(c.port)],
      ['TLS', c.ssl ? `${c.ssl_protocol || 'yes'} ${c.ssl_cipher || ''}` : 'No'],
      ['Heartbeat', c.timeout ? `${c.timeout} s` : 'off'],
      ['Frame max', num(c.frame_max)],
      ['Channel max', num(c.channel_max)],
      ['Node', c.node],
    ]));
    const cp = c.client_properties || {};
    const caps = cp.capabilities || {};
    props.replaceChildren(kv([
      ...Object.entries(cp).filter(([k]) => k !== 'capabilities').map(([k, v]) => [k, value(v)]),
      Object.keys(caps).length ? ['capabilities', h('span', { class: 'chips' }, Object.entries(caps).map(([k, v]) => chip(k, v ? 'info' : null, v ? 'supported' : 'not supported')))] : null,
    ]));
    swap(chans, channelTable(channels, 'This connection has no open channels.'));
  }

  return { el, refresh, title: name };
}

/** A table of channels (on a connection's page). */
export function channelTable(channels, emptyText) {
  return simpleTable([
    { title: 'Channel', cls: 'name', render: (c) => h('a', { href: route('channels', c.name) }, `${c.number}`) },
    { title: 'State', render: (c) => statePill(c.state) },
    { title: 'Prefetch', num: true, render: (c) => num(c.prefetch_count) },
    { title: 'Unacked', num: true, render: (c) => num(c.messages_unacknowledged) },
    { title: 'Consumers', num: true, render: (c) => num(c.consumer_count) },
    { title: 'Publish', num: true, render: (c) => rate(rateOf(c.message_stats, 'publish')) },
  ], channels, empty({ small: true, iconName: 'channel', title: 'No channels', text: emptyText }));
}
