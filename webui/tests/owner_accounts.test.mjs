// Accounts in the virtual office (Settings page): a viewer with a one-time password and
// the forced first change, password change ending the account's other sessions, the last
// owner kept, another owner added and removed, a forgotten password reset.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SHOTS } from './lib/office.mjs';
import { ready, noMissing } from './lib/page.mjs';
import { Office, test, useOffice, newPage, signIn, URL0, PASSWORD } from './lib/owner.mjs';

const office = new Office();
let page;
let bossPw = PASSWORD;   // the password test changes it
useOffice(office, (o) => ({ page } = o));

test('accounts: a viewer added with a one-time password must choose their own, then can look but not change', async () => {
  await page.goto(`${URL0}/#/settings`);
  await ready(page);
  await page.fill('#account-form input[name=username]', 'hanako');
  await page.selectOption('#account-form select[name=role]', 'viewer');
  await page.click('#account-form button[type=submit]');
  await page.waitForSelector('#account-otp');
  const otp = await page.textContent('#account-otp');
  assert.match(otp, /^[2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4}$/);
  assert.match(await page.locator('#accounts-table tr', { hasText: 'hanako' }).innerText(), /まだパスワードを決めていません/);
  await page.screenshot({ path: join(SHOTS, 'settings-account-added-ja.png') });
  const { c, p } = await newPage('en-US');
  await signIn(p, 'hanako', otp);
  await p.waitForSelector('#first-password-form');
  await noMissing(p, 'first password en');
  await p.screenshot({ path: join(SHOTS, 'first-password-en.png') });
  // Until then the box refuses everything else, reading included.
  const early = await p.evaluate(async () => [(await fetch('/api/status')).status, (await fetch('/api/rules')).status]);
  assert.deepEqual(early, [403, 403]);
  await p.click('#lang-switch');
  await p.waitForSelector('#first-password-form');
  await noMissing(p, 'first password ja');
  await p.screenshot({ path: join(SHOTS, 'first-password-ja.png') });
  await p.click('#lang-switch');
  await p.waitForSelector('#first-password-form');
  await p.fill('#first-password-form input[name=old_password]', otp);
  await p.fill('#first-password-form input[name=new_password]', 'reads-only-2026');
  await p.fill('#first-password-form input[name=new_password2]', 'reads-only-2026');
  await p.click('#first-password-form button[type=submit]');
  await p.waitForSelector('header.top nav');
  await ready(p);
  assert.equal((await office.agent('GET', '/v1/accounts')).body.find((x) => x.username === 'hanako').must_change, 0);
  await p.goto(`${URL0}/#/filtering`);
  await ready(p);
  assert.equal(await p.isDisabled('#group-staff input[data-cat="ads"]'), true);
  const st = await p.evaluate(async () => {
    const csrf = (await (await fetch('/api/auth/session')).json()).csrf;
    const put = await fetch('/api/groups/staff', { method: 'PUT', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf },
      body: JSON.stringify({ safesearch: true }) });
    const acc = await fetch('/api/accounts');
    return [put.status, acc.status];
  });
  assert.deepEqual(st, [403, 403]);
  // A viewer's Settings page shows no account list and no owner-only forms.
  await p.goto(`${URL0}/#/settings`);
  await ready(p);
  assert.equal(await p.locator('#accounts, #hub-form, #backup').count(), 0);
  await noMissing(p, 'settings as viewer');
  await c.close();
  // The one-time password no longer works.
  const { c: c3, p: p3 } = await newPage('en-US');
  await signIn(p3, 'hanako', otp);
  await p3.waitForSelector('#login-form .error');
  await c3.close();
});

