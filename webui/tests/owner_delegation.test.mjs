// The Delegation page in the virtual office: a scope granted to an MSP and revoked, each
// change audited with the account that made it, which a browser cannot forge.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SHOTS } from './lib/office.mjs';
import { ready, renderNo, rerendered } from './lib/page.mjs';
import { Office, test, useOffice, URL0 } from './lib/owner.mjs';

const office = new Office();
let page;
useOffice(office, (o) => ({ page } = o));

test('delegation: grant a scope, then revoke it', async () => {
  const pub = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';
  await page.goto(`${URL0}/#/delegation`);
  await ready(page);
  await page.fill('#delegate-form input[name=name]', 'msp-yamada');
  await page.fill('#delegate-form input[name=pubkey]', pub);
  let n = await renderNo(page);
  await page.click('#delegate-form button[type=submit]');
  await rerendered(page, n);
  await page.waitForSelector('#grant-form select[name=delegate] option', { state: 'attached' });
  await page.check('#grant-form input[name=categories][value=social]');
  await page.check('#grant-form input[name=groups][value=staff]');
  await page.check('#grant-form input[name=actions][value=add_block]');
  n = await renderNo(page);
  await page.click('#grant-form button[type=submit]');
  await rerendered(page, n);
  await page.waitForSelector('button[data-revoke]');
  let grants = (await office.agent('GET', '/v1/grants')).body;
  assert.equal(grants.length, 1);
  assert.deepEqual(grants[0].categories, ['social']);
  assert.equal(grants[0].revoked_at, 0);
  await page.screenshot({ path: join(SHOTS, 'delegation-granted-ja.png') });
  n = await renderNo(page);
  await page.click('button[data-revoke]');
  await office.waitFor('grant revoked', async () => (await office.agent('GET', '/v1/grants')).body[0].revoked_at > 0, 5);
  await rerendered(page, n);
  assert.equal(await page.locator('button[data-revoke]').count(), 0);
  const audit = (await office.agent('GET', '/v1/audit?limit=20')).body;
  const revoke = audit.find((a) => a.what === 'grant.revoke');
  assert.ok(revoke, audit.map((a) => a.what).join(','));
  // The change is the owner's, made by the account boss, and the page says so.
  assert.equal(revoke.who, 'owner');
  assert.equal(revoke.account, 'boss');
  assert.equal(audit.find((a) => a.what === 'grant.add').account, 'boss');
  const row = await page.locator('tr', { hasText: '権限の取り消し' }).first().innerText();
  assert.ok(row.includes('boss(オーナーのアカウント)'), row);
  // A change on the agent socket without webd (otasukectl, scripts) stays plain "owner".
  assert.equal((await office.agent('POST', '/v1/rules', { pattern: 'socket.test', kind: 'block' })).status, 201);
  const byCli = (await office.agent('GET', '/v1/audit?limit=1')).body[0];
  assert.equal(byCli.what, 'rule.add');
  assert.equal(byCli.account, null);
  await office.agent('DELETE', `/v1/rules/${(await office.agent('GET', '/v1/rules')).body.find((r) => r.pattern === 'socket.test').id}`);
  // A browser cannot name someone else: webd sets the account from the session only.
  const st = await page.evaluate(async () => {
    const csrf = (await (await fetch('/api/auth/session')).json()).csrf;
    const r = await fetch('/api/rules', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrf,
      'X-Otasuke-Account': 'mallory' }, body: JSON.stringify({ pattern: 'spoof.test', kind: 'block' }) });
    return r.status;
  });
  assert.equal(st, 201);
  const spoof = (await office.agent('GET', '/v1/audit?limit=1')).body[0];
  assert.equal(spoof.what, 'rule.add');
  assert.equal(spoof.account, 'boss');
  await office.agent('DELETE', `/v1/rules/${(await office.agent('GET', '/v1/rules')).body.find((r) => r.pattern === 'spoof.test').id}`);
});
