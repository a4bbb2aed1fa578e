// Owner UI shell: sign-in / first setup, navigation, page routing. The top bar, language
// switch, render loop and start-up are shared with the MSP console (common/shell.js).
import { h, clear } from './common/dom.js';
import { t, langStorageKey } from './common/i18n.js';
import { api, apiSetup } from './common/api.js';
import { errorBox, topBar, renderer, fillPage, sessionOf, boot } from './common/shell.js';
import { pages } from './pages.js';
import { passwordForm } from './settings.js';

langStorageKey('otasuke.lang');
apiSetup({ prefix: '/api', isSignIn: (path) => path.startsWith('/auth/'),
  errorKeys: { 422: 'err.bad', 502: 'err.agent' } });

const root = document.getElementById('app');
const state = { user: null, role: null, mustChange: false };

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

// The signed-in account, or nobody (null).
function take(s) {
  state.user = s ? s.username : null;
  state.role = s ? s.role : null;
  state.mustChange = !!(s && s.must_change);
}
const { signedIn, signOut } = sessionOf(take, '/auth/logout', () => render());

const NAV = [['#/', 'nav.dashboard'], ['#/devices', 'nav.devices'], ['#/filtering', 'nav.filtering'],
  ['#/requests', 'nav.requests'], ['#/incidents', 'nav.incidents'], ['#/delegation', 'nav.delegation'],
  ['#/settings', 'nav.settings']];

const render = renderer(root, async (gen, live) => {
  if (!state.user) {
    let st = null;
    try { st = await api('GET', '/auth/state'); } catch (e) {
      if (!live()) return;
      root.append(topBar(render, null), h('main', {}, errorBox(e)));
      return;
    }
    if (!live()) return;
    root.append(topBar(render, null), h('main', {}, st && st.setup_needed ? setupForm() : loginForm()));
    return;
  }
  const who = t('nav.signedin', { user: state.user, role: t(`role.${state.role}`) });
  if (state.mustChange) {
    // An owner made this account with a password they know: the box accepts nothing else
    // until the person picks their own.
    const main = h('main', { id: 'page', 'data-render': gen });
    root.append(topBar(render, { who, signOut }), main);
    main.append(h('section', { class: 'card narrow', id: 'first-password' }, h('h1', {}, t('pw.first.title')),
      h('p', {}, t('pw.first.intro')), passwordForm('first-password-form', () => { state.mustChange = false; setTimeout(render, 800); })));
    main.dataset.ready = '1';
    return;
  }
  const route = (location.hash || '#/').split('?')[0];
  const page = pages[route] || pages['#/'];
  const main = h('main', { id: 'page', 'data-render': gen });
  root.append(topBar(render, { who, signOut, nav: NAV, current: route }), main);
  await fillPage(main, live, page, { role: state.role, user: state.user, rerender: render });
});

window.addEventListener('otasuke-signed-out', () => { state.user = null; render(); });

boot(root, '/auth/session', take, render);
