// Calls webd's /api. The CSRF token comes from the sign-in answer or /api/auth/session and
// goes in X-CSRF-Token on every change; the session itself is an HttpOnly cookie.
import { t } from './i18n.js';

let csrf = '';
export function setCsrf(v) { csrf = v || ''; }

export class ApiError extends Error {
  constructor(status, detail, field) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
    this.field = field;
  }
  // What to show a person: a sentence in their language, then the box's own words.
  words() {
    const key = { 0: 'err.network', 400: 'err.bad', 401: 'err.signin', 403: 'err.forbidden',
      404: 'err.notfound', 409: 'err.conflict', 413: 'err.toolarge', 422: 'err.bad',
      429: 'err.toomany', 502: 'err.agent' }[this.status] || 'err.server';
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
    r = await fetch(`/api${path}`, opt);
  } catch (e) {
    throw new ApiError(0, String(e.message || e));
  }
  let data = null;
  const text = await r.text();
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!r.ok) {
    if (r.status === 401 && !path.startsWith('/auth/'))
      window.dispatchEvent(new CustomEvent('otasuke-signed-out'));
    throw new ApiError(r.status, data && data.error, data && data.field);
  }
  return data;
}
