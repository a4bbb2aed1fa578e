// The owner's pages. Each takes the <main> element and fills it; errors go up to app.js
// (shown in words) or, for one action, next to the button that failed.
import { h, clear } from './common/dom.js';
import { t, has, lang } from './common/i18n.js';
import { api, ApiError } from './common/api.js';
import { errorBox as err, act, table, label } from './common/shell.js';
import { CATEGORIES } from './common/categories.js';
import { settings } from './settings.js';

export function when(sec) {
  if (!sec) return t('common.never');
  return new Date(sec * 1000).toLocaleString();
}

export function ago(sec) {
  if (sec === null || sec === undefined) return t('common.never');
  if (sec < 90) return t('time.minutes', { n: 1 });
  if (sec < 5400) return t('time.minutes', { n: Math.round(sec / 60) });
  if (sec < 129600) return t('time.hours', { n: Math.round(sec / 3600) });
  return t('time.days', { n: Math.round(sec / 86400) });
}

export const catName = (c) => label('cat', c);
// The three groups every box starts with get friendly names; owners' own groups stay as typed.
const groupName = (g) => (has(`groupname.${g}`) ? `${t(`groupname.${g}`)} (${g})` : g);

// ---- dashboard ----

function chart(hours) {
  const W = 720, H = 200, P = 30;
  const max = Math.max(1, ...hours.map((x) => x.queries || 0));
  const bw = (W - P * 2) / 24;
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('class', 'chart');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', t('dash.chart'));
  const el = (tag, a) => { const e = document.createElementNS(svg.namespaceURI, tag); for (const k in a) e.setAttribute(k, a[k]); svg.append(e); return e; };
  el('line', { x1: P, y1: H - P, x2: W - P, y2: H - P, class: 'axis' });
  hours.forEach((x, i) => {
    const q = ((x.queries || 0) / max) * (H - P * 2), b = ((x.blocks || 0) / max) * (H - P * 2);
    el('rect', { x: P + i * bw + 2, y: H - P - q, width: bw - 4, height: q, class: 'bar-q' });
    el('rect', { x: P + i * bw + 2, y: H - P - b, width: bw - 4, height: b, class: 'bar-b' });
    if (i % 6 === 0) el('text', { x: P + i * bw, y: H - 10, class: 'tick' }).textContent = `${new Date(x.start * 1000).getHours()}:00`;
  });
  el('text', { x: P, y: 16, class: 'tick' }).textContent = String(max);
  return svg;
}

function helpDialog(ctx) {
  const msg = h('div', { id: 'help-msg' });
  const note = h('textarea', { name: 'note', rows: 3, maxlength: 1000, 'aria-label': t('help.note'), placeholder: t('help.note') });
  const d = h('dialog', { id: 'help-dialog', class: 'card' },
    h('h2', {}, t('help.title')),
    h('p', {}, t('help.body1')),
    h('ol', {}, h('li', {}, t('help.step1')), h('li', {}, t('help.step2')), h('li', {}, t('help.step3'))),
    h('label', {}, h('span', {}, t('help.note')), note),
    h('div', { class: 'row' },
      ctx.role === 'owner' ? h('button', { type: 'button', class: 'primary', id: 'help-record', onclick: async (ev) => {
        ev.target.disabled = true;
        clear(msg);
        const text = note.value.trim() || t('help.defaultnote');
        // An incident (self-report) the agent can send to the helper's inbox on the hub;
        // an agent without incidents keeps a plain help record instead.
        let id = null;
        try {
          id = (await api('POST', '/incidents/report', { note: text })).id;
        } catch (e) {
          if (!(e instanceof ApiError) || e.status !== 404) { msg.append(err(e)); ev.target.disabled = false; return; }
          try { id = (await api('POST', '/help', { note: text })).id; } catch (e2) { msg.append(err(e2)); ev.target.disabled = false; return; }
          msg.append(h('p', { class: 'ok', role: 'status' }, t('help.recorded', { id })));
          return;
        }
        msg.append(h('p', { class: 'ok', role: 'status' }, t('help.recorded', { id })));
        try {
          await api('POST', `/incidents/${id}/help`, { note: text });
          msg.append(h('p', { class: 'ok', role: 'status', id: 'help-sent' }, t('help.sent')));
        } catch (e) {
          msg.append(h('p', { class: 'error', role: 'alert', id: 'help-notsent' }, `${t('help.notsent')} (${e.detail || e.message})`));
        }
      } }, t('help.record')) : null,
      h('button', { type: 'button', onclick: () => d.close() }, t('common.close'))),
    h('p', { class: 'hint' }, t('help.noendpoint')), msg);
  document.body.append(d);
  d.addEventListener('close', () => { d.remove(); ctx.rerender(); });
  d.showModal();
}

