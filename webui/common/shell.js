// What the owner UI and the MSP console share around their pages: the top bar with the
// language switch, error and success messages in words, tables, the render loop (a
// render started later wins) and start-up (language, then the existing session).
import { h, clear } from './dom.js';
import { t, has, lang, loadLang, pickLang, setLang } from './i18n.js';
import { api, setCsrf, ApiError } from './api.js';

export function errorBox(e) {
  const msg = e instanceof ApiError ? e.words() : `${t('err.server')} (${e.message || e})`;
  return h('p', { class: 'error', role: 'alert' }, msg);
}

// Runs fn; shows success (okKey) or the error in `where`. Returns whether fn succeeded.
export async function act(where, fn, okKey) {
  clear(where);
  try {
    await fn();
    if (okKey) where.append(h('p', { class: 'ok', role: 'status' }, t(okKey)));
    return true;
  } catch (e) {
    where.append(errorBox(e));
    return false;
  }
}

// cols: [header, cell(row), td class]; a header is an i18n key, a ready node, or ''/null
// for none. rowAttrs(row) gives each <tr> its attributes.
export function table(cols, rows, empty, rowAttrs) {
  if (!rows.length) return h('p', { class: 'empty' }, t(empty || 'common.none'));
  const head = (c) => (typeof c === 'string' ? (c ? t(c) : '') : c);
  return h('table', {}, h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, head(c[0]))))),
    h('tbody', {}, rows.map((r) => h('tr', rowAttrs ? rowAttrs(r) : {}, cols.map((c) => h('td', c[2] ? { class: c[2] } : {}, c[1](r)))))));
}

// The translated name of a value (a category, a status), or the value itself when the
// language files have no name for it.
export const label = (prefix, v) => (has(`${prefix}.${v}`) ? t(`${prefix}.${v}`) : String(v));

// The bar at the top of every page. user: null before sign-in, else { who, signOut, nav,
// current } where nav is [[href, key]...] (none while only a password change is allowed)
// and current the href shown as active.
export function topBar(rerender, user) {
  const other = lang === 'ja' ? 'en' : 'ja';
  const langSwitch = h('button', { class: 'lang', type: 'button', id: 'lang-switch',
    onclick: async () => { setLang(other); await loadLang(other); rerender(); } }, t('lang.switch'));
  if (!user) return h('header', { class: 'top' }, h('span', { class: 'brand' }, t('app.title')), langSwitch);
  return h('header', { class: 'top' }, h('span', { class: 'brand' }, t('app.title')),
    user.nav ? h('nav', {}, user.nav.map(([href, key]) => h('a', { href, class: href === user.current ? 'active' : '' }, t(key)))) : null,
    h('span', { class: 'who' }, user.who), langSwitch,
    h('button', { type: 'button', id: 'signout', onclick: user.signOut }, t('nav.signout')));
}

// Wraps draw(gen, live) into a render function. A render started later wins: earlier ones
// still waiting for the server see live() turn false and stop quietly, so a quick double
// render (sign-out event + route change) never shows two pages.
export function renderer(root, draw) {
  let generation = 0;
  return async function render() {
    const gen = ++generation;
    document.title = t('app.title');
    clear(root);
    await draw(gen, () => gen === generation);
  };
}

// Fills main with page(main, ctx); a failure is shown in words in the page. main gets
// data-ready once done, which the browser tests wait for.
export async function fillPage(main, live, page, ctx) {
  try {
    await page(main, ctx);
  } catch (e) {
    if (!live()) return;
    main.append(errorBox(e));
  }
  if (live()) main.dataset.ready = '1';
}

// Signing in and out, the same in both UIs. take(answer) sets the UI's own state from a
// sign-in or session answer, or clears it (null).
export function sessionOf(take, logoutPath, render) {
  return {
    signedIn(s) {
      take(s);
      setCsrf(s.csrf);
      if (!location.hash || location.hash === '#/login') location.hash = '#/';
      render();
    },
    async signOut() {
      try { await api('POST', logoutPath); } catch { /* the session may be gone already */ }
      take(null);
      setCsrf('');
      render();
    },
  };
}

// Start-up: the language files first (nothing can be said without them), then the session
// the browser may already have (take(answer) takes it in), then the first render.
export async function boot(root, sessionPath, take, render) {
  window.addEventListener('hashchange', () => render());
  try {
    await loadLang(pickLang());
  } catch (e) {
    root.textContent = `Cannot load the language files: ${e.message}`;
    return;
  }
  try {
    const s = await api('GET', sessionPath);
    take(s);
    setCsrf(s.csrf);
  } catch { /* not signed in */ }
  render();
}
