// The console's pages. Each takes the <main> element and fills it; errors go up to app.js
// (shown in words) or, for one action, next to the button that failed.
import { h } from './common/dom.js';
import { t, has, lang } from './common/i18n.js';
import { api } from './common/api.js';
import { act, table, label } from './common/shell.js';
import { policyPage } from './policy.js';

export function when(sec) {
  if (!sec) return t('common.never');
  return new Date(sec * 1000).toLocaleString(lang === 'ja' ? 'ja-JP' : 'en-GB');
}

export function ago(sec) {
  if (sec === null || sec === undefined) return t('common.never');
  if (sec < 90) return t('time.seconds', { n: Math.max(0, Math.round(sec)) });
  if (sec < 5400) return t('time.minutes', { n: Math.round(sec / 60) });
  if (sec < 129600) return t('time.hours', { n: Math.round(sec / 3600) });
  return t('time.days', { n: Math.round(sec / 86400) });
}

const now = () => Math.floor(Date.now() / 1000);
const STALE_FEED_SECONDS = 86400;   // a box whose feed is a day old or more is flagged
export const pill = (cls, text) => h('span', { class: `pill ${cls}` }, text);

// ---- fleet ----

const SORTS = ['name', 'org', 'version', 'feed_seq', 'last_heartbeat', 'open_incidents'];

// Stale: a box that reports is behind the hub's feed and what it holds is a day old (or
// unknown). A box that never reported is just offline.
// A box at the current seq is not stale however old that seq is.
function boxState(b) {
  const stale = !b.revoked && !!b.last_heartbeat && b.feed_behind > 0 && (b.feed_age === null || b.feed_age >= STALE_FEED_SECONDS);
  return { stale, offline: !b.online };
}

async function fleetPage(main, ctx) {
  const p = ctx.params;
  const q = new URLSearchParams();
  if (p.get('org')) q.set('org', p.get('org'));
  if (p.get('online')) q.set('online', p.get('online'));
  const sort = SORTS.includes(p.get('sort')) ? p.get('sort') : 'name';
  const order = p.get('order') === 'desc' ? 'desc' : 'asc';
  q.set('sort', sort);
  q.set('order', order);
  const data = await api('GET', `/v1/fleet?${q}`);
  if (!ctx.live()) return;
  const go = (changes) => {
    const n = new URLSearchParams(p);
    for (const [k, v] of Object.entries(changes)) { if (v) n.set(k, v); else n.delete(k); }
    location.hash = `#/?${n}`;
  };
  const orgIn = h('input', { id: 'f-org', name: 'org', value: p.get('org') || '', placeholder: t('fleet.org.any') });
  const onlineSel = h('select', { id: 'f-online', name: 'online' },
    [['', 'fleet.online.all'], ['1', 'fleet.online.yes'], ['0', 'fleet.online.no']].map(([v, k]) =>
      h('option', { value: v, selected: (p.get('online') || '') === v }, t(k))));
  const filters = h('form', { class: 'filters card', id: 'fleet-filter', onsubmit: (ev) => {
    ev.preventDefault();
    go({ org: orgIn.value.trim(), online: onlineSel.value });
  } },
  h('label', { for: 'f-org' }, h('span', {}, t('fleet.col.org')), orgIn),
  h('label', { for: 'f-online' }, h('span', {}, t('fleet.col.online')), onlineSel),
  h('button', { type: 'submit', class: 'primary' }, t('fleet.filter')),
  h('button', { type: 'button', onclick: () => { location.hash = '#/'; } }, t('fleet.reset')));
  const head = (key, col) => {
    const active = sort === col;
    return h('button', { type: 'button', class: 'sort', 'data-sort': col, 'aria-sort': active ? (order === 'asc' ? 'ascending' : 'descending') : null,
      onclick: () => go({ sort: col, order: active && order === 'asc' ? 'desc' : 'asc' }) },
    t(key), active ? (order === 'asc' ? ' ▲' : ' ▼') : '');
  };
  const boxes = data.boxes || [];
  const online = boxes.filter((b) => b.online).length;
  const stale = boxes.filter((b) => boxState(b).stale).length;
  main.append(h('div', { class: 'row' }, h('h1', {}, t('fleet.title')),
    h('button', { type: 'button', id: 'fleet-reload', onclick: () => ctx.rerender() }, t('common.reload'))),
    h('p', { class: 'hint', id: 'fleet-summary' }, t('fleet.summary', { n: boxes.length, online, stale, seq: data.feed_seq })),
    filters,
    h('div', { class: 'card' }, table([
      [head('fleet.col.name', 'name'), (b) => b.name],
      [head('fleet.col.org', 'org'), (b) => b.org],
      ['fleet.col.online', (b) => (b.revoked ? pill('off', t('fleet.revoked')) : b.online ? pill('on', t('fleet.online')) : pill('off', t('fleet.offline')))],
      [head('fleet.col.version', 'version'), (b) => b.version || t('common.unknown')],
      [head('fleet.col.feed', 'feed_seq'), (b) => [String(b.feed_seq),
        b.feed_behind ? h('div', {}, t('fleet.behind', { n: b.feed_behind })) : null,
        h('div', { class: 'hint' }, b.feed_age === null ? t('fleet.feed.none') : t('fleet.feed.age', { age: ago(b.feed_age) }))], 'feed'],
      [head('fleet.col.incidents', 'open_incidents'), (b) => String(b.open_incidents)],
      [head('fleet.col.heartbeat', 'last_heartbeat'), (b) => (b.last_heartbeat ? [ago(now() - b.last_heartbeat), h('div', { class: 'hint' }, when(b.last_heartbeat))] : t('common.never'))],
      [null, (b) => h('a', { href: `#/policy?box=${b.id}` }, t('fleet.push'))],
    ], boxes, 'fleet.empty', (b) => {
      const s = boxState(b);
      return { class: [s.offline ? 'offline' : '', s.stale ? 'feedstale' : '', b.revoked ? 'revoked' : ''].join(' ').trim(), 'data-box': b.id };
    })),
    h('p', { class: 'hint' }, t('fleet.legend', { secs: data.online_seconds })));
}