async function dashboard(main, ctx) {
  const [st, devs, reqs, stats, helps] = await Promise.all([
    api('GET', '/status'),
    api('GET', '/devices').catch(() => null),
    api('GET', '/unblock-requests?status=pending').catch(() => null),
    api('GET', '/stats').catch(() => null),
    api('GET', '/incidents').catch(() => api('GET', '/help').catch(() => null)),
  ]);
  // Incidents from the agent (state != resolved), or the plain help records of an older one.
  const open = !helps ? null : helps.filter((x) => (x.state ? x.state !== 'resolved' : x.status === 'open'));
  const ok = st.status === 'ok' && !st.stale_feeds;
  main.append(h('section', { class: `hero ${ok ? 'good' : 'warn'}`, id: 'protected' },
    h('div', { class: 'big' }, t(ok ? 'dash.protected' : 'dash.attention')),
    h('p', {}, t(ok ? 'dash.protected.sub' : (st.stale_feeds ? 'dash.stale.sub' : 'dash.degraded.sub'))),
    h('button', { type: 'button', class: 'help', id: 'call-help', onclick: () => helpDialog(ctx) }, t('dash.help'))));
  const hours = stats && Array.isArray(stats.hours) && stats.hours.some((x) => x.queries) ? stats.hours : null;
  const nostats = stats ? 'dash.noqueries' : 'dash.nostats';
  main.append(h('section', { class: 'card' }, h('h2', {}, t('dash.chart')),
    hours ? chart(hours) : h('p', { class: 'empty' }, t(nostats)),
    h('p', { class: 'legend' }, h('span', { class: 'sw q' }), t('dash.queries'), ' ', h('span', { class: 'sw b' }), t('dash.blocks'))));
  const top = stats && Array.isArray(stats.top_categories) ? stats.top_categories : null;
  main.append(h('div', { class: 'grid' },
    h('section', { class: 'card' }, h('h2', {}, t('dash.topcats')),
      top && top.length ? h('ol', { id: 'top-categories' }, top.map((c) => h('li', {}, `${catName(c.category)}: ${c.count}`)))
        : h('p', { class: 'empty' }, t(hours ? 'dash.noblocks' : nostats))),
    h('section', { class: 'card' }, h('h2', {}, t('dash.feeds')),
      st.feeds.length ? h('ul', {}, st.feeds.map((f) => h('li', { class: f.age_seconds === null || f.age_seconds > 86400 ? 'stale' : '' },
        `${f.name}: ${t('dash.updated', { ago: ago(f.age_seconds) })}`))) : h('p', { class: 'empty' }, t('dash.nofeeds'))),
    h('section', { class: 'card' }, h('h2', {}, t('dash.devices')), h('p', { class: 'num' }, devs ? String(devs.length) : '–')),
    h('section', { class: 'card', id: 'incidents' }, h('h2', {}, t('dash.incidents')),
      h('p', { class: 'num' }, open ? String(open.length) : '–'),
      open && open.length ? h('ul', { class: 'plain' }, open.slice(0, 5).map((x) => h('li', {},
        x.state ? h('a', { href: `#/incidents?id=${x.id}` }, `${when(x.opened)} ${has(`ikind.${x.kind}`) ? t(`ikind.${x.kind}`) : x.kind}${x.label || x.device ? ` (${x.label || x.device})` : ''} — ${has(`istate.${x.state}`) ? t(`istate.${x.state}`) : x.state}`)
          : `${when(x.created)} ${x.who}: ${x.note || t('help.nonote')} `,
        ctx.role === 'owner' ? h('button', { type: 'button', class: 'small', onclick: async () => {
          try { await api('POST', x.state ? `/incidents/${x.id}/resolve` : `/help/${x.id}/close`, {}); } catch { /* shown on reload */ }
          ctx.rerender();
        } }, t('help.close')) : null))) : h('p', { class: 'hint' }, t('dash.noincidents'))),
    h('section', { class: 'card' }, h('h2', {}, t('dash.requests')),
      h('p', { class: 'num' }, reqs ? String(reqs.length) : '–'), h('a', { href: '#/requests' }, t('dash.seerequests')))));
}

