// The owner UI's front door in the virtual office, driven through Chromium in pc: first
// setup with the box's one-time code (a wrong one refused), sign-out and sign-in, CSRF and
// XSS attempts with the security headers, and the login throttle. The shared rig is
// lib/owner.mjs (one office per file); the other owner_*.test.mjs files cover the pages.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { BOX, SHOTS } from './lib/office.mjs';
import { ready, noMissing } from './lib/page.mjs';
import { Office, test, useOffice, newPage, URL0, PASSWORD } from './lib/owner.mjs';

const office = new Office();
let ctx, page;
useOffice(office, (o) => ({ ctx, page } = o), { owner: false });

test('a wrong setup code is refused, the right one creates the owner', async () => {
  const out = await office.ctl('setup-code');
  const code = /setup code: (\S+)/.exec(out)[1];
  assert.match(out, /certificate SHA-256: ([0-9A-F]{2}:){31}[0-9A-F]{2}/);
  const fp = /SHA-256: (\S+)/.exec(out)[1];
  assert.ok((await office.ctl('status')).includes(fp), 'otasukectl status shows the fingerprint');
  const wd = (await office.agent('GET', '/v1/webd')).body;
  assert.equal(wd.blockpage_v4, BOX, 'webd told the agent where the block page is');
  await page.goto(`${URL0}/`);
  await page.waitForSelector('#setup-form');
  await page.waitForTimeout(300);   // let any second render show up before counting
  await noMissing(page, 'setup');
  await page.screenshot({ path: join(SHOTS, 'setup-ja.png') });
  await page.fill('#code', 'AAAA-BBBB-CCCC');
  await page.fill('#username', 'boss');
  await page.fill('#password', PASSWORD);
  await page.fill('#password2', PASSWORD);
  await page.click('#setup-form button[type=submit]');
  await page.waitForSelector('#setup-form .error');
  assert.match(await page.textContent('#setup-form .error'), /入力|許可|code/);
  assert.equal((await office.agent('GET', '/v1/auth/state')).body.owner_exists, false);
  await page.fill('#code', code.toLowerCase());
  await page.click('#setup-form button[type=submit]');
  await ready(page);
  assert.match(await page.textContent('#protected'), /守られています|確認が必要です/);
  const cookies = await ctx.cookies();
  const c = cookies.find((x) => x.name === '__Host-otasuke');
  assert.ok(c && c.httpOnly && c.secure && c.sameSite === 'Strict', JSON.stringify(cookies));
  // The code is spent.
  await assert.rejects(office.ctl('setup-code'));
});

test('sign out, a wrong password is refused, the right one signs in', async () => {
  await page.click('#signout');
  await page.waitForSelector('#login-form');
  await page.waitForTimeout(300);
  await noMissing(page, 'login');
  await page.screenshot({ path: join(SHOTS, 'login-ja.png') });
  await page.fill('#username', 'boss');
  await page.fill('#password', 'not-the-password');
  await page.click('#login-form button[type=submit]');
  await page.waitForSelector('#login-form .error');
  await page.fill('#password', PASSWORD);
  await page.click('#login-form button[type=submit]');
  await ready(page);
  assert.ok(await page.isVisible('#call-help'));
});

test('CSRF: changes without the right token or from another site are refused', async () => {
  await page.goto(`${URL0}/#/`);
  await ready(page);
  const res = await page.evaluate(async () => {
    const post = async (headers) => (await fetch('/api/rules', { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify({ pattern: 'evil.test', kind: 'allow' }) })).status;
    return [await post({}), await post({ 'X-CSRF-Token': 'f'.repeat(64) })];
  });
  assert.deepEqual(res, [403, 403]);
  // A page on another origin (the block page host) posting with the owner's cookie.
  const other = await ctx.newPage();
  await other.goto('http://shop.test/');
  const cross = await other.evaluate(async (u) => {
    try {
      const r = await fetch(`${u}/api/rules`, { method: 'POST', credentials: 'include', mode: 'no-cors',
        headers: { 'Content-Type': 'text/plain' }, body: JSON.stringify({ pattern: 'evil.test', kind: 'allow' }) });
      return r.type;
    } catch (e) { return String(e); }
  }, URL0);
  await other.close();
  assert.ok(cross);
  const rules = (await office.agent('GET', '/v1/rules')).body.map((r) => r.pattern);
  assert.ok(!rules.includes('evil.test'), rules.join(','));
  // Security headers on the UI.
  const head = await office.exec('pc', 'curl', '-skI', `${URL0}/`);
  assert.match(head, /content-security-policy: default-src 'self'; script-src 'self'/i);
  assert.match(head, /frame-ancestors 'none'/);
  assert.match(head, /strict-transport-security: max-age=/i);
  assert.match(head, /x-content-type-options: nosniff/i);
  // Plain HTTP to the box's address redirects to HTTPS.
  const redir = await office.exec('pc', 'curl', '-sI', `http://${BOX}/`);
  assert.match(redir, /^location: https:\/\/192\.0\.2\.1\//im);
});

test('XSS: a rule or device name with markup is refused or shown as text', async () => {
  const r = await page.evaluate(async () => {
    const csrf = (await (await fetch('/api/auth/session')).json()).csrf;
    const res = await fetch('/api/rules', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify({ pattern: '<svg onload=alert(1)>.test', kind: 'block' }) });
    return [res.status, (await res.json()).error];
  });
  assert.equal(r[0], 400);
  await page.goto(`${URL0}/#/filtering`);
  await ready(page);
  await page.fill('#explain-form input[name=q]', '<img src=x onerror=window.__xss=1>');
  await page.click('#explain-form button');
  await page.waitForSelector('#explain-out .error');
  assert.equal(await page.evaluate(() => window.__xss), undefined);
});

test('login is throttled after repeated failures', async () => {
  let last;
  for (let i = 0; i < 6; i++) {
    last = await office.exec('pc', 'curl', '-sk', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'Content-Type: application/json',
      '-d', '{"username":"boss","password":"guess-guess"}', `${URL0}/api/auth/login`);
  }
  assert.equal(last, '429');
});
