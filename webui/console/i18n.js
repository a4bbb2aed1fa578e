// Strings live in ja.json / en.json only. t() never falls back silently: a missing key
// renders as ⟦key⟧ and is recorded, so the browser tests fail on any untranslated text.
let dict = {};
export let lang = 'en';
export const missing = new Set();
globalThis.__otasukeMissing = missing;
const KEY = 'otasuke.console.lang';

// Japanese for a Japanese browser unless the operator chose otherwise.
export function pickLang() {
  const saved = localStorage.getItem(KEY);
  if (saved === 'ja' || saved === 'en') return saved;
  const langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'en'];
  for (const l of langs) {
    const p = String(l).toLowerCase().slice(0, 2);
    if (p === 'ja' || p === 'en') return p;
  }
  return 'en';
}

export async function loadLang(l) {
  const r = await fetch(`${l}.json`, { cache: 'no-cache' });
  if (!r.ok) throw new Error(`language file ${l}.json: HTTP ${r.status}`);
  dict = await r.json();
  lang = l;
  document.documentElement.lang = l;
}

export function setLang(l) {
  localStorage.setItem(KEY, l);
}

export function t(key, vars) {
  let s = dict[key];
  if (typeof s !== 'string') {
    missing.add(key);
    return `⟦${key}⟧`;
  }
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  return s;
}

export function has(key) {
  return typeof dict[key] === 'string';
}