// ---- help inbox ----

export async function boxNames() {
  const f = await api('GET', '/v1/fleet?limit=100000');
  const m = new Map();
  for (const b of f.boxes || []) m.set(b.id, b);
  return m;
}

const STATUSES = ['new', 'assigned', 'in_progress', 'waiting_owner', 'closed'];
const sevPill = (s) => h('span', { class: `sev ${s}` }, label('sev', s));
const statusPill = (s) => pill(s, label('status', s));

// The box's own title in this language, else the kind in words, else what was stored.
function titleOf(r, detail) {
  const d = detail || {};
  const tl = lang === 'ja' ? d.title_ja : d.title_en;
  return tl || (has(`kind.${r.kind}`) ? t(`kind.${r.kind}`) : r.title || r.kind);
}

async function inboxPage(main, ctx) {
  const [rows, boxes] = await Promise.all([api('GET', '/v1/inbox'), boxNames()]);
  if (!ctx.live()) return;
  const show = ctx.params.get('show') || 'open';
  const list = rows.filter((r) => (show === 'all' ? true : show === 'closed' ? r.status === 'closed' : r.status !== 'closed'));
  const sel = h('select', { id: 'inbox-show', onchange: () => { location.hash = `#/inbox?show=${sel.value}`; } },
    ['open', 'closed', 'all'].map((v) => h('option', { value: v, selected: v === show }, t(`inbox.show.${v}`))));
  main.append(h('div', { class: 'row' }, h('h1', {}, t('inbox.title')),
    h('button', { type: 'button', id: 'inbox-reload', onclick: () => ctx.rerender() }, t('common.reload'))),
    h('div', { class: 'filters' }, h('label', { for: 'inbox-show' }, h('span', {}, t('inbox.show')), sel)),
    h('div', { class: 'card' }, table([
      ['inbox.col.id', (r) => h('a', { href: `#/request/${r.id}` }, `#${r.id}`)],
      ['inbox.col.received', (r) => when(r.received)],
      ['inbox.col.box', (r) => { const b = boxes.get(r.box_id); return b ? [b.name, h('div', { class: 'hint' }, b.org)] : `#${r.box_id}`; }],
      ['inbox.col.incident', (r) => h('a', { href: `#/request/${r.id}` }, titleOf(r))],
      ['inbox.col.severity', (r) => sevPill(r.severity)],
      ['inbox.col.status', (r) => statusPill(r.status)],
      ['inbox.col.assignee', (r) => r.assignee || t('inbox.unassigned')],
      ['inbox.col.note', (r) => (r.note ? r.note.slice(0, 80) : '')],
    ], list, 'inbox.empty', (r) => ({ 'data-request': r.id }))));
}

