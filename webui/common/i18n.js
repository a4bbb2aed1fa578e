// Strings live in each UI's ja.json / en.json only. t() never falls back silently: a
// missing key renders as ⟦key⟧ and is recorded, so the browser tests fail on any
// untranslated text.
//
// The language files sit next to the UI's index.html, one directory above this module
// (build/webui/<ui>/common/i18n.js), so they are found wherever the UI is served from:
// "/" for the owner UI, "/console/" for the MSP console, "/__otasuke/" for the block page
// (which picks its language itself, from the server's reading of Accept-Language).
let dict = {};
let storageKey = 'otasuke.lang';
export let lang = 'en';
export const missing = new Set();
globalThis.__otasukeMissing = missing;

// Where this UI remembers the person's choice (each UI keeps its own, so choosing English
// in the console does not change the owner UI of a box served from the same name).
export function langStorageKey(key) {
  storageKey = key;
}

export function pickLang() {
  const saved = localStorage.getItem(storageKey);
  if (saved === 'ja' || saved === 'en') return saved;
  const langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'en'];
  for (const l of langs) {
    const p = String(l).toLowerCase().slice(0, 2);
    if (p === 'ja' || p === 'en') return p;
  }
  return 'en';
}

export async function loadLang(l) {
  const r = await fetch(new URL(`../${l}.json`, import.meta.url), { cache: 'no-cache' });
  if (!r.ok) throw new Error(`language file ${l}.json: HTTP ${r.status}`);
  dict = await r.json();
  lang = l;
  document.documentElement.lang = l;
}

export function setLang(l) {
  localStorage.setItem(storageKey, l);
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
