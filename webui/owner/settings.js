// The Settings page: threat lists and their freshness, the hub (enrolment, sharing),
// notifications with a test that really sends, accounts, the signed-in person's own
// password, backup and restore. Every action answers next to its button, in words.
import { h, clear } from './common/dom.js';
import { t } from './common/i18n.js';
import { api, ApiError } from './common/api.js';
import { act, table } from './common/shell.js';
import { CATEGORIES } from './common/categories.js';
import { when, ago, catName } from './pages.js';

const busy = (btn, key) => { btn.disabled = true; btn.dataset.label = btn.textContent; btn.textContent = t(key); };
const idle = (btn) => { btn.disabled = false; if (btn.dataset.label) btn.textContent = btn.dataset.label; };

// A password form used in Settings and for the forced first change; done() after success.
export function passwordForm(id, done) {
  const msg = h('div', { id: `${id}-msg` });
  const form = h('form', { class: 'col', id, onsubmit: async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    clear(msg);
    if (f.get('new_password') !== f.get('new_password2')) {
      msg.append(h('p', { class: 'error', role: 'alert' }, t('setup.mismatch')));
      return;
    }
    const btn = form.querySelector('button[type=submit]');
    busy(btn, 'pw.saving');
    const ok = await act(msg, () => api('POST', '/auth/password', { old_password: f.get('old_password'), new_password: f.get('new_password') }), 'pw.changed');
    idle(btn);
    if (ok) { form.reset(); if (done) done(); }
  } },
  h('label', {}, h('span', {}, t('pw.old')), h('input', { name: 'old_password', type: 'password', required: true, autocomplete: 'current-password' })),
  h('label', {}, h('span', {}, t('pw.new')), h('input', { name: 'new_password', type: 'password', required: true, minlength: 10, autocomplete: 'new-password' })),
  h('label', {}, h('span', {}, t('pw.new2')), h('input', { name: 'new_password2', type: 'password', required: true, minlength: 10, autocomplete: 'new-password' })),
  h('p', { class: 'hint' }, t('setup.pwhint')),
  h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary' }, t('pw.submit'))), msg);
  return form;
}

function feedsCard(st, owner, ctx, enr) {
  // The hub's shared list is kept up to date by the hub connection itself (push + poll).
  const viaHub = (f) => f.name === 'hub' && enr && enr.enrolled;
  const fmsg = h('div', { id: 'feed-msg' });
  const feedForm = h('form', { class: 'row', id: 'feed-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const f = new FormData(feedForm);
    const name = f.get('name');
    const added = await act(fmsg, () => api('POST', '/feeds', { name, url: f.get('url'), kind: 'list', category: f.get('category') }));
    if (!added) return;
    // The agent downloads it on its next tick: show progress until the feed has a result.
    const line = h('p', { class: 'hint', role: 'status' }, t('set.downloading'));
    fmsg.append(line);
    for (let i = 0; i < 60; i++) {
      await new Promise((r) => setTimeout(r, 500));
      line.textContent = `${t('set.downloading')} ${'.'.repeat(i % 4)}`;
      const st2 = await api('GET', '/status').catch(() => null);
      const fd = st2 && st2.feeds.find((x) => x.name === name);
      if (fd && (fd.last_good || fd.last_error)) break;
    }
    ctx.rerender();
  } },
  h('input', { name: 'name', required: true, maxlength: 48, placeholder: t('set.feedname'), 'aria-label': t('set.feedname') }),
  h('input', { name: 'url', required: true, size: 40, placeholder: 'https://example.org/list.txt', 'aria-label': t('set.feedurl') }),
  h('select', { name: 'category', 'aria-label': t('filter.schedcat') }, CATEGORIES.map((c) => h('option', { value: c }, catName(c)))),
  h('button', { type: 'submit', disabled: !owner }, t('set.subscribe')));
  const stale = st.feeds.filter((f) => f.age_seconds === null || f.age_seconds === undefined || f.age_seconds > 86400);
  return h('section', { class: 'card', id: 'feeds' }, h('h2', {}, t('set.feeds')), h('p', { class: 'hint' }, t('set.feeds.intro')),
    stale.length ? h('p', { class: 'stale', id: 'stale-feeds' }, t('set.stalecount', { n: stale.length })) : null,
    owner ? feedForm : null, fmsg,
    table([
      ['set.feed', (f) => f.name],
      ['set.entries', (f) => String(f.entries)],
      ['set.fresh', (f) => h('span', { class: f.age_seconds === null || f.age_seconds > 86400 ? 'stale' : '' },
        f.age_seconds === null || f.age_seconds === undefined ? t('common.never') : t('time.ago', { t: ago(f.age_seconds) }))],
      ['set.lasterror', (f) => f.last_error || '–'],
      ['', (f) => viaHub(f) ? h('span', { class: 'hint' }, t('set.viahub')) : owner ? h('button', { type: 'button', onclick: async (ev) => {
        busy(ev.target, 'set.refreshing');
        await act(fmsg, () => api('POST', `/feeds/${encodeURIComponent(f.name)}/refresh`), 'set.refreshed');
        idle(ev.target);
      } }, t('set.refresh')) : ''],
      ['', (f) => owner && !viaHub(f) ? h('button', { type: 'button', class: 'danger', 'data-unsubscribe': f.name, onclick: async () => {
        if (await act(fmsg, () => api('DELETE', `/feeds/${encodeURIComponent(f.name)}`))) ctx.rerender();
      } }, t('set.unsubscribe')) : ''],
    ], st.feeds, 'dash.nofeeds'));
}