test('password change: the old one is required, and the account\'s other sessions end', async () => {
  const { c: c2, p: p2 } = await newPage('en-US');
  await signIn(p2, 'boss', bossPw);
  await ready(p2);
  await page.goto(`${URL0}/#/settings`);
  await ready(page);
  const NEW = 'sora-no-shita-2027';
  await page.fill('#password-form input[name=old_password]', 'not-my-password');
  await page.fill('#password-form input[name=new_password]', NEW);
  await page.fill('#password-form input[name=new_password2]', NEW);
  await page.click('#password-form button[type=submit]');
  await page.waitForSelector('#password-form-msg .error');
  assert.match(await page.textContent('#password-form-msg'), /current password is wrong/);
  await page.fill('#password-form input[name=old_password]', bossPw);
  await page.fill('#password-form input[name=new_password]', NEW);
  await page.fill('#password-form input[name=new_password2]', NEW);
  await page.click('#password-form button[type=submit]');
  await page.waitForSelector('#password-form-msg .ok');
  bossPw = NEW;
  await page.screenshot({ path: join(SHOTS, 'settings-password-changed-ja.png') });
  // The other browser is signed out; this one goes on.
  await p2.goto(`${URL0}/#/devices`);
  await p2.waitForSelector('#login-form');
  await c2.close();
  await page.goto(`${URL0}/#/`);
  await ready(page);
  assert.ok(await page.isVisible('#call-help'));
  const audit = (await office.agent('GET', '/v1/audit?limit=5')).body.find((a) => a.what === 'account.password');
  assert.equal(audit.account, 'boss');
  assert.ok(!JSON.stringify(audit).includes(NEW), 'no password in the audit log');
});

test('accounts: the last owner cannot be removed; another owner is added and removed; a forgotten password is reset', async () => {
  await page.goto(`${URL0}/#/settings`);
  await ready(page);
  const last = await page.evaluate(async () => {
    const csrf = (await (await fetch('/api/auth/session')).json()).csrf;
    const r = await fetch('/api/accounts/boss', { method: 'DELETE', headers: { 'X-CSRF-Token': csrf } });
    return [r.status, (await r.json()).error];
  });
  assert.equal(last[0], 409);
  assert.match(last[1], /last owner/);
  await page.fill('#account-form input[name=username]', 'jiro');
  await page.selectOption('#account-form select[name=role]', 'owner');
  await page.fill('#account-form input[name=password]', 'given-by-boss-1');
  await page.click('#account-form button[type=submit]');
  await page.waitForSelector('#account-added');
  assert.equal(await page.locator('#account-otp').count(), 0, 'a given password is not echoed');
  page.once('dialog', (d) => d.accept());
  await page.click('button[data-remove="jiro"]');
  await page.waitForSelector('#account-msg .ok');
  await office.waitFor('jiro removed', async () => !(await office.agent('GET', '/v1/accounts')).body.some((x) => x.username === 'jiro'), 5);
  await page.waitForSelector('button[data-remove="jiro"]', { state: 'detached' });   // the list is redrawn
  const audit = (await office.agent('GET', '/v1/audit?limit=10')).body;
  assert.equal(audit.find((x) => x.what === 'account.remove').account, 'boss');
  // hanako forgot her password: the owner resets it; her open session ends and the
  // one-time password leads to the forced change again.
  const { c: hc, p: hp } = await newPage('ja-JP');
  await signIn(hp, 'hanako', 'reads-only-2026');
  await ready(hp);
  page.once('dialog', (d) => d.accept());
  await page.click('button[data-reset="hanako"]');
  await page.waitForSelector('#account-otp');
  const otp = await page.textContent('#account-otp');
  assert.match(otp, /^[2-9A-Z]{4}-[2-9A-Z]{4}-[2-9A-Z]{4}$/);
  await noMissing(page, 'account reset');
  await hp.goto(`${URL0}/#/devices`);
  await hp.waitForSelector('#login-form');
  await hp.fill('#username', 'hanako');
  await hp.fill('#password', otp);
  await hp.click('#login-form button[type=submit]');
  await hp.waitForSelector('#first-password-form');
  await hc.close();
  assert.equal((await office.agent('GET', '/v1/audit?limit=5')).body.find((x) => x.what === 'account.reset').account, 'boss');
});
