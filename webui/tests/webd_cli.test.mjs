// otasuke-webd on loopback without the office: options and their errors, certificate
// generation and reuse, key permissions, security headers, static files and traversal,
// body limits, the HTTP listener's redirect and block page, and words when the agent is
// down. Needs no root; ports are picked from the pid to avoid clashes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, statSync, chmodSync, existsSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { REPO } from './lib/office.mjs';

const run = promisify(execFile);
const BUILD = process.env.BUILD || 'build';
const WEBD = resolve(REPO, BUILD, 'bin/otasuke-webd');
const UI = resolve(REPO, BUILD, 'webui');
const skip = !existsSync(WEBD) || !existsSync(join(UI, 'owner/index.html')) ? 'build otasuke-webd and the UI first (make)' : false;
const dir = mkdtempSync(join(tmpdir(), 'otasuke-webd-test-'));
const HTTPS = 20000 + (process.pid % 20000), HTTP = HTTPS + 1;
let proc, out = '';

async function webd(args) {
  try {
    const r = await run(WEBD, args);
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    return { code: e.code, out: String(e.stdout) + String(e.stderr) };
  }
}

async function curl(...args) {
  const { stdout } = await run('curl', ['-sk', '--max-time', '5', ...args]);
  return stdout;
}

const common = () => ['-f', '--listen', `127.0.0.1:${HTTPS}`, '--blockpage-listen', `127.0.0.1:${HTTP}`, '--ui', UI,
  '--agent', join(dir, 'no-agent.sock'), '--cert', join(dir, 'webd.crt'), '--key', join(dir, 'webd.key')];