// Hub checks run on the box's worker: start one, then ask until it is done, showing a
// progress line in `where`. Returns the finished job or throws its error in words.
async function hubJob(kind, body, where) {
  let j = await api('POST', `/hub/${kind}`, body);
  const line = h('p', { class: 'hint', role: 'status' }, t(kind === 'probe' ? 'hub.checking' : 'hub.enrolling'));
  clear(where).append(line);
  for (let i = 0; j.state === 'running' && i < 360; i++) {
    await new Promise((r) => setTimeout(r, 250));
    line.textContent = `${t(kind === 'probe' ? 'hub.checking' : 'hub.enrolling')} ${'.'.repeat(i % 4)}`;
    j = await api('GET', '/hub/job');
  }
  clear(where);
  if (j.state === 'running') throw new Error(t('hub.noanswer'));
  if (j.error) throw new ApiError(j.status || 500, j.error, j.field);
  return j;
}

function hubCard(enr, share, owner, ctx) {
  const msg = h('div', { id: 'hub-msg' });
  const rows = [];
  if (enr && enr.enrolled) {
    rows.push(h('dl', { class: 'facts', id: 'hub-info' },
      h('dt', {}, t('hub.url')), h('dd', {}, enr.url),
      h('dt', {}, t('hub.org')), h('dd', { id: 'hub-org' }, enr.org || '–'),
      h('dt', {}, t('hub.boxid')), h('dd', {}, String(enr.box_id)),
      h('dt', {}, t('hub.feed')), h('dd', {}, enr.feed_id || '–'),
      h('dt', {}, t('hub.fingerprint')), h('dd', {}, h('code', { id: 'hub-fp' }, enr.fingerprint || t('hub.systemca'))),
      h('dt', {}, t('hub.lastsync')), h('dd', {}, enr.last_sync ? t('time.ago', { t: ago(Math.max(0, Math.floor(Date.now() / 1000) - enr.last_sync)) }) : t('common.never')),
      enr.last_error ? [h('dt', {}, t('set.lasterror')), h('dd', { class: 'stale' }, enr.last_error)] : null));
  } else {
    rows.push(h('p', { id: 'hub-none' }, t('hub.none')));
    if (owner) {
      const checked = h('div', { id: 'hub-check' });
      const form = h('form', { class: 'col', id: 'hub-form', onsubmit: (ev) => ev.preventDefault() },
        h('label', {}, h('span', {}, t('hub.url')), h('input', { name: 'url', required: true, placeholder: 'https://hub.example.jp:8443', autocomplete: 'off' })),
        h('label', {}, h('span', {}, t('hub.code')), h('input', { name: 'code', required: true, autocomplete: 'off', placeholder: t('hub.codeph') })),
        h('div', { class: 'row' }, h('button', { type: 'button', id: 'hub-probe', onclick: async (ev) => {
          const f = new FormData(form);
          clear(checked);
          busy(ev.target, 'hub.checking');
          let fp = null;
          await act(msg, async () => { fp = (await hubJob('probe', { url: f.get('url') }, msg)).fingerprint; });
          idle(ev.target);
          if (!fp) return;
          checked.append(h('p', {}, t('hub.compare')), h('p', {}, h('code', { id: 'hub-probe-fp' }, fp)),
            h('button', { type: 'button', class: 'primary', id: 'hub-enroll', onclick: async (ev2) => {
              const g = new FormData(form);
              busy(ev2.target, 'hub.enrolling');
              const ok = await act(msg, () => hubJob('enroll', { url: g.get('url'), code: g.get('code'), fingerprint: fp }, msg), 'hub.enrolled');
              idle(ev2.target);
              if (ok) ctx.rerender();
            } }, t('hub.enroll')));
        } }, t('hub.check'))), checked);
      rows.push(h('p', { class: 'hint' }, t('hub.intro')), form);
    }
  }
  const on = !!(share && share.sharing);
  const sharing = h('section', { class: 'sub', id: 'sharing' }, h('h3', {}, t('share.title')),
    h('label', { class: 'switch' }, h('input', { type: 'checkbox', role: 'switch', id: 'sharing-switch', checked: on, disabled: !owner || !share, onchange: async (ev) => {
      const want = ev.target.checked;
      const ok = await act(msg, () => api('PUT', '/hub', { sharing: want }), want ? 'share.on' : 'share.off');
      if (!ok) ev.target.checked = !want;
    } }), h('span', {}, t('share.switch'))),
    h('p', { class: 'hint' }, t('share.what')),
    !share ? h('p', { class: 'hint' }, t('share.unavailable')) : null,
    share && share.last_contribution ? h('p', { class: 'hint', id: 'share-last' }, t('share.last', { when: when(share.last_contribution), n: share.last_contribution_count || 0 })) : null,
    share && (enr && !enr.enrolled) ? h('p', { class: 'hint' }, t('share.needhub')) : null);
  return h('section', { class: 'card', id: 'hub' }, h('h2', {}, t('hub.title')), rows, sharing, msg);
}

