// Every string key the UIs use exists in both ja.json and en.json, the two files have the
// same keys, and no translation is empty. Runs without a browser or root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from './lib/office.mjs';

// The owner UI's code is its own directory plus webui/common/, which the build copies in.
const jsOf = (dir) => readdirSync(dir).filter((f) => f.endsWith('.js')).map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');

for (const ui of ['owner', 'blockpage']) {
  const dir = join(REPO, 'webui', ui);
  const ja = JSON.parse(readFileSync(join(dir, 'ja.json'), 'utf8'));
  const en = JSON.parse(readFileSync(join(dir, 'en.json'), 'utf8'));

  test(`${ui}: ja.json and en.json have the same keys`, () => {
    assert.deepEqual(Object.keys(ja).sort(), Object.keys(en).sort());
  });

  test(`${ui}: no empty or untranslated-looking value`, () => {
    for (const [k, v] of Object.entries(ja)) assert.ok(typeof v === 'string' && v.trim(), `ja ${k} empty`);
    for (const [k, v] of Object.entries(en)) assert.ok(typeof v === 'string' && v.trim(), `en ${k} empty`);
    // Japanese strings that are just the English text were forgotten (brand/lang names aside).
    const same = Object.keys(ja).filter((k) => ja[k] === en[k] && !/^(lang\.switch|cat\.c2)$/.test(k) && /[a-z]{4}/.test(en[k]));
    assert.deepEqual(same, [], `untranslated in ja.json: ${same.join(', ')}`);
  });

  test(`${ui}: every literal key used in the code exists`, () => {
    const src = jsOf(dir) + (ui === 'owner' ? jsOf(join(REPO, 'webui', 'common')) : '');
    const used = new Set([...src.matchAll(/\bt\('([a-z0-9_.,-]+)'/g)].map((m) => m[1]));
    // messages for HTTP statuses (common/api.js and app.js's extra ones)
    for (const m of src.matchAll(/\d+: '(err\.[a-z]+)'/g)) used.add(m[1]);
    // keys passed as table column names and message keys: 'page.thing' literals
    for (const m of src.matchAll(/\[\s*'([a-z]+\.[a-z0-9_.-]+)'\s*,/g)) used.add(m[1]);
    for (const m of src.matchAll(/(?:okKey|, )'([a-z]+\.[a-z0-9_.-]+)'\)/g)) used.add(m[1]);
    const missing = [...used].filter((k) => !(k in en) && !k.startsWith('otasuke.'));
    assert.deepEqual(missing, [], `keys used but not translated: ${missing.join(', ')}`);
    assert.ok(used.size > (ui === 'owner' ? 50 : 8), `found only ${used.size} keys: the scan is broken`);
  });
}
