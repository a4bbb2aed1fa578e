// MSP console shell: operator sign-in (token exchanged for an HttpOnly session cookie),
// navigation, language switch, page routing.
import { h, clear } from './common/dom.js';
import { t, langStorageKey } from './common/i18n.js';
import { api, apiSetup, setCsrf } from './common/api.js';
import { errorBox, topBar, renderer, fillPage, sessionOf, boot } from './common/shell.js';
import { route } from './pages.js';

// Its own language choice, apart from the owner UI's 'otasuke.lang'.
langStorageKey('otasuke.console.lang');
apiSetup({ prefix: '', isSignIn: (path) => /^\/console\/api\/(login|logout|session)$/.test(path),
  errorKeys: { 405: 'err.bad' } });

const root = document.getElementById('app');
const state = { operator: null, expired: false };

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

// The signed-in operator, or nobody (null).
function take(s) {
  state.operator = s ? s.operator : null;
  state.expired = false;
}
const { signedIn, signOut } = sessionOf(take, '/console/api/logout', () => render());

const NAV = [['#/', 'nav.fleet'], ['#/inbox', 'nav.inbox'], ['#/policy', 'nav.policy'], ['#/audit', 'nav.audit']];

const render = renderer(root, async (gen, live) => {
  if (!state.operator) {
    root.append(topBar(render, null), h('main', { id: 'page', 'data-render': gen, 'data-ready': '1' }, loginForm()));
    return;
  }
  const { page, params, nav } = route(location.hash || '#/');
  const main = h('main', { id: 'page', 'data-render': gen });
  root.append(topBar(render, { who: t('nav.signedin', { operator: state.operator }), signOut, nav: NAV, current: nav }), main);
  await fillPage(main, live, page, { operator: state.operator, params, rerender: render, live });
});

// The hub said 401 to a signed-in page: the session ended (idle, sign-out elsewhere, hub
// restart). Say so on the sign-in form rather than just showing it.
window.addEventListener('otasuke-signed-out', () => {
  if (state.operator) state.expired = true;
  state.operator = null;
  setCsrf('');
  render();
});

boot(root, '/console/api/session', take, render);