function notifyCard(cur, owner) {
  const val = (k) => { const r = (cur || []).find((x) => x.key === k); return r ? r.value : ''; };
  const msg = h('div', { id: 'notify-msg' });
  // Secrets (the webhook may carry a token) are never sent back: "set" means configured.
  const secret = (name, label, ph) => h('label', {}, h('span', {}, label),
    h('input', { name, autocomplete: 'off', placeholder: val(name) === 'set' ? t('notify.keep') : ph, disabled: !owner }));
  const form = h('form', { class: 'col', id: 'notify-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    const body = {};
    for (const k of ['notify_webhook', 'notify_smtp']) if (f.get(k)) body[k] = f.get(k);
    for (const k of ['notify_mail_from', 'notify_mail_to', 'notify_lang']) body[k] = f.get(k) || '';
    await act(msg, () => api('POST', '/incidents/settings', body), 'common.saved');
  } },
  secret('notify_webhook', t('notify.webhook'), 'https://hooks.example.jp/otasuke'),
  secret('notify_smtp', t('notify.smtp'), 'smtp://mail.example.jp:25'),
  h('label', {}, h('span', {}, t('notify.from')), h('input', { name: 'notify_mail_from', value: val('notify_mail_from'), placeholder: 'otasuke@example.jp', disabled: !owner })),
  h('label', {}, h('span', {}, t('notify.to')), h('input', { name: 'notify_mail_to', value: val('notify_mail_to'), placeholder: 'owner@example.jp', disabled: !owner })),
  h('label', {}, h('span', {}, t('notify.lang')), h('select', { name: 'notify_lang', disabled: !owner },
    h('option', { value: 'ja', selected: val('notify_lang') !== 'en' }, '日本語'), h('option', { value: 'en', selected: val('notify_lang') === 'en' }, 'English'))),
  h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary', disabled: !owner }, t('notify.save')),
    h('button', { type: 'button', id: 'notify-test', disabled: !owner, onclick: async (ev) => {
      busy(ev.target, 'notify.testing');
      clear(msg).append(h('p', { class: 'hint', role: 'status' }, t('notify.testing')));
      // The box sends in the background; ask for the result until it is there.
      let res = null;
      await act(msg, async () => {
        res = await api('POST', '/notify/test');
        const line = h('p', { class: 'hint', role: 'status' }, t('notify.testing'));
        clear(msg).append(line);
        for (let i = 0; res.state === 'sending' && i < 120; i++) {
          await new Promise((r) => setTimeout(r, 250));
          line.textContent = `${t('notify.testing')} ${'.'.repeat(i % 4)}`;
          res = await api('GET', '/notify/test');
        }
        if (res.state !== 'done') throw new Error(t('notify.noanswer'));
        clear(msg);
      });
      idle(ev.target);
      if (!res || res.state !== 'done') return;
      for (const r of res.results) {
        const name = t(`notify.ch.${r.channel}`);
        msg.append(h('p', { class: r.ok ? 'ok' : 'error', role: r.ok ? 'status' : 'alert', 'data-channel': r.channel },
          r.ok ? t('notify.sent', { ch: name }) : t('notify.failed', { ch: name, why: r.error })));
      }
    } }, t('notify.test'))), msg);
  return h('section', { class: 'card', id: 'notify' }, h('h2', {}, t('notify.title')), h('p', { class: 'hint' }, t('notify.intro')), form);
}