// One help request with the helper's actions.
async function requestPage(main, ctx) {
  const id = ctx.params.get('id');
  const [r, boxes] = await Promise.all([api('GET', `/v1/inbox/${id}`), boxNames()]);
  if (!ctx.live()) return;
  const b = boxes.get(r.box_id);
  const inc = r.incident_detail || {};
  const msg = h('div', { id: 'request-msg' });
  const statusSel = h('select', { id: 'status-select' }, STATUSES.map((s) => h('option', { value: s, selected: s === r.status }, label('status', s))));
  const update = (body, okKey) => act(msg, async () => { await api('POST', `/v1/inbox/${id}`, body); }, okKey).then((ok) => ok && ctx.rerender());
  main.append(h('a', { href: '#/inbox', class: 'back' }, t('common.back.inbox')),
    h('h1', {}, t('request.title', { id: r.id }), ' ', titleOf(r, inc)),
    h('div', { class: 'two' },
      h('div', { class: 'card', id: 'request-summary' }, h('h2', {}, t('request.summary')),
        h('dl', { class: 'kv' },
          h('dt', {}, t('inbox.col.box')), h('dd', { id: 'request-box' }, b ? `${b.name} (${b.org})` : `#${r.box_id}`),
          h('dt', {}, t('inbox.col.severity')), h('dd', {}, sevPill(r.severity)),
          h('dt', {}, t('inbox.col.status')), h('dd', { id: 'request-status' }, statusPill(r.status)),
          h('dt', {}, t('inbox.col.assignee')), h('dd', { id: 'request-assignee' }, r.assignee || t('inbox.unassigned')),
          h('dt', {}, t('inbox.col.received')), h('dd', {}, when(r.received)),
          h('dt', {}, t('request.updated')), h('dd', {}, when(r.updated)),
          h('dt', {}, t('request.kind')), h('dd', {}, label('kind', r.kind))),
        r.note ? [h('h2', {}, t('request.note')), h('p', { class: 'note', id: 'request-note' }, r.note)] : h('p', { class: 'empty' }, t('request.nonote')),
        h('p', {}, h('a', { href: `#/incident/${r.id}`, id: 'open-incident' }, t('request.open.incident')))),
      h('div', { class: 'card' }, h('h2', {}, t('request.actions')),
        h('div', { class: 'row' },
          h('button', { type: 'button', class: 'primary', id: 'assign-me', disabled: r.assignee === ctx.operator,
            onclick: () => update({ assign: ctx.operator }, 'request.assigned') }, t('request.assign.me'))),
        h('div', { class: 'row' }, h('label', { for: 'status-select', class: 'inline' }, t('inbox.col.status')), statusSel,
          h('button', { type: 'button', id: 'status-save', onclick: () => update({ status: statusSel.value }, 'request.saved') }, t('request.status.save'))),
        h('div', { class: 'row' }, b ? h('a', { href: `#/policy?box=${r.box_id}`, id: 'push-policy' }, t('request.push')) : null),
        msg)),
    await sessionsCard(r.box_id, ctx));
}