// ---- devices ----

async function devices(main, ctx) {
  const [list, groups] = await Promise.all([api('GET', '/devices'), api('GET', '/groups')]);
  main.append(h('h1', {}, t('nav.devices')), h('p', { class: 'hint' }, t('dev.intro')));
  const msg = h('div');
  main.append(msg, table([
    ['dev.name', (d) => d.label || d.hostname || d.mac],
    ['dev.addr', (d) => [d.ipv4, d.ipv6].filter(Boolean).join(' ')],
    ['dev.vendor', (d) => d.vendor || '–'],
    ['dev.group', (d) => ctx.role !== 'owner' ? (d.group || '–') : h('select', { 'aria-label': t('dev.group'), 'data-group': d.mac, onchange: (ev) =>
      act(msg, () => api('PUT', `/devices/${encodeURIComponent(d.mac)}`, { group: ev.target.value }), 'common.saved') },
      groups.map((g) => h('option', { value: g.name, selected: g.name === d.group }, g.name)))],
    ['dev.importance', (d) => ctx.role !== 'owner' ? String(d.importance) : h('select', { 'aria-label': t('dev.importance'), 'data-importance': d.mac, onchange: (ev) =>
      act(msg, () => api('PUT', `/devices/${encodeURIComponent(d.mac)}`, { importance: Number(ev.target.value) }), 'common.saved').then((ok) => ok && ctx.rerender()) },
      [1, 2, 3, 4, 5].map((n) => h('option', { value: n, selected: n === d.importance }, t(`imp.${n}`))))],
    ['dev.risk', (d) => h('span', { class: d.risk >= 12 ? 'risk high' : d.risk >= 6 ? 'risk mid' : 'risk' }, String(d.risk))],
    ['', (d) => ctx.role !== 'owner' ? '' : h('button', { type: 'button', 'data-rename': d.mac, onclick: () => {
      const name = prompt(t('dev.newname'), d.label || '');
      if (name !== null) act(msg, () => api('PUT', `/devices/${encodeURIComponent(d.mac)}`, { label: name }), 'common.saved').then((ok) => ok && ctx.rerender());
    } }, t('dev.rename'))],
  ], list, 'dev.none'));
}

// ---- filtering ----

function countdown(until) {
  const span = h('span', { class: 'countdown' });
  const tick = () => {
    const s = Math.max(0, until - Math.floor(Date.now() / 1000));
    span.textContent = t('filter.left', { m: Math.floor(s / 60), s: String(s % 60).padStart(2, '0') });
    if (s > 0 && span.isConnected !== false) setTimeout(tick, 1000);
  };
  tick();
  return span;
}

