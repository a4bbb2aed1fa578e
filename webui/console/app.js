// MSP console shell: operator sign-in (token exchanged for an HttpOnly session cookie),
// navigation, language switch, page routing.
import { h, clear } from './dom.js';
import { t, lang, loadLang, pickLang, setLang } from './i18n.js';
import { api, setCsrf, ApiError } from './api.js';
import { route } from './pages.js';

const root = document.getElementById('app');
const state = { operator: null, expired: false };

export function errorBox(e) {
  const msg = e instanceof ApiError ? e.words() : `${t('err.server')} (${e.message || e})`;
  return h('p', { class: 'error', role: 'alert' }, msg);
}

function langSwitch() {
  const other = lang === 'ja' ? 'en' : 'ja';
  return h('button', { class: 'lang', type: 'button', id: 'lang-switch',
    onclick: async () => { setLang(other); await loadLang(other); render(); } }, t('lang.switch'));
}

function loginForm() {
  const msg = h('div');
  const input = h('input', { id: 'token', name: 'token', type: 'password', required: true,
    autocomplete: 'off', spellcheck: 'false', minlength: 64, maxlength: 64 });
  const form = h('form', { class: 'card narrow', id: 'login-form', onsubmit: async (ev) => {
    ev.preventDefault();
    clear(msg);
    const token = input.value.trim();
    // The token leaves the page only in this one request; the field is emptied at once.
    input.value = '';
    try {
      signedIn(await api('POST', '/console/api/login', { token }));
    } catch (e) { msg.append(errorBox(e)); }
  } },
  h('h1', {}, t('login.title')),
  state.expired ? h('p', { class: 'error', role: 'alert', id: 'session-ended' }, t('login.expired')) : null,
  h('p', {}, t('login.intro')),
  h('label', { for: 'token' }, h('span', {}, t('login.token')), input),
  h('p', { class: 'hint' }, t('login.hint')),
  h('button', { type: 'submit', class: 'primary' }, t('login.submit')), msg);
  return form;
}

function signedIn(s) {
  state.operator = s.operator;
  state.expired = false;
  setCsrf(s.csrf);
  if (!location.hash || location.hash === '#/login') location.hash = '#/';
  render();
}

async function signOut() {
  try { await api('POST', '/console/api/logout'); } catch { /* the session may be gone already */ }
  state.operator = null;
  setCsrf('');
  render();
}

const NAV = [['#/', 'nav.fleet'], ['#/inbox', 'nav.inbox'], ['#/policy', 'nav.policy'], ['#/audit', 'nav.audit']];

// A render started later wins: earlier ones still waiting for the hub stop quietly.
let generation = 0;

async function render() {
  const gen = ++generation;
  document.title = t('app.title');
  clear(root);
  if (!state.operator) {
    root.append(h('header', { class: 'top' }, h('span', { class: 'brand' }, t('app.title')), langSwitch()),
      h('main', { id: 'page', 'data-render': gen, 'data-ready': '1' }, loginForm()));
    return;
  }
  const { page, params, nav } = route(location.hash || '#/');
  const main = h('main', { id: 'page', 'data-render': gen });
  root.append(
    h('header', { class: 'top' }, h('span', { class: 'brand' }, t('app.title')),
      h('nav', {}, NAV.map(([href, key]) => h('a', { href, class: href === nav ? 'active' : '' }, t(key)))),
      h('span', { class: 'who' }, t('nav.signedin', { operator: state.operator })),
      langSwitch(), h('button', { type: 'button', id: 'signout', onclick: signOut }, t('nav.signout'))),
    main);
  try {
    await page(main, { operator: state.operator, params, rerender: render, live: () => gen === generation });
  } catch (e) {
    if (gen !== generation) return;
    main.append(errorBox(e));
  }
  if (gen === generation) main.dataset.ready = '1';
}

window.addEventListener('hashchange', () => render());
// The hub said 401 to a signed-in page: the session ended (idle, sign-out elsewhere, hub
// restart). Say so on the sign-in form rather than just showing it.
window.addEventListener('otasuke-signed-out', () => {
  if (state.operator) state.expired = true;
  state.operator = null;
  setCsrf('');
  render();
});

(async () => {
  try {
    await loadLang(pickLang());
  } catch (e) {
    root.textContent = `Cannot load the language files: ${e.message}`;
    return;
  }
  try {
    const s = await api('GET', '/console/api/session');
    state.operator = s.operator;
    setCsrf(s.csrf);
  } catch { /* not signed in */ }
  render();
})();
