// Test rig for the browser tests: one virtual office (tests/lib/office.sh) with the real
// otasuke-agent, otasuke-dnsd and otasuke-webd in box, and Chromium (playwright-core,
// Debian's /usr/bin/chromium) running inside pc's namespace. Everything started here is
// tracked by the office and removed by down(), also after a failure.
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, existsSync, mkdtempSync, rmSync, readFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { waitFor } from './page.mjs';

const run = promisify(execFile);
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BIN = resolve(REPO, process.env.BUILD || 'build', 'bin');
const OFFICE = join(REPO, 'tests/lib/office.sh');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const SHOTS = resolve(REPO, process.env.BUILD || 'build', 'screenshots');
export const BOX = '192.0.2.1';
export const HUB = '198.18.1.10';

// Why the browser tests cannot run here, or null.
export function skipReason() {
  if (process.getuid && process.getuid() !== 0) return 'needs root (network namespaces)';
  for (const b of ['otasuke-agent', 'otasuke-dnsd', 'otasuke-webd', 'otasukectl', 'otasuke-hubd'])
    if (!existsSync(join(BIN, b))) return `build ${b} first (make)`;
  if (!existsSync(CHROMIUM)) return `${CHROMIUM} missing (make deps installs chromium)`;
  if (!existsSync(join(REPO, 'webui/node_modules/playwright-core'))) return 'playwright-core missing (make deps)';
  if (!existsSync(resolve(REPO, process.env.BUILD || 'build', 'webui/owner/index.html'))) return 'build the UI first (make webui)';
  return null;
}

export class Office {
  async up() {
    const env = { ...process.env, OFFICE_OWNER: String(process.pid) };
    delete env.OFFICE_ID;
    const { stdout } = await run(OFFICE, ['up', '--dns=none'], { env });
    this.id = stdout.trim().split('OFFICE_ID=').pop().trim();
    this.env = { ...env, OFFICE_ID: this.id };
    this.runDir = `/run/otasuke-office/${this.id}`;
    this.st = join(this.runDir, 'webui-test');
    mkdirSync(this.st, { recursive: true });
    this.sock = join(this.st, 'agent.sock');
    return this;
  }

  async down() {
    if (this.browser) await this.browser.close().catch(() => {});
    if (this.profile) rmSync(this.profile, { recursive: true, force: true });
    if (this.id) await run(OFFICE, ['down', this.id], { env: this.env }).catch(() => {});
  }

  async start(name, node, ...cmd) {
    await run(OFFICE, ['start', name, node, ...cmd], { env: this.env });
  }

  async stop(name) {
    await run(OFFICE, ['stop', name], { env: this.env });
  }

  log(name) {
    try { return readFileSync(join(this.runDir, 'logs', `${name}.log`), 'utf8'); } catch { return ''; }
  }

  // Runs a command in a node; returns stdout.
  async exec(node, ...cmd) {
    const { stdout } = await run('ip', ['netns', 'exec', `ota${this.id}-${node}`, ...cmd], { env: this.env });
    return stdout;
  }

  // otasukectl against this office's agent.
  async ctl(...args) {
    const { stdout } = await run(join(BIN, 'otasukectl'), args, { env: { ...this.env, OTASUKE_AGENT_SOCKET: this.sock } });
    return stdout;
  }

  // Raw agent API call (as root on the socket): status and parsed body.
  async agent(method, path, body) {
    const args = ['-s', '-o', '-', '-w', '\n%{http_code}', '--unix-socket', this.sock, '-X', method, `http://agent${path}`];
    if (body !== undefined) args.push('-d', JSON.stringify(body));
    const { stdout } = await run('curl', args);
    const i = stdout.lastIndexOf('\n');
    const text = stdout.slice(0, i);
    return { status: Number(stdout.slice(i + 1)), body: text ? JSON.parse(text) : null };
  }

  waitFor(what, fn, secs = 20) {
    return waitFor(what, fn, secs);
  }

  async startBox() {
    await this.startAgent();
    await this.waitFor('first compile', async () => existsSync(join(this.st, 'domains.set')) && existsSync(join(this.st, 'policy.set')));
    const st = this.st;
    await this.start('dnsd', 'box', join(BIN, 'otasuke-dnsd'), '-f', '--listen', `${BOX}:53`, '--upstream', '127.0.0.1:5335',
      '--domains', join(st, 'domains.set'), '--policy', join(st, 'policy.set'), '--control', join(st, 'dnsd.ctl'),
      '--events', join(st, 'events.sock'), '--allowed-every', '1');
    await this.waitFor('dnsd answering', async () => (await this.dig('good.test')) === '198.18.10.10');
    await this.start('webd', 'box', join(BIN, 'otasuke-webd'), '-f', '--listen', `${BOX}:443`, '--blockpage-listen', `${BOX}:80`,
      '--agent', this.sock, '--ui', resolve(REPO, process.env.BUILD || 'build', 'webui'), '--cert', join(st, 'webd.crt'),
      '--key', join(st, 'webd.key'));
    await this.waitFor('webd answering', async () => (await this.exec('pc', 'curl', '-sk', '-o', '/dev/null', '-w', '%{http_code}',
      `https://${BOX}/api/auth/state`)) === '200');
  }

