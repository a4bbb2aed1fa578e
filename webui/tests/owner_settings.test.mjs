// The Settings page in the virtual office: a block list subscribed (and one that fails),
// backup and restore, notifications with a test that really sends, hub enrolment after
// comparing the certificate fingerprint, and the sharing opt-in.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { HUB, SHOTS, REPO, sh } from './lib/office.mjs';
import { ready, renderNo, rerendered } from './lib/page.mjs';
import { Office, test, useOffice, URL0 } from './lib/owner.mjs';

const office = new Office();
let page;
useOffice(office, (o) => ({ page } = o));

test('settings: subscribing to a block list downloads it and its names get blocked', async () => {
  writeFileSync(join(office.st, 'trackers.txt'), '# test list\nmalware.test\n');
  // pc is in "guests" (where the Devices page puts it in owner_devices.test.mjs).
  assert.equal((await office.agent('POST', '/v1/devices/seen', { mac: '02:00:00:00:00:10', ip: '192.0.2.10', hostname: 'reception-pc' })).status, 200);
  assert.equal((await office.agent('PUT', `/v1/devices/${encodeURIComponent('02:00:00:00:00:10')}`, { group: 'guests' })).status, 200);
  const g = await office.agent('PUT', '/v1/groups/guests', { categories: ['malware', 'phishing', 'c2', 'tracking'] });
  assert.equal(g.status, 200, JSON.stringify(g.body));
  assert.equal(await office.dig('malware.test'), '198.18.10.66');
  await page.goto(`${URL0}/#/settings`);
  await ready(page);
  await page.fill('#feed-form input[name=name]', 'trackers');
  await page.fill('#feed-form input[name=url]', `file://${join(office.st, 'trackers.txt')}`);
  await page.selectOption('#feed-form select[name=category]', 'tracking');
  const n = await renderNo(page);
  await page.click('#feed-form button');
  await page.waitForSelector('#feed-msg .hint');   // the progress line
  await rerendered(page, n);
  assert.match(await page.locator('tr', { hasText: 'trackers' }).innerText(), /\b1\b/);
  await office.waitFor('malware.test blocked', async () => (await office.dig('malware.test')) === 'NXDOMAIN', 10);
  await page.screenshot({ path: join(SHOTS, 'settings-feed-ja.png'), fullPage: true });
  // A list that cannot be fetched: its error in words, and the page counts it as stale.
  await page.fill('#feed-form input[name=name]', 'broken');
  await page.fill('#feed-form input[name=url]', `file://${join(office.st, 'no-such-list.txt')}`);
  const m = await renderNo(page);
  await page.click('#feed-form button');
  await rerendered(page, m);
  const row = await page.locator('tr', { hasText: 'broken' }).innerText();
  assert.match(row, /no-such-list|No such file|Couldn't read|could not/i, row);
  assert.match(await page.textContent('#stale-feeds'), /1 件/);
  await page.screenshot({ path: join(SHOTS, 'settings-feed-stale-ja.png') });
  const k = await renderNo(page);
  await page.click('button[data-unsubscribe="broken"]');
  await rerendered(page, k);
  assert.equal(await page.locator('#stale-feeds').count(), 0);
});

test('backup downloads and restores through the UI', async () => {
  await page.goto(`${URL0}/#/settings`);
  await ready(page);
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#backup')]);
  const file = join(office.st, 'ui-backup.json');
  await dl.saveAs(file);
  const doc = JSON.parse(readFileSync(file, 'utf8'));
  assert.ok(JSON.stringify(doc).includes('ads.test'), 'the backup holds the rules');
  // Change something, restore, and the change is gone.
  assert.equal((await office.agent('POST', '/v1/rules', { pattern: 'later.test', kind: 'block' })).status, 201);
  await page.setInputFiles('#restore-file', file);
  await page.click('#restore');
  await page.waitForSelector('#backup-msg .ok', { timeout: 15000 });
  const rules = (await office.agent('GET', '/v1/rules')).body.map((r) => r.pattern);
  assert.ok(!rules.includes('later.test'), rules.join(','));
  assert.ok(rules.includes('ads.test'), rules.join(','));
  // A damaged file is refused in words and nothing changes.
  writeFileSync(join(office.st, 'bad.json'), '{"not": "a backup"');
  await page.setInputFiles('#restore-file', join(office.st, 'bad.json'));
  await page.click('#restore');
  await page.waitForSelector('#backup-msg .error');
  assert.deepEqual((await office.agent('GET', '/v1/rules')).body.map((r) => r.pattern), rules);
});

test('notifications: saved, and the test button really sends an e-mail and a webhook', async () => {
  const dir = join(office.st, 'sinks');
  mkdirSync(dir, { recursive: true });
  await office.start('sinks', 'box', 'python3', join(REPO, 'webui/tests/lib/sinks.py'), dir, '--smtp', '127.0.0.1:2525', '--http', '127.0.0.1:8099');
  await office.waitFor('sinks listening', async () => {
    const ss = await office.exec('box', 'ss', '-ltn');
    return ss.includes('127.0.0.1:2525') && ss.includes('127.0.0.1:8099');
  });
  await page.goto(`${URL0}/#/settings`);
  await ready(page);
  // Before anything is configured the test says what is missing.
  await page.click('#notify-test');
  await page.waitForSelector('#notify-msg .error');
  assert.match(await page.textContent('#notify-msg'), /nothing to test yet/);
  await page.fill('#notify-form input[name=notify_webhook]', 'http://127.0.0.1:8099/hook');
  await page.fill('#notify-form input[name=notify_smtp]', 'smtp://127.0.0.1:2525');
  await page.fill('#notify-form input[name=notify_mail_from]', 'otasuke@office.test');
  await page.fill('#notify-form input[name=notify_mail_to]', 'boss@office.test');
  await page.selectOption('#notify-form select[name=notify_lang]', 'ja');
  await page.click('#notify-form button[type=submit]');
  await page.waitForSelector('#notify-msg .ok');
  await page.click('#notify-test');
  await page.waitForSelector('#notify-msg [data-channel="mail"]');
  assert.equal(await page.locator('#notify-msg .ok[data-channel]').count(), 2, await page.textContent('#notify-msg'));
  await page.screenshot({ path: join(SHOTS, 'settings-notify-ja.png') });
  const files = readdirSync(dir);
  const mail = JSON.parse(readFileSync(join(dir, files.find((f) => f.startsWith('mail.'))), 'utf8'));
  assert.equal(mail.subject, '[otasuke] テスト通知');
  assert.deepEqual(mail.to, ['<boss@office.test>']);
  assert.match(mail.body, /テスト/);
  assert.ok(mail.date && mail.message_id, JSON.stringify(mail));
  const hook = JSON.parse(readFileSync(join(dir, files.find((f) => f.startsWith('hook.'))), 'utf8'));
  assert.equal(hook.event, 'test');
  // The saved webhook is not shown back; a receiver that is down is reported in words.
  await page.reload();
  await ready(page);
  assert.equal(await page.inputValue('#notify-form input[name=notify_webhook]'), '');
  await page.fill('#notify-form input[name=notify_webhook]', 'http://127.0.0.1:8098/hook');
  await page.click('#notify-form button[type=submit]');
  await page.waitForSelector('#notify-msg .ok');
  await page.click('#notify-test');
  await page.waitForSelector('#notify-msg [data-channel="webhook"].error');
  assert.match(await page.textContent('#notify-msg [data-channel="webhook"]'), /Webhook通知.*(connect|接続)/i);
  assert.equal(await page.locator('#notify-msg [data-channel="mail"].ok').count(), 1);
  const audit = (await office.agent('GET', '/v1/audit?limit=5')).body.find((a) => a.what === 'incidents.settings');
  assert.equal(audit.account, 'boss');
  assert.ok(!JSON.stringify(audit).includes('8098'), 'the webhook address is not repeated in the audit log');
});

test('hub: the owner compares the hub\'s certificate fingerprint and enrols with a code', async () => {
  await office.startHub('acme-office');
  const code = (await office.hubAdmin('code', 'create', 'acme-office')).trim();
  const fp = sh('openssl', ['x509', '-in', office.hubCert, '-noout', '-fingerprint', '-sha256']).split('=')[1].trim();
  await page.goto(`${URL0}/#/settings`);
  await ready(page);
  assert.ok(await page.isVisible('#hub-none'));
  // A wrong address is refused in words.
  await page.fill('#hub-form input[name=url]', 'http://not-https.test');
  await page.click('#hub-probe');
  await page.waitForSelector('#hub-msg .error');
  // A "hub" that accepts the connection and never answers: the page shows progress,
  // the agent keeps answering everything else meanwhile, and the wait ends in words.
  await office.start('stall', 'hub', 'python3', '-c', `import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('${HUB}', 9443)); s.listen(8); time.sleep(600)`);
  await office.waitFor('stalling listener', async () => (await office.exec('hub', 'ss', '-ltn')).includes(`${HUB}:9443`));
  await page.fill('#hub-form input[name=url]', `https://${HUB}:9443`);
  await page.click('#hub-probe');
  await page.waitForSelector('#hub-msg .hint[role=status]');
  assert.equal((await office.agent('GET', '/v1/hub/job')).body.state, 'running');
  assert.equal((await office.agent('GET', '/v1/status')).status, 200);
  await page.waitForSelector('#hub-msg .error', { timeout: 20000 });
  assert.match(await page.textContent('#hub-msg'), /cannot reach.*9443/);
  await office.stop('stall');
  await page.fill('#hub-form input[name=url]', `https://${HUB}:8443`);
  await page.fill('#hub-form input[name=code]', 'WRONG-CODE-0000');
  await page.click('#hub-probe');
  await page.waitForSelector('#hub-probe-fp');
  assert.equal(await page.textContent('#hub-probe-fp'), fp);
  await page.screenshot({ path: join(SHOTS, 'settings-hub-check-ja.png') });
  await page.click('#hub-enroll');
  await page.waitForSelector('#hub-msg .error');
  assert.equal((await office.agent('GET', '/v1/hub/enrolment')).body.enrolled, false);
  await page.fill('#hub-form input[name=code]', code);
  const n = await renderNo(page);
  await page.click('#hub-enroll');
  await rerendered(page, n);
  await page.waitForSelector('#hub-info');
  const info = await page.textContent('#hub-info');
  assert.ok(info.includes(`https://${HUB}:8443`), info);
  assert.equal(await page.textContent('#hub-org'), 'acme-office');   // who took the box in
  assert.equal(await page.textContent('#hub-fp'), fp);
  await page.screenshot({ path: join(SHOTS, 'settings-hub-enrolled-ja.png') });
  // The hub's shared list is kept by the hub connection: no refresh or unsubscribe button.
  const hubRow = page.locator('#feeds tr', { hasText: 'ハブ経由で更新' });
  assert.equal(await hubRow.count(), 1);
  assert.equal(await page.locator('button[data-unsubscribe="hub"]').count(), 0);
  const enr = (await office.agent('GET', '/v1/hub/enrolment')).body;
  assert.equal(enr.enrolled, true);
  assert.equal(enr.following, true);
  assert.match(await office.hubAdmin('box', 'list'), new RegExp(`\\b${enr.box_id}\\b`));
  assert.equal((await office.agent('GET', '/v1/audit?limit=20')).body.find((a) => a.what === 'hub.enroll').account, 'boss');
});

test('sharing opt-in: the switch turns the agent\'s hub sharing on and off', async () => {
  await page.goto(`${URL0}/#/settings`);
  await ready(page);
  assert.equal(await page.isChecked('#sharing-switch'), false, 'sharing is off until the owner opts in');
  await page.click('#sharing-switch');
  await page.waitForSelector('#hub-msg .ok');
  assert.equal((await office.agent('GET', '/v1/hub')).body.sharing, true);
  await page.reload();
  await ready(page);
  assert.equal(await page.isChecked('#sharing-switch'), true);
  await page.click('#sharing-switch');
  await page.waitForSelector('#hub-msg .ok');
  assert.equal((await office.agent('GET', '/v1/hub')).body.sharing, false);
});