// Remote help: the box opens a session only after its owner consents; the hub signs a
// short certificate and records it. The console shows those records and how to connect.
async function sessionsCard(boxId, ctx) {
  const a = await api('GET', `/console/api/audit?box=${boxId}&limit=200`);
  const sessions = (a.audit || []).filter((x) => x.action === 'help-session');
  const card = h('div', { class: 'card', id: 'sessions' }, h('h2', {}, t('session.title')), h('p', { class: 'hint' }, t('session.how')));
  if (!ctx.live()) return card;
  card.append(table([
    ['session.col.at', (x) => when(x.at)],
    ['session.col.detail', (x) => {
      const m = /port (\d+) for (\d+) min/.exec(x.detail);
      const left = m ? x.at + Number(m[2]) * 60 - now() : -1;
      return m ? [t('session.detail', { port: m[1], min: m[2] }), ' ', left > 0 ? pill('on', t('session.open', { left: ago(left) })) : pill('closed', t('session.ended'))] : x.detail;
    }],
  ], sessions, 'session.none'));
  return card;
}

// ---- incident view: the evidence bundle the box sent, in readable form ----

const DEVICE_KEYS = ['hostname', 'label', 'vendor', 'mac', 'ipv4', 'ipv6', 'address', 'grp', 'importance', 'first_seen', 'last_seen', 'malware_hits', 'scan_hits', 'block_hits'];
const TIME_KEYS = new Set(['first_seen', 'last_seen', 'opened', 'updated', 'at']);

function value(k, v) {
  if (v === null || v === undefined || v === '') return t('common.none');
  if (TIME_KEYS.has(k) && typeof v === 'number') return when(v);
  if (typeof v === 'boolean') return v ? t('common.yes') : t('common.no');
  if (Array.isArray(v)) return v.length ? h('ul', { class: 'plain' }, v.map((x) => h('li', {}, typeof x === 'object' && x ? kv(x) : String(x)))) : t('common.none');
  if (typeof v === 'object') return kv(v);
  return String(v);
}

// Known keys first, in a fixed order and with their names translated; anything else the
// box sent follows under its own name, so nothing in the bundle is hidden.
function kv(o, order = [], prefix = 'field') {
  const keys = [...order.filter((k) => k in o), ...Object.keys(o).filter((k) => !order.includes(k))];
  return h('dl', { class: 'kv' }, keys.map((k) => [h('dt', {}, label(prefix, k)), h('dd', { 'data-key': k }, value(k, o[k]))]));
}