  // The agent alone (also to restart it: stop('agent') first).
  async startAgent() {
    const st = this.st;
    await this.start('agent', 'box', join(BIN, 'otasuke-agent'), '-f', '--db', join(st, 'agent.db'), '--state-dir', st,
      '--socket', this.sock, '--dnsd-control', join(st, 'dnsd.ctl'), '--events', join(st, 'events.sock'));
    await this.waitFor('agent socket', async () => (await this.agent('GET', '/v1/status')).status === 200);
  }

  // A hub in the hub namespace (HTTPS only, no broker: enough for enrolment), with one
  // organisation. Its certificate is this.hubCert.
  async startHub(org) {
    this.hs = join(this.st, 'hub-state');
    mkdirSync(this.hs, { recursive: true });
    const hubd = join(BIN, 'otasuke-hubd');
    await run(hubd, ['-d', this.hs, 'admin', 'tls', '--hosts', HUB]);
    await run(hubd, ['-d', this.hs, 'admin', 'org', 'add', org]);
    this.hubCert = join(this.hs, 'tls', 'cert.pem');
    await this.start('hubd', 'hub', hubd, '-f', '-d', this.hs, '-l', `${HUB}:8443`);
    await this.waitFor('hub answering', async () => (await this.exec('box', 'curl', '-s', '-o', '/dev/null', '-w', '%{http_code}',
      '--cacert', this.hubCert, `https://${HUB}:8443/v1/health`)) === '200');
  }

  async hubAdmin(...args) {
    const { stdout } = await run(join(BIN, 'otasuke-hubd'), ['-d', this.hs, 'admin', ...args]);
    return stdout;
  }

  // pc's answer for name from the box: "NXDOMAIN" or the first address.
  async dig(name) {
    const out = await this.exec('pc', 'dig', '+time=1', '+tries=1', `@${BOX}`, name, 'A');
    if (/status: NXDOMAIN/.test(out)) return 'NXDOMAIN';
    const m = out.split('\n').find((l) => /\sIN\s+A\s/.test(l) && !l.startsWith(';'));
    return m ? m.trim().split(/\s+/).pop() : 'NOANSWER';
  }

  // Chromium inside pc: a wrapper makes playwright's launch go through `ip netns exec`,
  // which also gives it pc's /etc/resolv.conf (the box, 192.0.2.1): every name the
  // browser opens is resolved by the office's real dnsd, so what dnsd answers for a
  // blocked name (the block-page address, NXDOMAIN...) decides where the browser lands.
  // mapNames (host-resolver-rules) is for tests that need a name dnsd does not know.
  async browser(mapNames = []) {
    const { chromium } = await import(join(REPO, 'webui/node_modules/playwright-core/index.mjs'));
    // Chromium aborts a navigation with ERR_NETWORK_CHANGED when an address of its
    // namespace changes; pc's link-local IPv6 address is still "tentative" (duplicate
    // address detection, ~1 s) right after the office comes up. Start it once settled.
    await waitFor('pc\'s addresses settled (no tentative IPv6 address)', async () =>
      (await this.exec('pc', 'ip', '-6', 'addr', 'show', 'tentative')).trim() === '');
    this.profile = mkdtempSync(join(tmpdir(), 'otasuke-chromium-'));
    const wrapper = join(this.profile, 'chromium-in-pc');
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ota${this.id}-pc ${CHROMIUM} "$@"\n`);
    chmodSync(wrapper, 0o755);
    const rules = mapNames.map((n) => `MAP ${n} ${BOX}`).join(', ');
    this.browser = await chromium.launch({
      executablePath: wrapper,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        '--ignore-certificate-errors',   // playwright adds a fresh --user-data-dir itself
        ...(rules ? [`--host-resolver-rules=${rules}`] : [])],
    });
    mkdirSync(SHOTS, { recursive: true });
    return this.browser;
  }
}

export function keysOf(file) {
  return Object.keys(JSON.parse(readFileSync(join(REPO, file), 'utf8')));
}

export function sh(cmd, args) {
  return execFileSync(cmd, args, { encoding: 'utf8' });
}
