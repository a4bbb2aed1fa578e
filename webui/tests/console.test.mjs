// The MSP console (webui/console/ with webui/common/, as built into build/webui/console)
// served by a real otasuke-hubd (+ its mosquitto) on loopback, driven through Chromium:
// operator sign-in (wrong token refused, rate limit, token never kept by the page), fleet
// with an online, an offline and a stale box, the help inbox (assign, close), the incident
// view, remote-help sessions, policy changes signed in the page with the MSP's key and
// judged by a real otasuke-agent against its owner's grant (applied inside, refused
// outside, shown in the page), CSRF and XSS attempts, sign-out, and screenshots of every
// page in both languages. The other boxes are played with otasukectl (enrol) and curl
// with their box tokens (heartbeat, help request), as the agent sends them. No
// namespaces: everything listens on 127.0.0.1.
import { test as nodeTest, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { REPO, CHROMIUM, SHOTS } from './lib/office.mjs';
import { waitFor, ready, rerendered, noMissing as pageOk } from './lib/page.mjs';

const run = promisify(execFile);
const BIN = resolve(REPO, process.env.BUILD || 'build', 'bin');
const HUBD = join(BIN, 'otasuke-hubd');
const AGENT = join(BIN, 'otasuke-agent');
const CTL = join(BIN, 'otasukectl');
const CONSOLE = resolve(REPO, process.env.BUILD || 'build', 'webui', 'console');   // built: with common/
const XSS_NAME = '<img src=x onerror="window.__xss=1">';
const XSS_NOTE = '<script>window.__xss=2</script> printer acting up since Monday';

function skipReason() {
  if (process.getuid && process.getuid() !== 0) return 'needs root (the broker drops to user mosquitto)';
  for (const b of [HUBD, CTL, AGENT]) if (!existsSync(b)) return `build ${b} first (make)`;
  if (!existsSync(join(CONSOLE, 'common', 'api.js'))) return `build the console first (make webui: ${CONSOLE})`;
  for (const t of ['/usr/sbin/mosquitto', '/usr/bin/ssh-keygen']) if (!existsSync(t)) return `${t} missing (make deps)`;
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} missing (make deps installs chromium)`;
  if (!existsSync(join(REPO, 'webui/node_modules/playwright-core'))) return 'playwright-core missing (make deps)';
  return null;
}
const why = skipReason();
const test = (name, fn) => nodeTest(name, { skip: why || false }, fn);

const S = {};   // dir, url, port, token, boxes, key, hubd
let browser, ctx, page;

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); });
  });
}

const admin = async (...args) => (await run(HUBD, ['-d', S.dir, 'admin', ...args])).stdout.trim();
const ctl = async (box, ...args) => (await run(CTL, ['hub', ...args, '--state', join(S.dir, box)])).stdout;
// otasukectl against the agent of box1 (the owner's side: delegates and grants).
const owner = async (...args) => (await run(CTL, args, { env: { ...process.env, OTASUKE_AGENT_SOCKET: join(S.dir, 'agent', 'agent.sock') } })).stdout;
// The agent's own API as webd would call it for the owner: status and parsed body.
async function agentApi(method, path, body) {
  const args = ['-s', '-o', '-', '-w', '\n%{http_code}', '--unix-socket', join(S.dir, 'agent', 'agent.sock'), '-X', method, `http://agent${path}`];
  if (body !== undefined) args.push('-d', JSON.stringify(body));
  const { stdout } = await run('curl', args);
  const i = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(i + 1)), body: stdout.slice(0, i) ? JSON.parse(stdout.slice(0, i)) : null };
}

// A daemon of this test: output kept for the failure report and the sanitizer check.
function daemon(name, cmd, args) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  p.log = '';
  p.stdout.on('data', (d) => { p.log += d; });
  p.stderr.on('data', (d) => { p.log += d; });
  S.procs.push([name, p]);
  return p;
}
const logs = () => S.procs.map(([n, p]) => `# ${n} log:\n${p.log}`).join('\n');

// curl against the hub; returns { status, body, headers }.
async function curl(method, path, { token, body, headers = [], cookie, from } = {}) {
  const args = ['-s', '-D', '-', '--cacert', join(S.dir, 'tls/cert.pem'), '-X', method, `${S.url}${path}`];
  if (token) args.push('-H', `Authorization: Bearer ${token}`);
  if (cookie) args.push('-H', `Cookie: ${cookie}`);
  if (from) args.push('--interface', from);
  for (const h of headers) args.push('-H', h);
  if (body !== undefined) args.push('-H', 'Content-Type: application/json', '--data-binary', typeof body === 'string' ? body : JSON.stringify(body));
  const { stdout } = await run('curl', args);
  const i = stdout.indexOf('\r\n\r\n');
  const head = stdout.slice(0, i), text = stdout.slice(i + 4);
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = text; }
  return { status: Number(head.split(' ')[1]), headers: head.toLowerCase(), body: parsed };
}

