// Owner UI shell: sign-in / first setup, navigation, language switch, page routing.
import { h, clear } from './dom.js';
import { t, lang, loadLang, pickLang, setLang } from './i18n.js';
import { api, setCsrf, ApiError } from './api.js';
import { pages } from './pages.js';
import { passwordForm } from './settings.js';

const root = document.getElementById('app');
const state = { user: null, role: null, mustChange: false };

export function errorBox(e) {
  const msg = e instanceof ApiError ? e.words() : `${t('err.server')} (${e.message || e})`;
  return h('p', { class: 'error', role: 'alert' }, msg);
}

function langSwitch() {
  const other = lang === 'ja' ? 'en' : 'ja';
  return h('button', { class: 'lang', type: 'button', id: 'lang-switch',
    onclick: async () => { setLang(other); await loadLang(other); render(); } }, t('lang.switch'));
}

function field(id, label, attrs) {
  return h('label', { for: id }, h('span', {}, label), h('input', { id, name: id, ...attrs }));
}

function setupForm() {
  const msg = h('div');
  const form = h('form', { class: 'card narrow', id: 'setup-form', onsubmit: async (ev) => {
    ev.preventDefault();
    clear(msg);
    const f = new FormData(form);
    if (f.get('password') !== f.get('password2')) {
      msg.append(h('p', { class: 'error', role: 'alert' }, t('setup.mismatch')));
      return;
    }
    try {
      const s = await api('POST', '/auth/setup', { code: f.get('code'), username: f.get('username'), password: f.get('password') });
      signedIn(s);
    } catch (e) { msg.append(errorBox(e)); }
  } },
  h('h1', {}, t('setup.title')),
  h('p', {}, t('setup.intro')),
  field('code', t('setup.code'), { required: true, autocomplete: 'off', placeholder: 'XXXX-XXXX-XXXX' }),
  field('username', t('login.username'), { required: true, autocomplete: 'username' }),
  field('password', t('setup.password'), { type: 'password', required: true, minlength: 10, autocomplete: 'new-password' }),
  field('password2', t('setup.password2'), { type: 'password', required: true, minlength: 10, autocomplete: 'new-password' }),
  h('p', { class: 'hint' }, t('setup.pwhint')),
  h('button', { type: 'submit', class: 'primary' }, t('setup.submit')), msg);
  return form;
}

function loginForm() {
  const msg = h('div');
  const form = h('form', { class: 'card narrow', id: 'login-form', onsubmit: async (ev) => {
    ev.preventDefault();
    clear(msg);
    const f = new FormData(form);
    try {
      signedIn(await api('POST', '/auth/login', { username: f.get('username'), password: f.get('password') }));
    } catch (e) { msg.append(errorBox(e)); }
  } },
  h('h1', {}, t('login.title')),
  field('username', t('login.username'), { required: true, autocomplete: 'username' }),
  field('password', t('login.password'), { type: 'password', required: true, autocomplete: 'current-password' }),
  h('button', { type: 'submit', class: 'primary' }, t('login.submit')), msg);
  return form;
}

function signedIn(s) {
  state.user = s.username;
  state.role = s.role;
  state.mustChange = !!s.must_change;
  setCsrf(s.csrf);
  if (!location.hash || location.hash === '#/login') location.hash = '#/';
  render();
}

async function signOut() {
  try { await api('POST', '/auth/logout'); } catch { /* the session may be gone already */ }
  state.user = null;
  setCsrf('');
  render();
}

const NAV = [['#/', 'nav.dashboard'], ['#/devices', 'nav.devices'], ['#/filtering', 'nav.filtering'],
  ['#/requests', 'nav.requests'], ['#/incidents', 'nav.incidents'], ['#/delegation', 'nav.delegation'],
  ['#/settings', 'nav.settings']];

// A render started later wins: earlier ones still waiting for the box stop quietly, so a
// quick double render (sign-out event + route change) never shows two pages.
let generation = 0;

async function render() {
  const gen = ++generation;
  document.title = t('app.title');
  clear(root);
  if (!state.user) {
    let st = null;
    try { st = await api('GET', '/auth/state'); } catch (e) {
      if (gen !== generation) return;
      root.append(h('header', { class: 'top' }, h('span', { class: 'brand' }, t('app.title')), langSwitch()), h('main', {}, errorBox(e)));
      return;
    }
    if (gen !== generation) return;
    root.append(h('header', { class: 'top' }, h('span', { class: 'brand' }, t('app.title')), langSwitch()),
      h('main', {}, st && st.setup_needed ? setupForm() : loginForm()));
    return;
  }
  if (state.mustChange) {
    // An owner made this account with a password they know: the box accepts nothing else
    // until the person picks their own.
    const main = h('main', { id: 'page', 'data-render': gen });
    root.append(h('header', { class: 'top' }, h('span', { class: 'brand' }, t('app.title')),
      h('span', { class: 'who' }, t('nav.signedin', { user: state.user, role: t(`role.${state.role}`) })),
      langSwitch(), h('button', { type: 'button', id: 'signout', onclick: signOut }, t('nav.signout'))), main);
    main.append(h('section', { class: 'card narrow', id: 'first-password' }, h('h1', {}, t('pw.first.title')),
      h('p', {}, t('pw.first.intro')), passwordForm('first-password-form', () => { state.mustChange = false; setTimeout(render, 800); })));
    main.dataset.ready = '1';
    return;
  }
  const route = (location.hash || '#/').split('?')[0];
  const page = pages[route] || pages['#/'];
  const main = h('main', { id: 'page', 'data-render': gen });
  root.append(
    h('header', { class: 'top' }, h('span', { class: 'brand' }, t('app.title')),
      h('nav', {}, NAV.map(([href, key]) => h('a', { href, class: href === route ? 'active' : '' }, t(key)))),
      h('span', { class: 'who' }, t('nav.signedin', { user: state.user, role: t(`role.${state.role}`) })),
      langSwitch(), h('button', { type: 'button', id: 'signout', onclick: signOut }, t('nav.signout'))),
    main);
  try {
    await page(main, { role: state.role, user: state.user, rerender: render });
  } catch (e) {
    if (gen !== generation) return;
    main.append(errorBox(e));
  }
  if (gen === generation) main.dataset.ready = '1';
}

window.addEventListener('hashchange', () => render());
window.addEventListener('otasuke-signed-out', () => { state.user = null; render(); });

(async () => {
  try {
    await loadLang(pickLang());
  } catch (e) {
    root.textContent = `Cannot load the language files: ${e.message}`;
    return;
  }
  try {
    const s = await api('GET', '/auth/session');
    state.user = s.username;
    state.role = s.role;
    state.mustChange = !!s.must_change;
    setCsrf(s.csrf);
  } catch { /* not signed in */ }
  render();
})();
