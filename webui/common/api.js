// Calls the server the page came from: webd's /api for the owner UI, the hub for the MSP
// console. The session is an HttpOnly cookie the page never sees; the CSRF token from the
// sign-in answer (or the session endpoint) goes in X-CSRF-Token on every change.
import { t } from './i18n.js';

let csrf = '';
export function setCsrf(v) { csrf = v || ''; }

// Set once by each UI's app.js before the first call.
const cfg = {
  prefix: '',              // put before every path: '/api' (owner UI), '' (console)
  isSignIn: () => false,   // paths whose 401 means "wrong password", not "session ended"
  errorKeys: {},           // extra status -> message key, on top of COMMON_KEYS
};
export function apiSetup(opts) { Object.assign(cfg, opts); }

const COMMON_KEYS = { 0: 'err.network', 400: 'err.bad', 401: 'err.signin', 403: 'err.forbidden',
  404: 'err.notfound', 409: 'err.conflict', 413: 'err.toolarge', 429: 'err.toomany' };

export class ApiError extends Error {
  constructor(status, detail, field) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
    this.field = field;
  }
  // What to show a person: a sentence in their language, then the server's own words.
  words() {
    const key = cfg.errorKeys[this.status] || COMMON_KEYS[this.status] || 'err.server';
    return this.detail ? `${t(key)} (${this.detail})` : t(key);
  }
}

export async function api(method, path, body) {
  const opt = { method, headers: {}, credentials: 'same-origin', cache: 'no-store' };
  if (method !== 'GET') opt.headers['X-CSRF-Token'] = csrf;
  if (body !== undefined) {
    opt.headers['Content-Type'] = 'application/json';
    opt.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(`${cfg.prefix}${path}`, opt);
  } catch (e) {
    throw new ApiError(0, String(e.message || e));
  }
  let data = null;
  const text = await r.text();
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!r.ok) {
    if (r.status === 401 && !cfg.isSignIn(path))
      window.dispatchEvent(new CustomEvent('otasuke-signed-out'));
    throw new ApiError(r.status, data && data.error, data && data.field);
  }
  return data;
}
