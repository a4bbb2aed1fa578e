// What the browser tests of the owner UI and the MSP console check on any page: both UIs
// mark <main> with data-render (a number that grows with each render) and data-ready
// (once the page is drawn), and record untranslated keys in globalThis.__otasukeMissing
// (webui/common/i18n.js).
import assert from 'node:assert/strict';

// Polls fn (true when done) every 100 ms for secs seconds; the last error, if any, is
// part of the failure.
export async function waitFor(what, fn, secs = 15) {
  const end = Date.now() + secs * 1000;
  let last;
  while (Date.now() < end) {
    try { if (await fn()) return; } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not happen in ${secs} s${last ? `: ${last.message}` : ''}`);
}

export async function ready(p) {
  await p.waitForSelector('main[data-ready="1"]', { timeout: 15000 });
}

// The render number of the page shown now; rerendered(p, n) waits for a later, finished
// render (actions re-render the page once their change is saved).
export async function renderNo(p) {
  return Number(await p.getAttribute('main', 'data-render'));
}
export async function rerendered(p, n) {
  for (let i = 0; i < 150; i++) {
    const cur = await p.getAttribute('main', 'data-render').catch(() => null);
    const done = await p.getAttribute('main', 'data-ready').catch(() => null);
    if (cur !== null && Number(cur) > n && done === '1') return;
    await p.waitForTimeout(100);
  }
  throw new Error('the page did not re-render after the change');
}

// No ⟦missing⟧ key anywhere on the page, none recorded by t(), no value the page failed
// to render, no script error, and the page drawn once.
export async function noMissing(p, where) {
  const missing = await p.evaluate(() => [...(globalThis.__otasukeMissing || [])]);
  const text = await p.evaluate(() => document.body.innerText);
  assert.deepEqual(missing, [], `${where}: untranslated keys ${missing.join(', ')}`);
  assert.ok(!text.includes('⟦'), `${where}: placeholder text on the page`);
  assert.doesNotMatch(text, /\bundefined\b|\bNaN\b|^null$/m, `${where}: a value the page failed to render`);
  assert.deepEqual(p.__errors || [], [], `${where}: script errors`);
  assert.ok(await p.locator('header.top').count() <= 1, `${where}: the page is drawn once`);
}
