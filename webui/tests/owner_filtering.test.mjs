// The Filtering and Requests pages in the virtual office: a category switch reaching pc's
// DNS, the block page reached through dnsd's real answer with its unblock request
// approved by the owner, a temporary unblock with its countdown, a schedule and explain.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { BOX, SHOTS } from './lib/office.mjs';
import { ready, renderNo, rerendered, noMissing } from './lib/page.mjs';
import { Office, test, useOffice, newPage, URL0 } from './lib/owner.mjs';

const office = new Office();
let page;
useOffice(office, (o) => ({ page } = o));

test('switching a category on changes pc\'s DNS answer', async () => {
  assert.equal(await office.dig('ads.test'), '198.18.10.80');
  await page.goto(`${URL0}/#/filtering`);
  await ready(page);
  const sw = '#group-staff input[data-cat="ads"]';
  assert.equal(await page.isChecked(sw), false);
  const t0 = Date.now();
  await page.click(sw);
  await page.waitForSelector('#group-staff .ok');
  await office.waitFor('ads.test blocked for pc', async () => (await office.dig('ads.test')) === 'NXDOMAIN', 10);
  console.log(`# category switch to NXDOMAIN at pc: ${Date.now() - t0} ms`);
  await page.reload();
  await ready(page);
  assert.equal(await page.isChecked(sw), true);
});

test('the block page, reached through dnsd\'s real answer, explains in the visitor\'s language and the request reaches the owner', async () => {
  // The owner makes blocked names answer with the block page; from then on dnsd's
  // answer for ads.test is the box, and the browser in pc goes there by itself.
  await page.goto(`${URL0}/#/filtering`);
  await ready(page);
  await page.selectOption('#group-staff select[data-answer]', 'blockpage');
  await page.waitForSelector('#group-staff .ok');
  await office.waitFor('dnsd answers ads.test with the block page', async () => (await office.dig('ads.test')) === BOX, 10);
  for (const [locale, lang, heading] of [['en-US', 'en', /blocked by your office filter/], ['ja-JP', 'ja', /ブロックされています/]]) {
    const { c, p } = await newPage(locale);
    await p.goto('http://ads.test/some/page');
    await p.waitForSelector('#blocked-host');
    assert.equal(await p.textContent('#blocked-host'), 'ads.test');
    assert.match(await p.textContent('h1'), heading);
    assert.match(await p.textContent('main'), lang === 'en' ? /Category: Ads/ : /分類：広告/);
    await noMissing(p, `block page ${lang}`);
    await p.screenshot({ path: join(SHOTS, `blockpage-${lang}.png`) });
    if (lang === 'en') {
      await p.fill('input[name=name]', '<img src=x onerror="window.__xss=1">Taro');
      await p.fill('textarea[name=reason]', '<script>window.__xss=1</script> need it for the campaign');
      await p.click('#request-form button[type=submit]');
      await p.waitForSelector('#sent');
    }
    await c.close();
  }
  // A visitor who reached the blocked name over HTTPS (certificate warning clicked
  // through) gets the block page too, never the owner UI.
  {
    const { c, p } = await newPage('en-US');
    await p.goto('https://ads.test/');
    await p.waitForSelector('#blocked-host');
    assert.equal(await p.locator('#login-form, #setup-form').count(), 0);
    await c.close();
  }
  const reqs = (await office.agent('GET', '/v1/unblock-requests')).body;
  assert.equal(reqs.length, 1);
  assert.equal(reqs[0].domain, 'ads.test');
  assert.equal(reqs[0].client, '192.0.2.10');
});

test('the owner approves the request and the name resolves again; markup stays text', async () => {
  await page.goto(`${URL0}/#/requests`);
  await ready(page);
  const row = page.locator('tr', { hasText: 'ads.test' });
  assert.match(await row.innerText(), /<img src=x onerror="window.__xss=1">Taro/);
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  assert.equal(await page.locator('main img').count(), 0);
  await page.screenshot({ path: join(SHOTS, 'requests-pending-ja.png') });
  let n = await renderNo(page);
  await row.locator('button[data-approve="0"]').click();
  await office.waitFor('ads.test resolves for pc', async () => (await office.dig('ads.test')) === '198.18.10.80', 10);
  await rerendered(page, n);
  assert.match(await page.locator('tr', { hasText: 'ads.test' }).innerText(), /許可済み/);
  const audit = (await office.agent('GET', '/v1/unblock-requests')).body[0];
  assert.equal(audit.decided_by, 'boss');
});

test('filtering: temporary unblock with a countdown, a schedule, explain', async () => {
  await page.goto(`${URL0}/#/filtering`);
  await ready(page);
  await page.fill('#unblock-form input[name=domain]', 'shop.test');
  await page.selectOption('#unblock-form select[name=minutes]', '15');
  let n = await renderNo(page);
  await page.click('#unblock-form button');
  await rerendered(page, n);
  await page.waitForSelector('tr:has-text("shop.test") .countdown');
  assert.match(await page.textContent('tr:has-text("shop.test") .countdown'), /1[45]分|1[45]:\d\d/);
  await page.selectOption('#schedule-form select[name=category]', 'social');
  n = await renderNo(page);
  await page.click('#schedule-form button');
  await rerendered(page, n);
  await page.waitForSelector('tr:has-text("SNS")');
  const sch = (await office.agent('GET', '/v1/schedules')).body;
  assert.equal(sch.length, 1);
  assert.equal(sch[0].category, 'social');
  await page.fill('#explain-form input[name=q]', 'ads.test');
  await page.click('#explain-form button');
  await page.waitForSelector('#explain-out li');
  assert.match(await page.textContent('#explain-out'), /広告|ads/);
  await page.screenshot({ path: join(SHOTS, 'filtering-used-ja.png'), fullPage: true });
});