function accountsCard(accounts, ctx) {
  const amsg = h('div', { id: 'account-msg' });
  const aForm = h('form', { class: 'row', id: 'account-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const f = new FormData(aForm);
    const body = { username: f.get('username'), role: f.get('role') };
    if (f.get('password')) body.password = f.get('password');
    let res = null;
    if (!await act(amsg, async () => { res = await api('POST', '/accounts', body); })) return;
    aForm.reset();
    // The one-time password is shown once, here; the agent keeps only its hash.
    amsg.append(h('div', { class: 'ok', role: 'status', id: 'account-added' },
      h('p', {}, t('acct.added', { user: res.username })),
      res.initial_password ? h('p', {}, t('acct.otp'), ' ', h('code', { id: 'account-otp', class: 'otp' }, res.initial_password)) : null,
      h('p', { class: 'hint' }, t('acct.mustchange'))));
    const tbl = document.getElementById('accounts-table');
    const list = await api('GET', '/accounts').catch(() => null);
    if (tbl && list) tbl.replaceWith(accountsTable(list, ctx, amsg));
  } }, h('input', { name: 'username', required: true, placeholder: t('login.username'), 'aria-label': t('login.username') }),
  h('select', { name: 'role', 'aria-label': t('set.role') }, h('option', { value: 'viewer' }, t('role.viewer')), h('option', { value: 'owner' }, t('role.owner'))),
  h('input', { name: 'password', type: 'password', minlength: 10, placeholder: t('acct.pwopt'), 'aria-label': t('acct.pwopt'), autocomplete: 'new-password', size: 34 }),
  h('button', { type: 'submit' }, t('common.add')));
  return h('section', { class: 'card', id: 'accounts' }, h('h2', {}, t('set.accounts')), h('p', { class: 'hint' }, t('acct.intro')), aForm, amsg,
    accountsTable(accounts, ctx, amsg));
}

