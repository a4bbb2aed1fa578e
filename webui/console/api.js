// Calls the hub. The session is an HttpOnly cookie set by /console/api/login (the operator
// token itself is never stored by the page); the CSRF token from the sign-in answer or
// /console/api/session goes in X-CSRF-Token on every change.
import { t } from './i18n.js';

let csrf = '';
export function setCsrf(v) { csrf = v || ''; }

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }
  // What to show a person: a sentence in their language, then the hub's own words.
  words() {
    const key = { 0: 'err.network', 400: 'err.bad', 401: 'err.signin', 403: 'err.forbidden',
      404: 'err.notfound', 405: 'err.bad', 409: 'err.conflict', 413: 'err.toolarge',
      429: 'err.toomany' }[this.status] || 'err.server';
    return this.detail ? `${t(key)} (${this.detail})` : t(key);
  }
}

// path: "/v1/..." (hub API) or "/console/api/..." (console endpoints).
export async function api(method, path, body) {
  const opt = { method, headers: {}, credentials: 'same-origin', cache: 'no-store' };
  if (method !== 'GET') opt.headers['X-CSRF-Token'] = csrf;
  if (body !== undefined) {
    opt.headers['Content-Type'] = 'application/json';
    opt.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, opt);
  } catch (e) {
    throw new ApiError(0, String(e.message || e));
  }
  let data = null;
  const text = await r.text();
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!r.ok) {
    if (r.status === 401 && !/^\/console\/api\/(login|logout|session)$/.test(path))
      window.dispatchEvent(new CustomEvent('otasuke-signed-out'));
    throw new ApiError(r.status, data && data.error);
  }
  return data;
}
