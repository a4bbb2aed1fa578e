// The Devices page in the virtual office: sorted by risk; rename, importance and group
// reach the agent.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { SHOTS } from './lib/office.mjs';
import { ready, renderNo, rerendered, noMissing } from './lib/page.mjs';
import { Office, test, useOffice, URL0 } from './lib/owner.mjs';

const office = new Office();
let page;
useOffice(office, (o) => ({ page } = o));

test('devices: sorted by risk, rename, importance and regroup reach the agent', async () => {
  for (const [mac, ip, host] of [['02:00:00:00:00:10', '192.0.2.10', 'reception-pc'], ['02:00:00:00:00:11', '192.0.2.11', 'printer']])
    assert.equal((await office.agent('POST', '/v1/devices/seen', { mac, ip, hostname: host })).status, 200);
  assert.equal((await office.agent('POST', '/v1/devices/event', { ip: '192.0.2.11', event: 'malware' })).status, 200);
  await page.goto(`${URL0}/#/devices`);
  await ready(page);
  const first = await page.locator('tbody tr').first().innerText();
  assert.match(first, /printer/, 'the risky device comes first');
  page.once('dialog', (d) => d.accept('受付のPC'));
  let n = await renderNo(page);
  await page.click('button[data-rename="02:00:00:00:00:10"]');
  await rerendered(page, n);
  await page.waitForSelector('text=受付のPC');
  n = await renderNo(page);
  await page.selectOption('select[data-importance="02:00:00:00:00:10"]', '5');
  await rerendered(page, n);
  await page.selectOption('select[data-group="02:00:00:00:00:10"]', 'guests');
  await page.waitForSelector('main .ok');
  await noMissing(page, 'devices');
  await page.screenshot({ path: join(SHOTS, 'devices-filled-ja.png'), fullPage: true });
  const d = (await office.agent('GET', '/v1/devices')).body.find((x) => x.mac === '02:00:00:00:00:10');
  assert.equal(d.label, '受付のPC');
  assert.equal(d.importance, 5);
  assert.equal(d.group, 'guests');
});
