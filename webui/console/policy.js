// Push a policy change to one box, within the grant its owner gave this MSP. The change is
// signed here, in the browser, with the MSP's key loaded from a local file (sign.js); the
// hub relays the signed text and the box's agent checks signature and grant itself.
import { h, clear } from './common/dom.js';
import { t } from './common/i18n.js';
import { api } from './common/api.js';
import { errorBox as err, label } from './common/shell.js';
import { CATEGORIES } from './common/categories.js';
import { loadSecretKey, signText, KeyError } from './sign.js';
import { when, boxNames, pill } from './pages.js';
const ACTIONS = ['add_block', 'add_allow'];
const DELEGATE_KEY = 'otasuke.console.delegate';   // a name, not a secret

// The signing key stays in this module (memory of this tab) until the page is left.
let signer = null;


function keyWords(e) {
  return e instanceof KeyError ? t(e.code) : `${t('key.unreadable')} (${e.message || e})`;
}

function changeRow(list) {
  const row = h('div', { class: 'row change' },
    h('select', { name: 'action', 'aria-label': t('policy.action') }, ACTIONS.map((a) => h('option', { value: a }, t(`policy.action.${a}`)))),
    h('input', { name: 'indicator', 'aria-label': t('policy.indicator'), placeholder: t('policy.indicator.ph'), required: true, maxlength: 253 }),
    h('select', { name: 'category', 'aria-label': t('policy.category') }, CATEGORIES.map((c) => h('option', { value: c }, label('cat', c)))),
    h('input', { name: 'group', 'aria-label': t('policy.group'), placeholder: t('policy.group.ph'), maxlength: 48 }),
    h('button', { type: 'button', class: 'small', onclick: () => { if (list.children.length > 1) row.remove(); } }, t('policy.remove')));
  return row;
}

function summary(text) {
  try {
    const o = JSON.parse(text);
    return h('ul', { class: 'plain' }, (o.changes || []).map((c) =>
      h('li', {}, `${label('policy.action', c.action)}: ${c.indicator || ''} (${label('cat', c.category)}${c.group ? `, ${c.group}` : ''})`)));
  } catch {
    return text.slice(0, 120);
  }
}

function resultCell(m) {
  if (m.result === 'applied') return [pill('applied', t('policy.result.applied')), m.result_detail ? h('div', { class: 'hint' }, m.result_detail) : null];
  if (m.result === 'refused') return [pill('refused', t('policy.result.refused')), m.result_detail ? h('div', { class: 'hint' }, m.result_detail) : null];
  // Not a verdict: the box could not store it yet and tries again; its next answer replaces this.
  if (m.result === 'failed') return [pill('pending', t('policy.result.failed')), h('div', { class: 'hint' }, `${t('policy.result.failed.why')} ${m.result_detail || ''}`)];
  return [pill('pending', t('policy.result.pending')), h('div', { class: 'hint' }, t('policy.result.pending.why'))];
}

async function messagesCard(box, card) {
  clear(card);
  card.append(h('h2', {}, t('policy.sent')));
  const d = await api('GET', `/console/api/boxes/${box}/policy`);
  const ms = d.messages || [];
  if (!ms.length) {
    card.append(h('p', { class: 'empty' }, t('policy.sent.none')));
    return ms;
  }
  card.append(h('table', {}, h('thead', {}, h('tr', {}, ['policy.col.id', 'policy.col.created', 'policy.col.sender', 'policy.col.signer', 'policy.col.changes', 'policy.col.result'].map((k) => h('th', {}, t(k))))),
    h('tbody', {}, ms.map((m) => h('tr', { 'data-message': m.id, 'data-result': m.result || 'pending' },
      h('td', {}, `#${m.id}`), h('td', {}, when(m.created)), h('td', {}, m.sender), h('td', {}, h('code', {}, m.signer)),
      h('td', {}, summary(m.change)), h('td', {}, resultCell(m)))))));
  return ms;
}