async function enrol(box, org, name) {
  const code = await admin('code', 'create', org);
  await ctl(box, 'enroll', S.url, code, '--cacert', join(S.dir, 'tls/cert.pem'), '--name', name);
  return JSON.parse(readFileSync(join(S.dir, box, 'hub.json'), 'utf8'));
}

// Polls fn in the page with evaluate(): waitForFunction would need eval, which the
// console's CSP (rightly) forbids.
async function until(p, fn, secs = 15) {
  for (let i = 0; i < secs * 10; i++) {
    if (await p.evaluate(fn).catch(() => false)) return;
    await p.waitForTimeout(100);
  }
  throw new Error(`page condition not met in ${secs} s: ${fn}`);
}

async function go(p, hash) {
  const before = Number(await p.getAttribute('main', 'data-render').catch(() => 0)) || 0;
  await p.goto(`${S.url}/console/${hash}`);
  await ready(p);
  return before;
}
// Everything page.mjs checks, and no markup sent by a box ran.
async function noMissing(p, where) {
  await pageOk(p, where);
  assert.equal(await p.evaluate(() => window.__xss), undefined, `${where}: markup from a box ran`);
}

async function newPage(locale) {
  const c = await browser.newContext({ locale, ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  const p = await c.newPage();
  p.on('pageerror', (e) => { p.__errors = (p.__errors || []).concat(String(e)); });
  p.on('dialog', (d) => { p.__errors = (p.__errors || []).concat(`dialog: ${d.message()}`); d.dismiss(); });
  // Everything the page sends, to prove the secret key and the token never leave it.
  p.__sent = [];
  p.on('request', (r) => p.__sent.push(`${r.method()} ${r.url()} ${JSON.stringify(r.headers())} ${r.postData() || ''}`));
  return { c, p };
}

async function signIn(p, token) {
  await p.goto(`${S.url}/console/`);
  await p.waitForSelector('#login-form');
  await p.fill('#token', token);
  await p.click('#login-form button[type=submit]');
}

{
  before(async () => {
    if (why) return;
    S.procs = [];
    S.dir = mkdtempSync(join(tmpdir(), 'otasuke-console-'));
    chmodSync(S.dir, 0o711);   // the broker (user mosquitto) reads its files under it
    S.port = await freePort();
    S.url = `https://127.0.0.1:${S.port}`;
    await admin('tls', '--hosts', '127.0.0.1,localhost');
    await admin('org', 'add', 'sakura-dental');
    await admin('org', 'add', 'kita-bakery');
    S.token = await admin('operator', 'add', 'alice');
    S.keygen = JSON.parse((await run(CTL, ['feed', 'keygen', '-o', join(S.dir, 'msp')])).stdout);
    const [mqLocal, mqTls] = [await freePort(), await freePort()];
    try {
      daemon('mqtt', join(REPO, 'services/hub/mosquitto/start.sh'), [S.dir, '--local', `127.0.0.1:${mqLocal}`,
        '--tls', `127.0.0.1:${mqTls}`, '--hubd', HUBD]);
      S.hubd = daemon('hubd', HUBD, ['-f', '-d', S.dir, '-l', `127.0.0.1:${S.port}`, '--mqtt', `127.0.0.1:${mqLocal}`,
        '--public-mqtt', `127.0.0.1:${mqTls}`, '--public-mqtt-tls', '--console', CONSOLE]);
      await waitFor('hubd answering', async () => (await curl('GET', '/v1/health')).status === 200);
      await admin('indicator', 'add', 'bad-1.test', '--category', 'malware');
      // Three boxes: box1 runs a real agent (online, current feed, judges delegated
      // changes), box2 never reported (offline), box3 reported once with an old feed
      // (stale) and is named with markup.
      S.b1 = await enrol('box1', 'sakura-dental', 'sakura-reception');
      S.b2 = await enrol('box2', 'kita-bakery', 'kita-backroom');
      S.b3 = await enrol('box3', 'kita-bakery', XSS_NAME);
      await curl('POST', '/v1/heartbeat', { token: S.b3.token, body: { version: '0.8.0', feed_seq: 0, open_incidents: 0, counters: {} } });
      await waitFor('the broker knows box1', async () => readFileSync(join(S.dir, 'mosquitto/passwd'), 'utf8').includes(`${S.b1.mqtt_user}:`));
      // The agent's first heartbeat goes out before its first feed sync; syncing once
      // by hand first makes that heartbeat report the current seq (as after a restart).
      await ctl('box1', 'sync');
      const st = join(S.dir, 'agent');
      mkdirSync(st);
      daemon('agent', AGENT, ['-f', '--db', join(st, 'agent.db'), '--state-dir', st, '--socket', join(st, 'agent.sock'),
        '--dnsd-control', join(st, 'dnsd.ctl'), '--events', join(st, 'events.sock'), '--hub', join(S.dir, 'box1')]);
      await waitFor('agent answering', async () => existsSync(join(st, 'agent.sock')) && (await owner('status')).length > 0);
      // The owner of box1 granted this MSP ("kumo-msp", its public key) phishing blocks.
      await owner('delegate', 'add', 'kumo-msp', join(S.dir, 'msp.pub'));
      await owner('delegate', 'grant', 'kumo-msp', '--categories', 'phishing', '--groups', '*', '--actions', 'add_block');
      await waitFor('box1 online with the current feed', async () => {
        const b = (await curl('GET', '/v1/fleet', { token: S.token })).body.boxes.find((x) => x.id === S.b1.box_id);
        return b && b.online && b.feed_behind === 0;
      }, 30);
      // A help request the way the agent sends it (services/agent/help.c).
      const now = Math.floor(Date.now() / 1000);
      const help = {
        incident: { id: 7, kind: 'c2_ip', severity: 'high', state: 'open', title_en: 'A device contacted an address used to control malware',
          title_ja: 'マルウェアの指令サーバーとして知られる宛先への通信がありました', opened: now - 600, updated: now - 60, count: 4 },
        bundle: {
          timeline: [{ at: now - 600, who: 'detector', what: 'detected', detail: 'c2.bad-1.test queried by 192.0.2.10' },
            { at: now - 300, who: 'owner', what: 'help_sent', detail: XSS_NOTE }],
          device: { mac: '02:00:00:00:00:10', ipv4: '192.0.2.10', hostname: 'reception-pc', vendor: 'Example Corp', label: XSS_NAME, importance: 4, grp: 'staff', first_seen: now - 86400 * 30, last_seen: now - 60 },
          indicators: ['c2.bad-1.test'],
          counters: { detections: 4, confidence: 90, importance: 4 },
          quarantined: false,
        },
        note: XSS_NOTE,
      };
      const r = await curl('POST', '/v1/help', { token: S.b1.token, body: help });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      S.request = r.body.id;
      // The owner consented to remote help: the box certifies a fresh SSH key at the hub
      // (bastion keys only; no sshd is needed for the hub to sign and record it).
      await run(join(REPO, 'services/hub/bastion/bastion.sh'), ['init', S.dir, '127.0.0.1', String(await freePort()), 'root']);
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(S.dir, 'box1-help')]);
      const sess = await curl('POST', '/v1/help/session', { token: S.b1.token,
        body: { pubkey: readFileSync(join(S.dir, 'box1-help.pub'), 'utf8').trim(), minutes: 30 } });
      assert.equal(sess.status, 200, JSON.stringify(sess.body));
      S.sessionPort = sess.body.listen_port;
      writeFileSync(join(S.dir, 'not-a-key.pub'), readFileSync(join(S.dir, 'msp.pub')));
      browser = await (await import(join(REPO, 'webui/node_modules/playwright-core/index.mjs'))).chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
          '--disable-component-update', '--disable-sync'],
      });
      mkdirSync(SHOTS, { recursive: true });
      ({ c: ctx, p: page } = await newPage('ja-JP'));
    } catch (e) {
      console.error(logs());
      throw e;
    }
  });

  after(async () => {
    if (browser) await browser.close().catch(() => {});
    // Agent first, broker last; each waited for, so a sanitizer build reports into its log.
    for (const [, p] of [...(S.procs || [])].reverse()) {
      if (p.exitCode === null && p.signalCode === null) {
        p.kill('SIGTERM');
        await new Promise((r) => { const t = setTimeout(() => { p.kill('SIGKILL'); r(); }, 10000); p.on('exit', () => { clearTimeout(t); r(); }); });
      }
    }
    const bad = (S.procs || []).filter(([n, p]) => n !== 'mqtt' && /ERROR: (Address|Leak)Sanitizer|runtime error:/.test(p.log));
    if (S.dir) rmSync(S.dir, { recursive: true, force: true });
    assert.deepEqual(bad.map(([n]) => n), [], `sanitizer reports:\n${bad.map(([n, p]) => `# ${n}\n${p.log}`).join('\n')}`);
  });

  test('console files: strict CSP, security headers, content types, no traversal', async () => {
    const r = await curl('GET', '/console/');
    assert.equal(r.status, 200);
    assert.match(r.headers, /content-security-policy: default-src 'none'; script-src 'self';/);
    assert.doesNotMatch(r.headers, /unsafe-inline/);
    for (const h of ['x-content-type-options: nosniff', 'x-frame-options: deny', 'referrer-policy: no-referrer', 'strict-transport-security:', 'content-type: text/html'])
      assert.ok(r.headers.includes(h), h);
    assert.match((await curl('GET', '/console/app.js')).headers, /content-type: text\/javascript/);
    assert.match((await curl('GET', '/console/style.css')).headers, /content-type: text\/css/);
    assert.match((await curl('GET', '/console/ja.json')).headers, /content-type: application\/json/);
    // the redirect to the slash form
    const red = await curl('GET', '/console');
    assert.equal(red.status, 301);
    assert.match(red.headers, /location: \/console\//);
    // No way out of the console dir, whatever the spelling; no hidden files either.
    for (const p of ['/console/../tls/key.pem', '/console/%2e%2e/tls/key.pem', '/console/..%2ftls%2fkey.pem',
      '/console/%2e%2e%2f%2e%2e%2fetc%2fpasswd', '/console//etc/passwd', '/console/.hidden.js', '/console/tests/x.js']) {
      const { stdout } = await run('curl', ['-s', '--path-as-is', '-o', '/dev/null', '-w', '%{http_code}', '--cacert', join(S.dir, 'tls/cert.pem'), `${S.url}${p}`]);
      assert.equal(stdout, '404', p);
    }
  });

  test('a wrong token is refused in words and sets no session', async () => {
    await signIn(page, 'f'.repeat(64));
    await page.waitForSelector('#login-form .error');
    assert.match(await page.textContent('#login-form .error'), /トークン|token/);
    assert.equal((await ctx.cookies()).length, 0);
    await noMissing(page, 'login ja');
    await page.screenshot({ path: join(SHOTS, 'console-login-ja.png') });
  });

  test('failed sign-ins are rate limited per client address', async () => {
    // From 127.0.0.2 so the browser's own address (127.0.0.1) stays usable.
    const codes = [];
    for (let i = 0; i < 6; i++)
      codes.push((await curl('POST', '/console/api/login', { body: { token: 'a'.repeat(64) }, from: '127.0.0.2' })).status);
    assert.deepEqual(codes, [401, 401, 401, 401, 401, 429]);
    const r = await curl('POST', '/console/api/login', { body: { token: S.token }, from: '127.0.0.2' });
    assert.equal(r.status, 429, 'even the right token waits out the block');
    assert.match(r.body.error, /try again in \d+ seconds/);
    assert.match(r.headers, /retry-after: \d+/);
    // A form post from another site (not JSON) is refused before any token check.
    const f = await curl('POST', '/console/api/login', { body: undefined, headers: ['Content-Type: application/x-www-form-urlencoded'], from: '127.0.0.3' });
    assert.equal(f.status, 403);
  });

  test('the operator signs in; the token is kept nowhere the page can read', async () => {
    await signIn(page, S.token);
    await ready(page);
    await page.waitForSelector('#fleet-summary');
    const cookies = await ctx.cookies();
    const c = cookies.find((x) => x.name === '__Host-otasuke-console');
    assert.ok(c && c.httpOnly && c.secure && c.sameSite === 'Strict' && c.path === '/', JSON.stringify(cookies));
    assert.notEqual(c.value, S.token);
    const seen = await page.evaluate(() => JSON.stringify([document.cookie, { ...localStorage }, { ...sessionStorage }, document.body.innerHTML]));
    assert.ok(!seen.includes(S.token), 'the token is readable by the page');
    assert.equal(await page.locator('#token').count(), 0, 'the sign-in form is gone');
    // It was sent once, to the login endpoint, and never again.
    const withToken = page.__sent.filter((s) => s.includes(S.token));
    assert.equal(withToken.length, 1);
    assert.match(withToken[0], /^POST \S+\/console\/api\/login /);
    assert.match((await curl('GET', '/console/api/audit', { token: S.token })).body.audit[0].action, /console-login/);
  });

  test('the fleet shows online, offline and stale boxes; markup in a name stays text', async () => {
    await go(page, '#/');
    const row = (id) => page.locator(`tr[data-box="${id}"]`);
    assert.match(await row(S.b1.box_id).textContent(), /sakura-reception.*sakura-dental.*オンライン/);
    assert.match(await row(S.b2.box_id).getAttribute('class'), /offline/);
    assert.match(await row(S.b2.box_id).textContent(), /オフライン/);
    assert.match(await row(S.b3.box_id).getAttribute('class'), /feedstale/);
    assert.match(await row(S.b3.box_id).textContent(), /\d+ 件遅れ/);
    assert.doesNotMatch(await row(S.b1.box_id).getAttribute('class'), /offline|stale/);
    assert.equal(await row(S.b3.box_id).locator('td').first().textContent(), XSS_NAME);
    assert.equal(await page.locator('tbody img').count(), 0);
    assert.match(await page.textContent('#fleet-summary'), /3 台.*オンライン 2 台.*1 台/);
    await noMissing(page, 'fleet ja');
    await page.screenshot({ path: join(SHOTS, 'console-fleet-ja.png'), fullPage: true });
    // sort by name, descending, then filter
    await page.click('button.sort[data-sort="name"]');
    await until(page, () => location.hash.includes('order=desc'));
    await ready(page);
    await page.waitForSelector('button.sort[data-sort="name"][aria-sort="descending"]');
    const names = await page.locator('tbody tr td:first-child').allTextContents();
    assert.deepEqual(names, [...names].sort().reverse());
    await page.fill('#f-org', 'kita-bakery');
    await page.selectOption('#f-online', '0');
    await page.click('#fleet-filter button[type=submit]');
    await until(page, () => location.hash.includes('online=0'));
    await ready(page);
    await page.waitForSelector(`tr[data-box="${S.b2.box_id}"]`);
    assert.equal(await page.locator('tbody tr').count(), 1);
  });

  test('the owner of box1 calls for help through the real agent: it reaches the console\'s inbox', async () => {
    let r = await agentApi('POST', '/v1/incidents/settings', { hub_state: join(S.dir, 'box1') });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    r = await agentApi('POST', '/v1/incidents/report', { note: 'the reception PC shows a ransom note', device: '192.0.2.10', by: 'owner' });
    assert.ok(r.status < 300, JSON.stringify(r.body));
    const inc = r.body.id;
    r = await agentApi('POST', `/v1/incidents/${inc}/help`, { note: 'please call us, 03-0000-0000', by: 'owner' });
    assert.ok(r.status < 300, JSON.stringify(r.body));
    await go(page, '#/inbox');
    const row = page.locator('tr', { hasText: 'please call us' });
    assert.equal(await row.count(), 1);
    assert.match(await row.textContent(), /sakura-reception.*お客様からの報告.*新規/);
    await row.locator('a').first().click();
    await ready(page);
    await page.waitForSelector('#open-incident');
    await page.click('#open-incident');
    await ready(page);
    await page.waitForSelector('#incident-timeline');
    // The box's own bundle: its timeline names the report, the device is the one it knows.
    assert.match(await page.textContent('#incident-timeline'), /ransom note/);
    assert.match(await page.textContent('#incident-device'), /192\.0\.2\.10/);
    await noMissing(page, 'agent incident ja');
  });

  test('the help request is in the inbox, opens readable, is assigned and closed', async () => {
    await go(page, '#/inbox');
    const row = page.locator(`tr[data-request="${S.request}"]`);
    assert.match(await row.textContent(), /sakura-reception.*マルウェア指令サーバーとの通信.*高.*新規.*未割り当て/);
    assert.match(await row.textContent(), /<script>window.__xss=2<\/script>/);
    await noMissing(page, 'inbox ja');
    await page.screenshot({ path: join(SHOTS, 'console-inbox-ja.png'), fullPage: true });
    await row.locator('a').first().click();
    await ready(page);
    await page.waitForSelector('#request-summary');
    assert.equal(await page.textContent('#request-note'), XSS_NOTE);
    // The consented remote session is shown with its bastion port, still open.
    assert.match(await page.textContent('#sessions'), new RegExp(`中継ポート ${S.sessionPort}、30 分間.*接続中`));
    await noMissing(page, 'request ja');
    await page.screenshot({ path: join(SHOTS, 'console-request-ja.png'), fullPage: true });
    let n = Number(await page.getAttribute('main', 'data-render'));
    await page.click('#assign-me');
    await rerendered(page, n);
    assert.equal(await page.textContent('#request-assignee'), 'alice');
    assert.match(await page.textContent('#request-status'), /担当決定/);
    n = Number(await page.getAttribute('main', 'data-render'));
    await page.selectOption('#status-select', 'closed');
    await page.click('#status-save');
    await rerendered(page, n);
    assert.match(await page.textContent('#request-status'), /完了/);
    const api = (await curl('GET', `/v1/inbox/${S.request}`, { token: S.token })).body;
    assert.equal(api.assignee, 'alice');
    assert.equal(api.status, 'closed');
    // The incident view shows the evidence in words.
    await page.click('#open-incident');
    await ready(page);
    await page.waitForSelector('#incident-timeline');
    assert.match(await page.textContent('#incident-timeline'), /検知.*c2\.bad-1\.test queried by 192\.0\.2\.10/);
    assert.match(await page.textContent('#incident-device'), /ホスト名.*reception-pc.*MACアドレス.*02:00:00:00:00:10/);
    assert.ok((await page.textContent('#incident-device')).includes(XSS_NAME));
    assert.match(await page.textContent('#incident-indicators'), /c2\.bad-1\.test/);
    await noMissing(page, 'incident ja');
    await page.screenshot({ path: join(SHOTS, 'console-incident-ja.png'), fullPage: true });
  });

  test('policy changes signed in the page: the box applies one inside its grant, refuses one outside, the page shows which', async () => {
    await go(page, `#/policy?box=${S.b1.box_id}`);
    await page.waitForSelector('#policy-form');
    // A public key file is recognised as the wrong file, in words.
    await page.setInputFiles('#policy-key', join(S.dir, 'not-a-key.pub'));
    await page.waitForSelector('#key-msg .error');
    assert.match(await page.textContent('#key-msg .error'), /公開鍵/);
    await page.setInputFiles('#policy-key', join(S.dir, 'msp.key'));
    await page.waitForSelector('#key-id');
    assert.equal(await page.textContent('#key-id'), S.keygen.key_id, 'key id as libsodium computes it');
    await page.fill('#policy-delegate', 'kumo-msp');
    await page.fill('#policy-changes input[name=indicator]', 'Phish-Login.test');
    await page.selectOption('#policy-changes select[name=category]', 'phishing');
    await page.click('#policy-send');
    await page.waitForSelector('#policy-ok');
    const id = Number(/#(\d+)/.exec(await page.textContent('#policy-ok'))[1]);
    await page.waitForSelector(`tr[data-message="${id}"]`);
    assert.match(await page.textContent(`tr[data-message="${id}"]`), /alice.*phish-login\.test/);
    // box1's agent fetches it (MQTT notice), checks signature and grant, answers the hub;
    // the page, polling, shows the answer.
    await page.waitForSelector(`tr[data-message="${id}"][data-result="applied"]`, { timeout: 30000 });
    assert.match(await page.textContent(`tr[data-message="${id}"]`), /適用済み/);
    // Outside the grant (social is not granted): refused, and the page says why.
    await page.fill('#policy-changes input[name=indicator]', 'good.test');
    await page.selectOption('#policy-changes select[name=category]', 'social');
    await page.click('#policy-send');
    await until(page, () => /#(\d+)/.test(document.querySelector('#policy-ok')?.textContent || '') && document.querySelectorAll('#policy-sent tr[data-message]').length === 2);
    const id2 = Number(/#(\d+)/.exec(await page.textContent('#policy-ok'))[1]);
    assert.ok(id2 > id);
    await page.waitForSelector(`tr[data-message="${id2}"][data-result="refused"]`, { timeout: 30000 });
    assert.match(await page.textContent(`tr[data-message="${id2}"]`), /拒否.*outside every live grant of 'kumo-msp'/);
    // The box really did as it said: its owner's rules hold the first, not the second.
    const rules = await owner('explain', 'phish-login.test');
    assert.match(rules, /kumo-msp/);
    await noMissing(page, 'policy ja');
    await page.screenshot({ path: join(SHOTS, 'console-policy-ja.png'), fullPage: true });
    // The secret key never left the page: not its text, not its seed.
    const secret = readFileSync(join(S.dir, 'msp.key'), 'utf8').trim();
    const seed = Buffer.from(secret, 'base64').subarray(0, 32);
    for (const s of page.__sent) {
      assert.ok(!s.includes(secret) && !s.includes(seed.toString('base64')) && !s.includes(seed.toString('hex')), `secret key sent: ${s.slice(0, 80)}`);
    }
    // The hub's audit names the operator and the signer's key id.
    const audit = (await curl('GET', `/console/api/audit?box=${S.b1.box_id}`, { token: S.token })).body.audit;
    assert.ok(audit.some((a) => a.action === 'policy-relay' && a.actor === 'alice' && a.detail.includes(`signer ${S.keygen.key_id}`)), JSON.stringify(audit));
    // The box fetches it and the signature holds over the exact text with the MSP's
    // public key: what the agent's grant check starts from.
    const msgs = JSON.parse(await ctl('box1', 'policy'));
    const m = msgs.find((x) => x.id === id);
    assert.ok(m, JSON.stringify(msgs));
    assert.equal(m.signer, S.keygen.key_id);
    const change = JSON.parse(m.change);
    assert.equal(change.delegate, 'kumo-msp');
    assert.deepEqual(change.changes, [{ action: 'add_block', indicator: 'phish-login.test', category: 'phishing' }]);
    assert.ok(Math.abs(change.created - Date.now() / 1000) < 60);
    const pub = await crypto.subtle.importKey('raw', Buffer.from(readFileSync(join(S.dir, 'msp.pub'), 'utf8').trim(), 'base64'), { name: 'Ed25519' }, false, ['verify']);
    assert.ok(await crypto.subtle.verify({ name: 'Ed25519' }, pub, Buffer.from(m.signature, 'base64'), Buffer.from(m.change)), 'signature verifies');
    assert.ok(!await crypto.subtle.verify({ name: 'Ed25519' }, pub, Buffer.from(m.signature, 'base64'), Buffer.from(m.change.replace('phish', 'phisx'))), 'and only over that text');
    // A box that could not store a change yet answers "failed": the page says it retries,
    // with the box's reason, and the box's next answer replaces it (box2 answers by hand).
    const relayed = await curl('POST', `/v1/boxes/${S.b2.box_id}/policy`, { token: S.token,
      body: { change: '{"delegate":"kumo-msp"}', signer: S.keygen.key_id, signature: 'eA==' } });
    assert.equal(relayed.status, 200, JSON.stringify(relayed.body));
    const id3 = relayed.body.id;
    const busy = "the box's database could not start a transaction (database is locked)";
    let r = await curl('POST', `/v1/policy/${id3}/result`, { token: S.b2.token, body: { status: 'failed', detail: busy } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await go(page, `#/policy?box=${S.b2.box_id}`);
    await page.waitForSelector(`tr[data-message="${id3}"][data-result="failed"]`);
    assert.match(await page.textContent(`tr[data-message="${id3}"]`), /未保存・再試行中.*database is locked/);
    await noMissing(page, 'policy failed ja');
    r = await curl('POST', `/v1/policy/${id3}/result`, { token: S.b2.token, body: { status: 'refused', detail: 'body.created: missing' } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await go(page, `#/audit?box=${S.b2.box_id}`);
    await go(page, `#/policy?box=${S.b2.box_id}`);
    await page.waitForSelector(`tr[data-message="${id3}"][data-result="refused"]`);
    // The audit page shows it too.
    await go(page, `#/audit?box=${S.b1.box_id}`);
    await page.waitForSelector('tr[data-action="policy-relay"]');
    await noMissing(page, 'audit ja');
    await page.screenshot({ path: join(SHOTS, 'console-audit-ja.png'), fullPage: true });
  });

  test('changes without the CSRF token or from another site are refused', async () => {
    const r = await page.evaluate(async (id) => {
      const x = await fetch(`/v1/inbox/${id}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ status: 'new' }) });
      return { status: x.status, body: await x.json() };
    }, S.request);
    assert.equal(r.status, 403);
    assert.match(r.body.error, /CSRF/);
    const p = await page.evaluate(async (box) => (await fetch(`/v1/boxes/${box}/policy`, { method: 'POST', body: '{}' })).status, S.b1.box_id);
    assert.equal(p, 403);
    // With the right token but sent from another origin (the cookie is sent here by
    // hand; a browser would not even send it cross-site with SameSite=Strict).
    const cookie = (await ctx.cookies()).find((x) => x.name === '__Host-otasuke-console');
    const csrf = await page.evaluate(async () => (await (await fetch('/console/api/session')).json()).csrf);
    const other = await curl('POST', `/v1/inbox/${S.request}`, { cookie: `${cookie.name}=${cookie.value}`, body: { status: 'new' },
      headers: [`X-CSRF-Token: ${csrf}`, 'Origin: https://evil.test'] });
    assert.equal(other.status, 403);
    const wrong = await curl('POST', `/v1/inbox/${S.request}`, { cookie: `${cookie.name}=${cookie.value}`, body: { status: 'new' }, headers: [`X-CSRF-Token: ${'0'.repeat(64)}`] });
    assert.equal(wrong.status, 403);
    assert.equal((await curl('GET', `/v1/inbox/${S.request}`, { token: S.token })).body.status, 'closed', 'nothing changed');
    // The same request with the session's token works: the refusals were about CSRF.
    const ok = await curl('POST', `/v1/inbox/${S.request}`, { cookie: `${cookie.name}=${cookie.value}`, body: { status: 'in_progress' }, headers: [`X-CSRF-Token: ${csrf}`] });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    // Reads with the cookie need no CSRF token; the bearer token still works alone.
    assert.equal((await curl('GET', '/v1/fleet', { cookie: `${cookie.name}=${cookie.value}` })).status, 200);
    assert.equal((await curl('GET', '/v1/fleet', { token: S.token })).status, 200);
    assert.equal((await curl('GET', '/v1/fleet')).status, 401);
  });

  test('every page in English too, and the language switch', async () => {
    const { c, p } = await newPage('en-US');
    await signIn(p, S.token);
    await ready(p);
    await p.waitForSelector('#fleet-summary');
    assert.match(await p.textContent('#fleet-summary'), /3 boxes, 2 online, 1 with a stale feed/);
    for (const [name, hash] of [['fleet', '#/'], ['inbox', '#/inbox?show=all'], ['request', `#/request/${S.request}`],
      ['incident', `#/incident/${S.request}`], ['policy', `#/policy?box=${S.b1.box_id}`], ['audit', '#/audit']]) {
      await go(p, hash);
      await p.waitForTimeout(200);
      await noMissing(p, `${name} en`);
      await p.screenshot({ path: join(SHOTS, `console-${name}-en.png`), fullPage: true });
    }
    await p.click('#lang-switch');
    await until(p, () => document.documentElement.lang === 'ja');
    await ready(p);
    assert.match(await p.textContent('header.top nav'), /ボックス一覧/);
    await p.click('#signout');
    await p.waitForSelector('#login-form');
    await noMissing(p, 'login after sign-out');
    await p.click('#lang-switch');
    await until(p, () => document.documentElement.lang === 'en');
    await p.screenshot({ path: join(SHOTS, 'console-login-en.png') });
    await c.close();
  });

  test('a session ended on the hub sends the page back to sign-in, saying why', async () => {
    const { c, p } = await newPage('en-US');
    await signIn(p, S.token);
    await ready(p);
    await p.waitForSelector('#fleet-summary');
    // Sign out through the API from another tab of the same session: this page's next
    // request meets a dead session.
    const csrf = await p.evaluate(async () => (await (await fetch('/console/api/session')).json()).csrf);
    assert.equal(await p.evaluate(async (t) => (await fetch('/console/api/logout', { method: 'POST', headers: { 'X-CSRF-Token': t } })).status, csrf), 200);
    await p.click('#fleet-reload');
    await p.waitForSelector('#session-ended');
    assert.match(await p.textContent('#session-ended'), /session ended/);
    await noMissing(p, 'session ended');
    await c.close();
  });

  test('sign-out ends the session on the hub', async () => {
    const cookie = (await ctx.cookies()).find((x) => x.name === '__Host-otasuke-console');
    assert.equal((await curl('GET', '/v1/fleet', { cookie: `${cookie.name}=${cookie.value}` })).status, 200);
    await go(page, '#/');
    await page.click('#signout');
    await page.waitForSelector('#login-form');
    assert.equal((await ctx.cookies()).filter((x) => x.name === cookie.name).length, 0);
    assert.equal((await curl('GET', '/v1/fleet', { cookie: `${cookie.name}=${cookie.value}` })).status, 401, 'the old cookie is dead');
    assert.equal((await curl('GET', '/console/api/session', { cookie: `${cookie.name}=${cookie.value}` })).status, 401);
  });
}