async function incidentPage(main, ctx) {
  const id = ctx.params.get('id');
  const [r, boxes] = await Promise.all([api('GET', `/v1/inbox/${id}`), boxNames()]);
  if (!ctx.live()) return;
  const inc = r.incident_detail || {};
  const ev = r.evidence || {};
  const b = boxes.get(r.box_id);
  const rest = Object.fromEntries(Object.entries(ev).filter(([k]) => !['timeline', 'device', 'indicators', 'counters', 'quarantined'].includes(k)));
  main.append(h('a', { href: `#/request/${r.id}`, class: 'back' }, t('common.back.request', { id: r.id })),
    h('h1', {}, t('incident.title'), ': ', titleOf(r, inc)),
    h('div', { class: 'two' },
      h('div', { class: 'card', id: 'incident-head' }, h('h2', {}, t('incident.what')),
        h('dl', { class: 'kv' },
          h('dt', {}, t('inbox.col.box')), h('dd', {}, b ? `${b.name} (${b.org})` : `#${r.box_id}`),
          h('dt', {}, t('incident.number')), h('dd', {}, `#${inc.id ?? r.incident}`),
          h('dt', {}, t('request.kind')), h('dd', {}, label('kind', inc.kind || r.kind)),
          h('dt', {}, t('inbox.col.severity')), h('dd', {}, sevPill(inc.severity || r.severity)),
          h('dt', {}, t('incident.state')), h('dd', {}, inc.state ? label('istate', inc.state) : t('common.unknown')),
          h('dt', {}, t('incident.opened')), h('dd', {}, when(inc.opened)),
          h('dt', {}, t('request.updated')), h('dd', {}, when(inc.updated)),
          h('dt', {}, t('incident.count')), h('dd', {}, String(inc.count ?? '-')),
          h('dt', {}, t('incident.quarantined')), h('dd', {}, value('quarantined', ev.quarantined)))),
      h('div', { class: 'card', id: 'incident-device' }, h('h2', {}, t('incident.device')),
        ev.device && typeof ev.device === 'object' ? kv(ev.device, DEVICE_KEYS) : h('p', { class: 'empty' }, t('common.none')))),
    h('div', { class: 'card', id: 'incident-timeline' }, h('h2', {}, t('incident.timeline')),
      table([
        ['incident.col.at', (x) => when(x.at)],
        ['incident.col.who', (x) => x.who || ''],
        ['incident.col.what', (x) => label('what', x.what || '')],
        ['incident.col.detail', (x) => (x.detail && typeof x.detail === 'object' ? kv(x.detail) : String(x.detail ?? ''))],
      ], Array.isArray(ev.timeline) ? ev.timeline : [], 'incident.notimeline')),
    h('div', { class: 'two' },
      h('div', { class: 'card', id: 'incident-indicators' }, h('h2', {}, t('incident.indicators')), value('indicators', ev.indicators)),
      h('div', { class: 'card', id: 'incident-counters' }, h('h2', {}, t('incident.counters')),
        ev.counters && typeof ev.counters === 'object' ? kv(ev.counters, ['detections', 'confidence', 'importance']) : h('p', { class: 'empty' }, t('common.none')))),
    ...(Object.keys(rest).length ? [h('div', { class: 'card', id: 'incident-other' }, h('h2', {}, t('incident.other')), kv(rest))] : []),
    h('p', { class: 'hint' }, t('incident.privacy')));
}

// ---- audit ----

async function auditPage(main, ctx) {
  const box = ctx.params.get('box') || '';
  const a = await api('GET', `/console/api/audit?limit=300${/^\d+$/.test(box) ? `&box=${box}` : ''}`);
  if (!ctx.live()) return;
  const boxIn = h('input', { id: 'audit-box', inputmode: 'numeric', value: box, placeholder: t('audit.box.any') });
  main.append(h('h1', {}, t('audit.title')), h('p', { class: 'hint' }, t('audit.intro')),
    h('form', { class: 'filters', onsubmit: (ev) => { ev.preventDefault(); location.hash = `#/audit${boxIn.value.trim() ? `?box=${encodeURIComponent(boxIn.value.trim())}` : ''}`; } },
      h('label', { for: 'audit-box' }, h('span', {}, t('audit.box')), boxIn), h('button', { type: 'submit' }, t('fleet.filter'))),
    h('div', { class: 'card' }, table([
      ['audit.col.at', (x) => when(x.at)],
      ['audit.col.actor', (x) => x.actor],
      ['audit.col.action', (x) => label('action', x.action)],
      ['audit.col.detail', (x) => x.detail],
    ], a.audit || [], 'audit.empty', (x) => ({ 'data-action': x.action }))));
}

// "#/request/5?x=1" -> the page, its parameters, and the nav entry to highlight.
export function route(hash) {
  const [path, query] = hash.replace(/^#/, '').split('?');
  const params = new URLSearchParams(query || '');
  const m = /^\/(request|incident)\/(\d+)$/.exec(path);
  if (m) {
    params.set('id', m[2]);
    return { page: m[1] === 'request' ? requestPage : incidentPage, params, nav: '#/inbox' };
  }
  const pages = { '/inbox': inboxPage, '/policy': policyPage, '/audit': auditPage };
  if (pages[path]) return { page: pages[path], params, nav: `#${path}` };
  return { page: fleetPage, params, nav: '#/' };
}