export async function policyPage(main, ctx) {
  const boxes = [...(await boxNames()).values()].filter((b) => !b.revoked);
  if (!ctx.live()) return;
  const want = Number(ctx.params.get('box')) || (boxes[0] && boxes[0].id);
  const boxSel = h('select', { id: 'policy-box', name: 'box' }, boxes.map((b) => h('option', { value: b.id, selected: b.id === want }, `${b.name} (${b.org}) #${b.id}`)));
  const delegate = h('input', { id: 'policy-delegate', name: 'delegate', required: true, maxlength: 48, pattern: '[a-z0-9._\\-]+',
    value: localStorage.getItem(DELEGATE_KEY) || '', autocomplete: 'off' });
  const keyMsg = h('div', { id: 'key-msg', class: 'keyinfo' });
  const showKey = () => {
    clear(keyMsg);
    keyMsg.append(signer
      ? h('p', { class: 'ok', role: 'status' }, t('key.loaded', { id: signer.id }), ' ', h('code', { id: 'key-id' }, signer.id))
      : h('p', { class: 'hint' }, t('key.none')));
  };
  const keyFile = h('input', { id: 'policy-key', type: 'file', accept: '.key,text/plain', onchange: async () => {
    const f = keyFile.files && keyFile.files[0];
    signer = null;
    clear(keyMsg);
    if (!f) return showKey();
    try {
      if (f.size > 4096) throw new KeyError('key.badlen');
      signer = await loadSecretKey(await f.text());
      showKey();
    } catch (e) {
      keyMsg.append(h('p', { class: 'error', role: 'alert' }, keyWords(e)));
    } finally {
      keyFile.value = '';   // the file's text is not kept by the form either
    }
  } });
  const list = h('div', { id: 'policy-changes' });
  list.append(changeRow(list));
  const msg = h('div', { id: 'policy-msg' });
  const sentCard = h('div', { class: 'card', id: 'policy-sent' });
  const signedPre = h('pre', { class: 'signed', id: 'signed-text', hidden: true });
  let poll = null;
  const form = h('form', { class: 'card', id: 'policy-form', onsubmit: async (ev) => {
    ev.preventDefault();
    clear(msg);
    if (!signer) { msg.append(h('p', { class: 'error', role: 'alert' }, t('key.none'))); return; }
    const name = delegate.value.trim();
    if (!/^[a-z0-9._-]{1,48}$/.test(name)) { msg.append(h('p', { class: 'error', role: 'alert' }, t('policy.delegate.bad'))); return; }
    const changes = [];
    for (const row of list.querySelectorAll('.change')) {
      const v = (n) => row.querySelector(`[name=${n}]`).value.trim();
      if (!v('indicator')) { msg.append(h('p', { class: 'error', role: 'alert' }, t('policy.indicator.missing'))); return; }
      const c = { action: v('action'), indicator: v('indicator').toLowerCase(), category: v('category') };
      if (v('group')) c.group = v('group');
      changes.push(c);
    }
    localStorage.setItem(DELEGATE_KEY, name);
    // The exact text signed is the text the box verifies: it is sent as a string.
    const text = JSON.stringify({ delegate: name, created: Math.floor(Date.now() / 1000), changes });
    try {
      const signature = await signText(signer.key, text);
      const r = await api('POST', `/v1/boxes/${boxSel.value}/policy`, { change: text, signer: signer.id, signature });
      signedPre.textContent = text;
      signedPre.hidden = false;
      msg.append(h('p', { class: 'ok', role: 'status', id: 'policy-ok' }, t('policy.relayed', { id: r.id })));
      await messagesCard(boxSel.value, sentCard);
      // Show the box's answer when it comes (the box reports it to the hub).
      clearInterval(poll);
      let n = 0;
      poll = setInterval(async () => {
        if (!ctx.live() || ++n > 30) { clearInterval(poll); return; }
        try {
          const ms = await messagesCard(boxSel.value, sentCard);
          const m = ms.find((x) => x.id === r.id);
          if (m && (m.result === 'applied' || m.result === 'refused')) clearInterval(poll);
        } catch { clearInterval(poll); }
      }, 2000);
    } catch (e) {
      msg.append(err(e));
    }
  } },
  h('h2', {}, t('policy.form')),
  h('label', { for: 'policy-box' }, h('span', {}, t('policy.box')), boxSel),
  h('label', { for: 'policy-delegate' }, h('span', {}, t('policy.delegate')), delegate),
  h('p', { class: 'hint' }, t('policy.delegate.hint')),
  h('label', { for: 'policy-key' }, h('span', {}, t('policy.key')), keyFile),
  h('p', { class: 'hint' }, t('policy.key.hint')),
  keyMsg,
  h('h2', {}, t('policy.changes')), list,
  h('div', { class: 'row' }, h('button', { type: 'button', id: 'policy-add', onclick: () => list.append(changeRow(list)) }, t('policy.add')),
    h('button', { type: 'submit', class: 'primary', id: 'policy-send' }, t('policy.send'))),
  msg, signedPre);
  boxSel.addEventListener('change', () => messagesCard(boxSel.value, sentCard).catch((e) => { clear(sentCard); sentCard.append(err(e)); }));
  showKey();
  main.append(h('h1', {}, t('policy.title')), h('p', { class: 'hint' }, t('policy.intro')));
  if (!boxes.length) {
    main.append(h('p', { class: 'empty' }, t('policy.noboxes')));
    return;
  }
  main.append(form, sentCard);
  await messagesCard(boxSel.value, sentCard);
}
