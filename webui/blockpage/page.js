// Block page: says what was blocked and why, in the visitor's language (the server picks
// it from Accept-Language), and lets them ask the owner to unblock. All text comes from
// ja.json / en.json and goes into the page as text nodes only (h() and t() are the owner
// UI's, from webui/common, copied into blockpage/common/ by the build).
import { h } from './common/dom.js';
import { t, has, loadLang } from './common/i18n.js';

const app = document.getElementById('app');

async function main() {
  let info;
  try {
    const r = await fetch('/__otasuke/info', { cache: 'no-store' });
    info = await r.json();
  } catch {
    info = { host: location.hostname, lang: (navigator.language || 'en').startsWith('ja') ? 'ja' : 'en' };
  }
  const saved = sessionStorage.getItem('otasuke.lang');
  const lang = saved === 'ja' || saved === 'en' ? saved : info.lang === 'ja' ? 'ja' : 'en';
  await loadLang(lang);   // /__otasuke/<lang>.json, next to this page
  document.title = t('title');
  const cat = info.category ? (has(`cat.${info.category}`) ? t(`cat.${info.category}`) : info.category) : null;
  const msg = h('div', { role: 'status' });
  const form = h('form', { id: 'request-form', method: 'post', action: '/__otasuke/request', onsubmit: async (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    msg.replaceChildren();
    try {
      const r = await fetch('/__otasuke/request', { method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: f.get('name') || '', reason: f.get('reason') || '' }) });
      if (!r.ok) {
        let detail = '';
        try { detail = (await r.json()).error || ''; } catch { /* not JSON */ }
        throw new Error(r.status === 429 ? t('err.toomany') : `${t('err.failed')} ${detail}`);
      }
      form.replaceWith(h('p', { class: 'sent', id: 'sent' }, t('sent')));
    } catch (e) {
      msg.append(h('p', { class: 'error', role: 'alert' }, e.message || t('err.failed')));
    }
  } },
  h('h2', {}, t('ask.title')), h('p', {}, t('ask.intro')),
  h('label', {}, h('span', {}, t('ask.name')), h('input', { name: 'name', maxlength: 60, autocomplete: 'name' })),
  h('label', {}, h('span', {}, t('ask.reason')), h('textarea', { name: 'reason', maxlength: 500, rows: 3 })),
  h('button', { type: 'submit' }, t('ask.submit')), msg);
  const other = lang === 'ja' ? 'en' : 'ja';
  app.replaceChildren(
    h('div', { class: 'card' },
      h('button', { class: 'lang', type: 'button', onclick: () => { sessionStorage.setItem('otasuke.lang', other); location.reload(); } }, t('lang.switch')),
      h('img', { class: 'icon', src: '/__otasuke/stop.svg', alt: '', width: 56, height: 56 }),
      h('h1', {}, t('heading')),
      h('p', { class: 'host', id: 'blocked-host' }, info.host),
      h('p', {}, cat ? t('why.category', { category: cat }) : t('why.unknown')),
      info.source === 'rule' ? h('p', { class: 'list' }, t('why.ownerrule'))
        : info.list ? h('p', { class: 'list' }, t('why.list', { list: info.list })) : null,
      h('p', { class: 'hint' }, t('why.safe')),
      new URLSearchParams(location.search).get('sent') ? h('p', { class: 'sent' }, t('sent')) : form));
}

main().catch((e) => { app.textContent = `Blocked. (${e.message})`; });