function accountsTable(accounts, ctx, amsg) {
  const el = table([['login.username', (a) => a.username], ['set.role', (a) => t(`role.${a.role}`)], ['set.created', (a) => when(a.created)],
    ['acct.state', (a) => (a.must_change ? h('span', { class: 'stale' }, t('acct.pending')) : t('acct.active'))],
    ['', (a) => (a.username === ctx.user ? '' : h('button', { type: 'button', 'data-reset': a.username, onclick: async () => {
      if (!confirm(t('acct.resetconfirm', { user: a.username }))) return;
      let res = null;
      if (!await act(amsg, async () => { res = await api('POST', `/accounts/${encodeURIComponent(a.username)}/reset`); })) return;
      amsg.append(h('div', { class: 'ok', role: 'status', id: 'account-added' },
        h('p', {}, t('acct.resetdone', { user: a.username })),
        h('p', {}, t('acct.otp'), ' ', h('code', { id: 'account-otp', class: 'otp' }, res.initial_password)),
        h('p', { class: 'hint' }, t('acct.mustchange'))));
      const list = await api('GET', '/accounts').catch(() => null);
      const tbl = document.getElementById('accounts-table');
      if (tbl && list) tbl.replaceWith(accountsTable(list, ctx, amsg));
    } }, t('acct.reset')))],
    ['', (a) => (a.username === ctx.user ? h('span', { class: 'hint' }, t('acct.you')) : h('button', { type: 'button', class: 'danger', 'data-remove': a.username, onclick: async () => {
      if (!confirm(t('acct.confirm', { user: a.username }))) return;
      if (await act(amsg, () => api('DELETE', `/accounts/${encodeURIComponent(a.username)}`), 'acct.removed')) {
        const list = await api('GET', '/accounts').catch(() => null);
        const tbl = document.getElementById('accounts-table');
        if (tbl && list) tbl.replaceWith(accountsTable(list, ctx, amsg));
      }
    } }, t('acct.remove')))]], accounts);
  el.id = 'accounts-table';
  return el;
}

function backupCard() {
  const bmsg = h('div', { id: 'backup-msg' });
  const file = h('input', { type: 'file', id: 'restore-file', accept: 'application/json', 'aria-label': t('set.restorefile') });
  return h('section', { class: 'card', id: 'backup-card' }, h('h2', {}, t('set.backup')), h('p', { class: 'hint' }, t('set.backup.intro')),
    h('button', { type: 'button', id: 'backup', onclick: () => act(bmsg, async () => {
      const data = await api('GET', '/backup');
      const a = h('a', { href: URL.createObjectURL(new Blob([JSON.stringify(data, null, 1)], { type: 'application/json' })), download: 'otasuke-backup.json' });
      document.body.append(a); a.click(); a.remove();
    }, 'set.backedup') }, t('set.download')),
    h('div', { class: 'row' }, file, h('button', { type: 'button', id: 'restore', onclick: (ev) => act(bmsg, async () => {
      if (!file.files.length) throw new Error(t('set.nofile'));
      busy(ev.target, 'set.restoring');
      clear(bmsg).append(h('p', { class: 'hint', role: 'status' }, t('set.restoring')));
      try { await api('POST', '/restore', await file.files[0].text()); } finally { idle(ev.target); }
      clear(bmsg);
    }, 'set.restored') }, t('set.restore'))), bmsg);
}

export async function settings(main, ctx) {
  const owner = ctx.role === 'owner';
  const [st, enr, share, notify] = await Promise.all([
    api('GET', '/status'),
    api('GET', '/hub/enrolment').catch(() => null),
    api('GET', '/hub').catch(() => null),
    api('GET', '/incidents/settings').catch(() => null),
  ]);
  const accounts = owner ? await api('GET', '/accounts') : [];
  main.append(h('h1', {}, t('nav.settings')),
    h('nav', { class: 'toc' }, [['#feeds', 'set.feeds'], ['#hub', 'hub.title'], ['#notify', 'notify.title'], owner ? ['#accounts', 'set.accounts'] : null,
      ['#mypassword', 'pw.title'], owner ? ['#backup-card', 'set.backup'] : null].filter(Boolean).map(([id, key]) =>
      h('a', { href: '#/settings', onclick: (ev) => { ev.preventDefault(); document.querySelector(id)?.scrollIntoView(); } }, t(key)))),
    feedsCard(st, owner, ctx, enr), hubCard(enr, share, owner, ctx));
  if (notify || owner) main.append(notifyCard(notify, owner));
  if (owner) main.append(accountsCard(accounts, ctx));
  main.append(h('section', { class: 'card', id: 'mypassword' }, h('h2', {}, t('pw.title')), h('p', { class: 'hint' }, t('pw.intro')), passwordForm('password-form')));
  if (owner) main.append(backupCard());
}
