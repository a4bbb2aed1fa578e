// MSP console without a browser: every string key exists in ja.json and en.json (same keys,
// nothing empty or left in English), and the signing code agrees with libsodium: BLAKE2b
// against Python's hashlib, the key id against `otasukectl feed keygen`, and a signature
// that verifies with the public key file. Needs no root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { REPO } from './lib/office.mjs';

const dir = join(REPO, 'webui', 'console');
const ja = JSON.parse(readFileSync(join(dir, 'ja.json'), 'utf8'));
const en = JSON.parse(readFileSync(join(dir, 'en.json'), 'utf8'));
const CTL = resolve(REPO, process.env.BUILD || 'build', 'bin', 'otasukectl');

test('console: ja.json and en.json have the same keys', () => {
  assert.deepEqual(Object.keys(ja).sort(), Object.keys(en).sort());
});

test('console: no empty or untranslated-looking value', () => {
  for (const [k, v] of Object.entries(ja)) assert.ok(typeof v === 'string' && v.trim(), `ja ${k} empty`);
  for (const [k, v] of Object.entries(en)) assert.ok(typeof v === 'string' && v.trim(), `en ${k} empty`);
  const same = Object.keys(ja).filter((k) => ja[k] === en[k] && !/^(lang\.switch|policy\.indicator\.ph)$/.test(k) && /[a-z]{4}/.test(en[k]));
  assert.deepEqual(same, [], `untranslated in ja.json: ${same.join(', ')}`);
});

test('console: every literal key used in the code exists', () => {
  // the console's own code and webui/common/, which the build copies in
  const src = [dir, join(REPO, 'webui', 'common')].map((d) => readdirSync(d).filter((f) => f.endsWith('.js'))
    .map((f) => readFileSync(join(d, f), 'utf8')).join('\n')).join('\n');
  const used = new Set([...src.matchAll(/\bt\('([a-z0-9_.,-]+)'/g)].map((m) => m[1]));
  // messages for HTTP statuses (common/api.js and app.js's extra ones)
  for (const m of src.matchAll(/\d+: '(err\.[a-z]+)'/g)) used.add(m[1]);
  // table column keys, message keys handed to act(), key errors (KeyError('key.x'))
  for (const m of src.matchAll(/\[\s*'([a-z]+\.[a-z0-9_.-]+)'\s*,/g)) used.add(m[1]);
  for (const m of src.matchAll(/, '([a-z]+\.[a-z0-9_.-]+)'\)/g)) used.add(m[1]);
  for (const m of src.matchAll(/KeyError\('([a-z0-9_.-]+)'\)/g)) used.add(m[1]);
  for (const m of src.matchAll(/'(policy\.col\.[a-z]+)'/g)) used.add(m[1]);
  // keys built from a prefix: every value the code can produce must be translated
  for (const s of ['new', 'assigned', 'in_progress', 'waiting_owner', 'closed']) used.add(`status.${s}`);
  for (const s of ['open', 'closed', 'all']) used.add(`inbox.show.${s}`);
  for (const s of ['add_block', 'add_allow']) used.add(`policy.action.${s}`);
  for (const s of ['low', 'medium', 'high', 'critical']) used.add(`sev.${s}`);
  const missing = [...used].filter((k) => !(k in en) && !k.startsWith('otasuke.'));
  assert.deepEqual(missing, [], `keys used but not translated: ${missing.join(', ')}`);
  assert.ok(used.size > 120, `found only ${used.size} keys: the scan is broken`);
});

test('console signing: BLAKE2b matches hashlib, the key id matches libsodium, signatures verify', { skip: existsSync(CTL) ? false : `build ${CTL} first (make)` }, async () => {
  const { blake2b, hex, loadSecretKey, signText, KeyError } = await import(join(dir, 'sign.js'));
  // BLAKE2b on lengths around the 128-byte block edge, both digest sizes used.
  for (const n of [0, 1, 3, 32, 127, 128, 129, 255, 256, 300]) {
    for (const out of [8, 64]) {
      const data = new Uint8Array(n).map((_, i) => (i * 7 + 3) & 255);
      const py = execFileSync('python3', ['-c', `import hashlib;print(hashlib.blake2b(bytes((i*7+3)&255 for i in range(${n})),digest_size=${out}).hexdigest())`]).toString().trim();
      assert.equal(hex(blake2b(data, out)), py, `blake2b len ${n} out ${out}`);
    }
  }
  const tmp = mkdtempSync(join(tmpdir(), 'otasuke-console-sign-'));
  try {
    const kg = JSON.parse(execFileSync(CTL, ['feed', 'keygen', '-o', join(tmp, 'msp')]).toString());
    const secret = readFileSync(join(tmp, 'msp.key'), 'utf8');
    const k = await loadSecretKey(secret);
    assert.equal(k.id, kg.key_id);
    assert.equal(k.pub, readFileSync(join(tmp, 'msp.pub'), 'utf8').trim());
    const text = '{"delegate":"kumo-msp","created":1,"changes":[]}';
    const sig = await signText(k.key, text);
    const pub = await crypto.subtle.importKey('raw', Buffer.from(k.pub, 'base64'), { name: 'Ed25519' }, false, ['verify']);
    assert.ok(await crypto.subtle.verify({ name: 'Ed25519' }, pub, Buffer.from(sig, 'base64'), Buffer.from(text)));
    // Wrong files are refused with a reason the page can put in words.
    const code = async (t) => { try { await loadSecretKey(t); return 'accepted'; } catch (e) { assert.ok(e instanceof KeyError, String(e)); return e.code; } };
    assert.equal(await code(readFileSync(join(tmp, 'msp.pub'), 'utf8')), 'key.public');
    assert.equal(await code('not a key at all'), 'key.notbase64');
    assert.equal(await code(Buffer.alloc(48).toString('base64')), 'key.badlen');
    const raw = Buffer.from(secret.trim(), 'base64');
    raw[40] ^= 1;   // the public half no longer belongs to the seed
    assert.equal(await code(raw.toString('base64')), 'key.mismatch');
    assert.ok(!(k.key.extractable), 'the signing key cannot be exported from the page');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