before(async () => {
  if (skip) return;
  proc = spawn(WEBD, common(), { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { out += d; });
  for (let i = 0; i < 100 && !/serving/.test(out); i++) await new Promise((r) => setTimeout(r, 50));
});

after(() => {
  if (proc) proc.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

test('first start generates a 0600 key and prints the certificate fingerprint', { skip }, async () => {
  assert.match(out, /certificate SHA-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}/, out);
  assert.equal(statSync(join(dir, 'webd.key')).mode & 0o777, 0o600);
  const fp = /SHA-256 (\S+)/.exec(out)[1];
  const again = await webd(['-n', ...common().slice(1)]);
  assert.equal(again.code, 0, again.out);
  assert.ok(again.out.includes(fp), `the certificate is reused: ${again.out}`);
  const cert = await run('openssl', ['x509', '-in', join(dir, 'webd.crt'), '-noout', '-text']).then((r) => r.stdout).catch(() => '');
  if (cert) assert.match(cert, /IP Address:127\.0\.0\.1/);
});

test('bad options and files are refused with words', { skip }, async () => {
  let r = await webd(['-n', '--listen', 'nonsense', '--ui', UI]);
  assert.equal(r.code, 1);
  assert.match(r.out, /--listen nonsense: expected ADDR:PORT/);
  r = await webd(['-n', '--ui', join(dir, 'nowhere')]);
  assert.equal(r.code, 1);
  assert.match(r.out, /--ui .*nowhere.*missing/);
  chmodSync(join(dir, 'webd.key'), 0o644);
  r = await webd(['-n', ...common().slice(1)]);
  chmodSync(join(dir, 'webd.key'), 0o600);
  assert.equal(r.code, 1);
  assert.match(r.out, /readable by others.*chmod 600/);
  renameSync(join(dir, 'webd.key'), join(dir, 'webd.key.moved'));
  r = await webd(['-n', ...common().slice(1)]);
  renameSync(join(dir, 'webd.key.moved'), join(dir, 'webd.key'));
  assert.equal(r.code, 1);
  assert.match(r.out, /exists but .*webd\.key does not/);
  r = await webd(['--bogus']);
  assert.equal(r.code, 2);
  // otasuke.conf: the web section is used, a typo is named with its line.
  writeFileSync(join(dir, 'good.conf'), `web: {\n  listen = [ "127.0.0.1:${HTTPS}" ];\n  cert = "${join(dir, 'webd.crt')}";\n  key = "${join(dir, 'webd.key')}";\n  user = "";\n};\n`);
  r = await webd(['-n', '--config', join(dir, 'good.conf'), '--ui', UI]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /certificate SHA-256/);
  writeFileSync(join(dir, 'bad.conf'), 'web: {\n  lissen = [ "x" ];\n};\n');
  r = await webd(['-n', '--config', join(dir, 'bad.conf'), '--ui', UI]);
  assert.equal(r.code, 1);
  assert.match(r.out, /bad\.conf:2: unknown setting 'web\.lissen'/);
});

test('HTTPS: UI files with security headers, no traversal, no API without a session', { skip }, async () => {
  const head = await curl('-D', '-', '-o', '/dev/null', `https://127.0.0.1:${HTTPS}/`);
  assert.match(head, /^HTTP\/1\.1 200/);
  for (const h of [/content-security-policy: default-src 'self'; script-src 'self'.*frame-ancestors 'none'/i,
    /x-content-type-options: nosniff/i, /referrer-policy: no-referrer/i, /strict-transport-security: max-age=\d+/i])
    assert.match(head, h);
  assert.match(await curl(`https://127.0.0.1:${HTTPS}/app.js`), /import/);
  assert.match(await curl(`https://127.0.0.1:${HTTPS}/devices`), /<!doctype html>/i);   // UI route
  for (const p of ['/../../../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/..%2f..%2fetc/passwd', '/.hidden.js'])
    assert.doesNotMatch(await curl('--path-as-is', `https://127.0.0.1:${HTTPS}${p}`), /root:/, p);
  const code = await curl('-o', '/dev/null', '-w', '%{http_code}', '-X', 'POST', '-H', 'X-CSRF-Token: x', `https://127.0.0.1:${HTTPS}/api/rules`);
  assert.equal(code, '401');
  // Another name on the HTTPS listener is a blocked site (or DNS rebinding): block page, no UI, no API.
  const foreign = await curl('-H', 'Host: blocked.example', `https://127.0.0.1:${HTTPS}/`);
  assert.match(foreign, /__otasuke\/page\.js/);
  assert.doesNotMatch(await curl('-H', 'Host: rebind.example', `https://127.0.0.1:${HTTPS}/api/auth/state`), /agent is not answering|owner_exists/);
  assert.match(await curl('-H', 'Host: otasuke.local', `https://127.0.0.1:${HTTPS}/`), /\/app\.js/);
  // The agent is down: the answer says so in words.
  const state = await curl(`https://127.0.0.1:${HTTPS}/api/auth/state`);
  assert.match(state, /agent is not answering/);
  // A too-large body is refused, not buffered.
  const big = 'x'.repeat(70 * 1024);
  assert.equal(await curl('-o', '/dev/null', '-w', '%{http_code}', '-H', 'Content-Type: application/json', '--data-binary', big,
    `https://127.0.0.1:${HTTPS}/api/auth/login`), '413');
  // The large restore body is refused before it is read when nobody is signed in.
  writeFileSync(join(dir, 'big.json'), 'x'.repeat(2 << 20));
  assert.equal(await curl('-o', '/dev/null', '-w', '%{http_code}', '-H', 'Content-Type: application/json', '--data-binary',
    `@${join(dir, 'big.json')}`, `https://127.0.0.1:${HTTPS}/api/restore`), '401');
  // Another site's Origin is refused before anything else.
  assert.equal(await curl('-o', '/dev/null', '-w', '%{http_code}', '-H', 'Origin: https://evil.test', '-d', '{}',
    `https://127.0.0.1:${HTTPS}/api/auth/login`), '403');
});

test('HTTP: the box address redirects to HTTPS, any name gets the block page', { skip }, async () => {
  const redir = await curl('-D', '-', '-o', '/dev/null', `http://127.0.0.1:${HTTP}/settings`);
  assert.match(redir, /^HTTP\/1\.1 301/);
  assert.match(redir, new RegExp(`location: https://127\\.0\\.0\\.1:${HTTPS}/`, 'i'));
  const page = await curl('-H', 'Host: malware.test', `http://127.0.0.1:${HTTP}/any/path?x=1`);
  assert.match(page, /__otasuke\/page\.js/);
  const info = JSON.parse(await curl('-H', 'Host: Malware.Test', '-H', 'Accept-Language: ja,en;q=0.5', `http://127.0.0.1:${HTTP}/__otasuke/info`));
  assert.equal(info.host, 'malware.test');
  assert.equal(info.lang, 'ja');
  assert.equal(info.explain_error, 'agent unreachable');
  assert.equal(await curl('-o', '/dev/null', '-w', '%{http_code}', '-H', 'Host: bad host', `http://127.0.0.1:${HTTP}/`), '400');
  assert.equal(await curl('-o', '/dev/null', '-w', '%{http_code}', '-H', 'Host: a.test', '-X', 'DELETE', `http://127.0.0.1:${HTTP}/`), '405');
  assert.equal(await curl('-o', '/dev/null', '-w', '%{http_code}', '-H', 'Host: a.test', '-H', 'Content-Type: application/x-www-form-urlencoded',
    '-d', 'name=%zz', `http://127.0.0.1:${HTTP}/__otasuke/request`), '400');
  assert.equal(await curl('-o', '/dev/null', '-w', '%{http_code}', '-H', 'Host: a.test', '-H', 'Origin: http://evil.test', '-d', '{}',
    `http://127.0.0.1:${HTTP}/__otasuke/request`), '403');
  assert.equal(await curl('-o', '/dev/null', '-w', '%{http_code}', '-H', 'Host: a.test', '--data-binary', 'x'.repeat(5000),
    `http://127.0.0.1:${HTTP}/__otasuke/request`), '413');
});
