// Channels: the list and a channel's page (its consumers and publishing rates).

import { enc, get } from '../api.js';
import { LineChart, windowControl } from '../chart.js';
import { card, chip, empty, h, kv, pageHead, statePill, swap } from '../dom.js';
import { num, rate, rateOf, value, yes } from '../fmt.js';
import { route, state } from '../state.js';
import { ListTable, simpleTable } from '../table.js';

function mode(c) {
  const m = [];
  if (c.confirm) m.push(chip('C', 'info', 'Confirm mode'));
  if (c.transactional) m.push(chip('T', 'accent', 'Transactional'));
  return m.length ? h('span', { class: 'chips' }, m) : h('span', { class: 'faint' }, '—');
}

function prefetch(c) {
  const parts = [];
  if (c.prefetch_count) parts.push(`${num(c.prefetch_count)}`);
  if (c.global_prefetch_count) parts.push(`${num(c.global_prefetch_count)} (global)`);
  return parts.length ? parts.join(' · ') : 'unlimited';
}

export function list() {
  const table = new ListTable({
    id: 'channels',
    noun: 'channels',
    path: () => (state.vhost ? `/vhosts/${enc(state.vhost)}/channels` : '/channels'),
    columns: [
      { title: 'Channel', sort: 'name', cls: 'name', render: (c) => h('a', { href: route('channels', c.name) }, c.name) },
      { title: 'Virtual host', sort: 'vhost', render: (c) => c.vhost, optional: () => !state.vhost },
      { title: 'User', sort: 'user', render: (c) => c.user },
      { title: 'Mode', render: mode, tip: 'C: confirm mode, T: transactional' },
      { title: 'State', sort: 'state', render: (c) => statePill(c.state) },
      { group: 'Details', title: 'Unconfirmed', sort: 'messages_unconfirmed', num: true, render: (c) => num(c.messages_unconfirmed) },
      { group: 'Details', title: 'Prefetch', sort: 'prefetch_count', render: prefetch },
      { group: 'Details', title: 'Unacked', sort: 'messages_unacknowledged', num: true, render: (c) => num(c.messages_unacknowledged) },
      { group: 'Details', title: 'Consumers', sort: 'consumer_count', num: true, render: (c) => num(c.consumer_count) },
      { group: 'Message rates', title: 'Publish', sort: 'message_stats.publish_details.rate', num: true, render: (c) => rate(rateOf(c.message_stats, 'publish')) },
      { group: 'Message rates', title: 'Confirm', sort: 'message_stats.confirm_details.rate', num: true, render: (c) => rate(rateOf(c.message_stats, 'confirm')) },
    ],
    emptyState: empty({ iconName: 'channel', title: 'No channels', text: 'Channels of open AMQP connections appear here.' }),
  });
  const el = h('div', null,
    pageHead({ title: 'Channels', sub: state.vhost ? `Virtual host ${state.vhost}` : 'All virtual hosts' }),
    card({ body: table.el, flush: true }));
  return { el, refresh: () => table.refresh(), title: 'Channels' };
}

export function detail(name) {
  const head = h('div');
  const info = h('div');
  const consumers = h('div');
  const chart = new LineChart({ key: `chan:${name}`, name: 'channel-rates', format: rate,
    series: [{ key: 'publish', label: 'Publish' }, { key: 'confirm', label: 'Confirm' }, { key: 'return', label: 'Returned' }] });
  const el = h('div', null, head,
    h('div', { class: 'grid sidebar' },
      card({ title: 'Message rates', actions: windowControl(), body: chart.el }),
      card({ title: 'Details', body: info })),
    card({ title: 'Consumers', body: consumers, flush: true }));
  let gone = false;

  async function refresh() {
    if (gone) return;
    let c;
    try {
      c = await get(`/channels/${enc(name)}`);
    } catch (err) {
      if (err.status !== 404) throw err;
      gone = true;
      el.replaceChildren(pageHead({ crumbs: [['Channels', '#/channels']], title: name }),
        card({ body: empty({ iconName: 'channel', title: 'This channel is closed', cta: h('a', { href: '#/channels' }, 'Back to channels') }) }));
      return;
    }
    const conn = c.connection_details || {};
    head.replaceChildren(pageHead({ crumbs: [['Channels', '#/channels'], [c.vhost, null]], title: name, badges: [statePill(c.state), ' ', mode(c)] }));
    const ms = c.message_stats || {};
    chart.push({ publish: rateOf(ms, 'publish') ?? 0, confirm: rateOf(ms, 'confirm') ?? 0, return: rateOf(ms, 'return_unroutable') ?? 0 });
    info.replaceChildren(kv([
      ['Connection', h('a', { href: route('connections', conn.name) }, conn.name)],
      ['Virtual host', c.vhost],
      ['Username', c.user],
      ['Number', String(c.number)],
      ['Prefetch', prefetch(c)],
      ['Unacked', num(c.messages_unacknowledged)],
      ['Unconfirmed', num(c.messages_unconfirmed)],
      ['Uncommitted', `${num(c.messages_uncommitted)} messages, ${num(c.acks_uncommitted)} acks`],
      ['Confirm mode', yes(c.confirm)],
      ['Transactional', yes(c.transactional)],
    ]));
    swap(consumers, consumerTable(c.consumer_details || [], 'queue'));
  }

  return { el, refresh, title: name };
}

/** A table of consumers; `show`: 'queue' (on a channel's page) or 'channel' (on a queue's). */
export function consumerTable(list, show) {
  return simpleTable([
    show === 'queue'
      ? { title: 'Queue', cls: 'name', render: (c) => h('a', { href: route('queues', c.queue.vhost, c.queue.name) }, c.queue.name) }
      : { title: 'Channel', cls: 'name', render: (c) => h('a', { href: route('channels', c.channel_details.name) }, c.channel_details.name) },
    { title: 'Consumer tag', render: (c) => h('code', null, c.consumer_tag) },
    { title: 'Ack required', render: (c) => yes(c.ack_required) },
    { title: 'Exclusive', render: (c) => yes(c.exclusive) },
    { title: 'Prefetch', num: true, render: (c) => (c.prefetch_count ? num(c.prefetch_count) : 'unlimited') },
    { title: 'Active', render: (c) => statePill(c.activity_status || (c.active ? 'up' : 'waiting')) },
    { title: 'Arguments', render: (c) => {
      const a = Object.entries(c.arguments || {});
      return a.length ? h('span', { class: 'chips' }, a.map(([k, v]) => chip(`${k}: ${value(v)}`, 'mono'))) : h('span', { class: 'faint' }, '—');
    } },
  ], list, empty({ small: true, iconName: 'consumer', title: 'No consumers', text: show === 'queue' ? 'Nothing consumes on this channel.' : 'Nothing consumes from this queue.' }));
}