async function filtering(main, ctx) {
  const owner = ctx.role === 'owner';
  const [groups, rules, scheds] = await Promise.all([api('GET', '/groups'), api('GET', '/rules'), api('GET', '/schedules')]);
  main.append(h('h1', {}, t('nav.filtering')));
  for (const g of groups) {
    const msg = h('div');
    const on = new Set(g.categories || []);
    main.append(h('section', { class: 'card', id: `group-${g.name}` }, h('h2', {}, t('filter.group', { name: groupName(g.name) })),
      h('ul', { class: 'switches' }, CATEGORIES.map((c) => h('li', {},
        h('label', { class: 'switch' },
          h('input', { type: 'checkbox', role: 'switch', 'data-cat': c, checked: on.has(c), disabled: !owner, onchange: async (ev) => {
            ev.target.checked ? on.add(c) : on.delete(c);
            const okd = await act(msg, () => api('PUT', `/groups/${encodeURIComponent(g.name)}`, { categories: [...on] }), 'filter.applied');
            if (!okd) { ev.target.checked = !ev.target.checked; ev.target.checked ? on.add(c) : on.delete(c); }
          } }),
          h('span', { class: 'cat' }, catName(c))),
        h('span', { class: 'why' }, t(`catinfo.${c}`))))),
      h('label', { class: 'switch' }, h('input', { type: 'checkbox', 'data-safesearch': g.name, checked: !!g.safesearch, disabled: !owner,
        onchange: (ev) => act(msg, () => api('PUT', `/groups/${encodeURIComponent(g.name)}`, { safesearch: ev.target.checked }), 'filter.applied') }),
      h('span', {}, t('filter.safesearch'))),
      h('label', { class: 'inline' }, h('span', {}, t('filter.answer')), h('select', { 'data-answer': g.name, disabled: !owner, onchange: (ev) =>
        act(msg, () => api('PUT', `/groups/${encodeURIComponent(g.name)}`, { answer: ev.target.value }), 'filter.applied') },
        ['nxdomain', 'null', 'blockpage'].map((a) => h('option', { value: a, selected: a === g.answer }, t(`answer.${a}`))))),
      msg));
  }
  // custom rules and temporary unblocks
  const rmsg = h('div');
  const now = Math.floor(Date.now() / 1000);
  const live = rules.filter((r) => !r.expires_at || r.expires_at > now);
  const ruleForm = h('form', { class: 'row', id: 'rule-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const f = new FormData(ruleForm);
    if (await act(rmsg, () => api('POST', '/rules', { pattern: f.get('pattern'), kind: f.get('kind') }), 'filter.applied')) ctx.rerender();
  } }, h('input', { name: 'pattern', required: true, placeholder: 'example.com', 'aria-label': t('filter.pattern') }),
  h('select', { name: 'kind', 'aria-label': t('filter.kind') }, h('option', { value: 'block' }, t('kind.block')), h('option', { value: 'allow' }, t('kind.allow'))),
  h('button', { type: 'submit', disabled: !owner }, t('common.add')));
  const unForm = h('form', { class: 'row', id: 'unblock-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const f = new FormData(unForm);
    if (await act(rmsg, () => api('POST', '/unblock', { domain: f.get('domain'), minutes: Number(f.get('minutes')) }), 'filter.applied')) ctx.rerender();
  } }, h('input', { name: 'domain', required: true, placeholder: 'example.com', 'aria-label': t('filter.domain') }),
  h('select', { name: 'minutes', 'aria-label': t('filter.minutes') }, [15, 30, 60, 240, 1440].map((m) => h('option', { value: m }, t('time.minutes', { n: m })))),
  h('button', { type: 'submit', disabled: !owner }, t('filter.unblock')));
  main.append(h('section', { class: 'card' }, h('h2', {}, t('filter.custom')), h('p', { class: 'hint' }, t('filter.custom.intro')), ruleForm,
    h('h3', {}, t('filter.temp')), unForm, rmsg,
    table([
      ['filter.pattern', (r) => r.pattern],
      ['filter.kind', (r) => (r.category ? `${t(`kind.${r.kind}`)} (${catName(r.category)})` : t(`kind.${r.kind}`))],
      ['filter.scope', (r) => r.group || t('filter.allgroups')],
      ['filter.until', (r) => (r.expires_at ? countdown(r.expires_at) : t('filter.permanent'))],
      ['filter.by', (r) => r.author],
      ['', (r) => owner ? h('button', { type: 'button', onclick: async () => {
        if (await act(rmsg, () => api('DELETE', `/rules/${r.id}`), 'filter.applied')) ctx.rerender();
      } }, t('common.delete')) : ''],
    ], live, 'filter.norules')));
  // schedules
  const smsg = h('div');
  const sForm = h('form', { class: 'row', id: 'schedule-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const f = new FormData(sForm);
    if (await act(smsg, () => api('POST', '/schedules', { group: f.get('group'), category: f.get('category'), days: f.get('days'), start: f.get('start'), end: f.get('end') }), 'filter.applied')) ctx.rerender();
  } }, h('select', { name: 'group', 'aria-label': t('filter.schedgroup') }, groups.map((g) => h('option', { value: g.name }, g.name))),
  h('select', { name: 'category', 'aria-label': t('filter.schedcat') }, CATEGORIES.map((c) => h('option', { value: c }, catName(c)))),
  h('select', { name: 'days', 'aria-label': t('filter.days') }, ['mon-fri', 'sat,sun', 'daily'].map((d) => h('option', { value: d }, t(`days.${d}`)))),
  h('input', { name: 'start', type: 'time', value: '09:00', 'aria-label': t('filter.start') }),
  h('input', { name: 'end', type: 'time', value: '18:00', 'aria-label': t('filter.end') }),
  h('button', { type: 'submit', disabled: !owner }, t('common.add')));
  const hhmm = (m) => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`;
  main.append(h('section', { class: 'card' }, h('h2', {}, t('filter.schedules')), h('p', { class: 'hint' }, t('filter.sched.intro')), sForm, smsg,
    table([['filter.schedgroup', (s) => s.group], ['filter.schedcat', (s) => catName(s.category)],
      ['filter.time', (s) => `${hhmm(s.start_min)}–${hhmm(s.end_min)}`],
      ['', (s) => owner ? h('button', { type: 'button', onclick: async () => {
        if (await act(smsg, () => api('DELETE', `/schedules/${s.id}`), 'filter.applied')) ctx.rerender();
      } }, t('common.delete')) : '']], scheds, 'filter.noscheds')));
  // explain
  const out = h('div', { id: 'explain-out' });
  const eForm = h('form', { class: 'row', id: 'explain-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const q = new FormData(eForm).get('q');
    clear(out);
    try {
      const a = await api('GET', `/explain?q=${encodeURIComponent(q)}`);
      // The agent's summary is English; other languages get the translated decision only.
      out.append(h('p', { class: 'big2' }, t(`decision.${a.decision}`), lang === 'en' && a.summary ? ` — ${a.summary}` : ''),
        h('ul', {}, (a.chain || []).map((s) => h('li', {}, `${s.enforced ? '✔ ' : '· '}${t(`kind.${s.action}`)} ${s.matched} — ${s.name}${s.category ? ` (${catName(s.category)})` : ''}`))));
    } catch (e) { out.append(err(e)); }
  } }, h('input', { name: 'q', required: true, placeholder: 'example.com', 'aria-label': t('filter.explainq') }), h('button', { type: 'submit' }, t('filter.explain')));
  main.append(h('section', { class: 'card' }, h('h2', {}, t('filter.why')), eForm, out));
}

// ---- unblock requests ----

async function requests(main, ctx) {
  const owner = ctx.role === 'owner';
  const list = await api('GET', '/unblock-requests');
  const msg = h('div');
  const decide = (r, verb, minutes) => async () => {
    if (await act(msg, () => api('POST', `/unblock-requests/${r.id}/${verb}`, verb === 'approve' ? { minutes } : {}), 'common.saved')) ctx.rerender();
  };
  main.append(h('h1', {}, t('nav.requests')), h('p', { class: 'hint' }, t('req.intro')), msg,
    table([
      ['req.domain', (r) => r.domain],
      ['req.who', (r) => `${r.name || t('req.anon')} (${r.client})`],
      ['req.reason', (r) => r.reason || '–'],
      ['req.when', (r) => when(r.created)],
      ['req.status', (r) => t(`req.st.${r.status}`)],
      ['', (r) => (r.status !== 'pending' || !owner ? '' : h('span', { class: 'actions' },
        h('button', { type: 'button', 'data-approve': '60', onclick: decide(r, 'approve', 60) }, t('req.approve1h')),
        h('button', { type: 'button', 'data-approve': '0', onclick: decide(r, 'approve', 0) }, t('req.approveperm')),
        h('button', { type: 'button', 'data-decline': '1', onclick: decide(r, 'decline') }, t('req.decline'))))],
    ], list, 'req.none'));
}

// ---- delegation ----

async function delegation(main, ctx) {
  const owner = ctx.role === 'owner';
  const [dels, grants, audit, groups] = await Promise.all([api('GET', '/delegates'), api('GET', '/grants'), api('GET', '/audit?limit=50'), api('GET', '/groups')]);
  const msg = h('div');
  const dForm = h('form', { class: 'row', id: 'delegate-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const f = new FormData(dForm);
    if (await act(msg, () => api('POST', '/delegates', { name: f.get('name'), pubkey: f.get('pubkey') }), 'common.saved')) ctx.rerender();
  } }, h('input', { name: 'name', required: true, placeholder: t('del.name'), 'aria-label': t('del.name') }),
  h('input', { name: 'pubkey', required: true, placeholder: t('del.pubkey'), 'aria-label': t('del.pubkey'), size: 46 }),
  h('button', { type: 'submit', disabled: !owner }, t('common.add')));
  const gForm = h('form', { class: 'col', id: 'grant-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const f = new FormData(gForm);
    const body = { delegate: f.get('delegate'), categories: f.getAll('categories'), groups: f.getAll('groups'),
      actions: f.getAll('actions'), days: Number(f.get('days')) };
    if (await act(msg, () => api('POST', '/grants', body), 'common.saved')) ctx.rerender();
  } },
  h('label', {}, h('span', {}, t('del.who')), h('select', { name: 'delegate' }, dels.map((d) => h('option', { value: d.name }, d.name)))),
  h('fieldset', {}, h('legend', {}, t('del.categories')), CATEGORIES.map((c) => h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: 'categories', value: c }), catName(c)))),
  h('fieldset', {}, h('legend', {}, t('del.groups')), groups.map((g) => h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: 'groups', value: g.name }), g.name))),
  h('fieldset', {}, h('legend', {}, t('del.actions')), ['add_block', 'add_allow', 'change_schedule'].map((a) => h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: 'actions', value: a }), t(`act.${a}`)))),
  h('label', {}, h('span', {}, t('del.days')), h('input', { name: 'days', type: 'number', min: 1, max: 3650, value: 30 })),
  h('button', { type: 'submit', class: 'primary', disabled: !owner || !dels.length }, t('del.grant')));
  const now = Math.floor(Date.now() / 1000);
  main.append(h('h1', {}, t('nav.delegation')), h('p', { class: 'hint' }, t('del.intro')), msg,
    h('section', { class: 'card' }, h('h2', {}, t('del.delegates')), dForm,
      table([['del.name', (d) => d.name], ['del.pubkey', (d) => h('code', {}, d.pubkey)], ['del.since', (d) => when(d.created)]], dels, 'del.nodelegates')),
    h('section', { class: 'card' }, h('h2', {}, t('del.grants')), gForm,
      table([
        ['del.who', (g) => g.delegate],
        ['del.scope', (g) => `${(g.categories || []).map(catName).join(', ')} / ${(g.groups || []).join(', ')}`],
        ['del.actions', (g) => (g.actions || []).map((a) => t(`act.${a}`)).join(', ')],
        ['del.until', (g) => (g.revoked_at ? t('del.revoked') : g.expires_at && g.expires_at < now ? t('del.expired') : when(g.expires_at))],
        ['', (g) => (owner && !g.revoked_at && (!g.expires_at || g.expires_at > now) ? h('button', { type: 'button', class: 'danger', 'data-revoke': g.id, onclick: async () => {
          if (await act(msg, () => api('POST', `/grants/${g.id}/revoke`), 'common.saved')) ctx.rerender();
        } }, t('del.revoke')) : '')],
      ], grants, 'del.nogrants')),
    h('section', { class: 'card' }, h('h2', {}, t('del.audit')),
      table([['audit.when', (a) => when(a.at)], ['audit.who', (a) => (a.account ? t('audit.byaccount', { user: a.account }) : a.who)], ['audit.what', (a) => (has(`verb.${a.what}`) ? t(`verb.${a.what}`) : a.what)],
        ['audit.result', (a) => (a.result === 'ok' ? t('audit.ok') : t('audit.refused'))], ['audit.reason', (a) => a.reason || '']], audit, 'common.none')));
}

// ---- incidents ----

const ikind = (k) => (has(`ikind.${k}`) ? t(`ikind.${k}`) : k);
const istate = (k) => (has(`istate.${k}`) ? t(`istate.${k}`) : k);

// Steps the box words itself store "English / 日本語" in one detail (notify.c, detect.c,
// incidents.c, help*.c); a page shows the half in its language. The separator is the middle
// " / " because an error quoted in both halves may bring its own. Owners' notes (the other
// steps) and rows written before both languages existed are shown whole.
const BOX_WORDED = new Set(['detected', 'contained', 'released', 'help_sent', 'helper_connected', 'remote_help_started',
  'remote_help_ended', 'notify_sent', 'notify_failed', 'notify_retry', 'notify_skipped']);
function stepDetail(e) {
  const d = e.detail || '';
  if (!BOX_WORDED.has(e.what)) return d;
  const at = [];
  for (let i = d.indexOf(' / '); i >= 0; i = d.indexOf(' / ', i + 3)) at.push(i);
  if (at.length % 2 === 0) return d;
  const cut = at[(at.length - 1) / 2];
  const ja = d.slice(cut + 3);
  if (!/[\u3000-\u9fff\uff00-\uffef]/.test(ja)) return d;
  return lang === 'ja' ? ja : d.slice(0, cut);
}

async function incidents(main, ctx) {
  const owner = ctx.role === 'owner';
  const id = new URLSearchParams((location.hash.split('?')[1]) || '').get('id');
  main.append(h('h1', {}, t('nav.incidents')));
  if (!id) {
    const list = await api('GET', '/incidents');
    main.append(h('p', { class: 'hint' }, t('inc.intro')), table([
      ['inc.opened', (x) => when(x.opened)],
      ['inc.what', (x) => ikind(x.kind)],
      ['inc.device', (x) => x.label || x.device || '–'],
      ['inc.severity', (x) => h('span', { class: `sev ${x.severity}` }, has(`sev.${x.severity}`) ? t(`sev.${x.severity}`) : x.severity)],
      ['inc.state', (x) => istate(x.state)],
      ['inc.count', (x) => String(x.count)],
      ['', (x) => h('a', { href: `#/incidents?id=${x.id}`, 'data-incident': x.id }, t('inc.open'))],
    ], list, 'inc.none'));
    return;
  }
  const inc = await api('GET', `/incidents/${encodeURIComponent(id)}`);
  const msg = h('div', { id: 'incident-msg' });
  const step = (verb, body) => async () => {
    if (await act(msg, () => api('POST', `/incidents/${inc.id}/${verb}`, body || {}), 'common.saved')) ctx.rerender();
  };
  const title = (inc.title && (inc.title[lang] || inc.title.en)) || ikind(inc.kind);
  const advice = inc.advice && (inc.advice[lang] || inc.advice.en);
  const done = inc.state === 'resolved';
  main.append(h('p', {}, h('a', { href: '#/incidents' }, t('inc.back'))),
    h('section', { class: 'card', id: 'incident' },
      h('h2', {}, `#${inc.id} ${title}`),
      h('p', {}, h('span', { class: `sev ${inc.severity}` }, has(`sev.${inc.severity}`) ? t(`sev.${inc.severity}`) : inc.severity),
        ' · ', istate(inc.state), ' · ', inc.label || inc.device || '', inc.quarantined ? ` · ${t('inc.quarantined')}` : ''),
      advice ? h('p', { class: 'advice' }, advice) : null,
      owner && !done ? h('div', { class: 'row' },
        inc.state === 'open' ? h('button', { type: 'button', id: 'inc-ack', onclick: step('ack') }, t('inc.ack')) : null,
        h('button', { type: 'button', id: 'inc-help', onclick: step('help') }, t('dash.help')),
        inc.device && inc.device !== 'box' ? h('button', { type: 'button', class: 'danger', id: 'inc-contain', onclick: step('contain', { release: !!inc.quarantined }) },
          t(inc.quarantined ? 'inc.release' : 'inc.contain')) : null,
        h('button', { type: 'button', class: 'primary', id: 'inc-resolve', onclick: step('resolve') }, t('inc.resolve'))) : null,
      h('div', { class: 'row' }, h('button', { type: 'button', id: 'inc-report', onclick: () => act(msg, async () => {
        const r = await fetch(`/api/incidents/${inc.id}/report?format=md&lang=${lang}`, { credentials: 'same-origin' });
        if (!r.ok) throw new ApiError(r.status, (await r.text()).slice(0, 200));
        const a = h('a', { href: URL.createObjectURL(new Blob([await r.text()], { type: 'text/markdown' })), download: `incident-${inc.id}.md` });
        document.body.append(a); a.click(); a.remove();
      }, 'inc.exported') }, t('inc.export'))),
      msg),
    h('section', { class: 'card' }, h('h2', {}, t('inc.timeline')),
      table([['audit.when', (e) => when(e.at)], ['audit.who', (e) => e.who || '–'], ['audit.what', (e) => (has(`tl.${e.what}`) ? t(`tl.${e.what}`) : e.what)], ['inc.detail', stepDetail]],
        inc.timeline || [], 'common.none')));
}

export const pages = { '#/': dashboard, '#/devices': devices, '#/filtering': filtering, '#/requests': requests,
  '#/delegation': delegation, '#/settings': settings, '#/incidents': incidents };
