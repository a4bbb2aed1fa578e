// Signing a delegated policy change in the browser. The MSP's Ed25519 secret key is read
// from a local file into this page's memory, turned into a non-extractable WebCrypto key,
// and the raw bytes are wiped; nothing of it is ever sent anywhere (the hub only gets
// the signed text, the signature and the key id).
//
// The key id the box expects is hex(BLAKE2b-64(public key)) (libsodium's
// crypto_generichash with an 8-byte output, as feed_key_id() computes it). WebCrypto has
// no BLAKE2b, so it is written out here after RFC 7693; BigInt keeps it short, and speed
// does not matter for a 32-byte input.

const M64 = (1n << 64n) - 1n;
const IV = [0x6a09e667f3bcc908n, 0xbb67ae8584caa73bn, 0x3c6ef372fe94f82bn, 0xa54ff53a5f1d36f1n,
  0x510e527fade682d1n, 0x9b05688c2b3e6c1fn, 0x1f83d9abfb41bd6bn, 0x5be0cd19137e2179n];
const SIGMA = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
  [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
  [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
  [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
  [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
  [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
  [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
  [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
  [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
  [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
];

const rotr = (x, n) => ((x >> BigInt(n)) | (x << BigInt(64 - n))) & M64;

function compress(hs, block, t, last) {
  const m = [];
  for (let i = 0; i < 16; i++) {
    let w = 0n;
    for (let b = 7; b >= 0; b--) w = (w << 8n) | BigInt(block[i * 8 + b]);
    m.push(w);
  }
  const v = [...hs, ...IV];
  v[12] ^= t & M64;
  v[13] ^= (t >> 64n) & M64;
  if (last) v[14] ^= M64;
  const g = (a, b, c, d, x, y) => {
    v[a] = (v[a] + v[b] + x) & M64; v[d] = rotr(v[d] ^ v[a], 32);
    v[c] = (v[c] + v[d]) & M64; v[b] = rotr(v[b] ^ v[c], 24);
    v[a] = (v[a] + v[b] + y) & M64; v[d] = rotr(v[d] ^ v[a], 16);
    v[c] = (v[c] + v[d]) & M64; v[b] = rotr(v[b] ^ v[c], 63);
  };
  for (let r = 0; r < 12; r++) {
    const s = SIGMA[r % 10];
    g(0, 4, 8, 12, m[s[0]], m[s[1]]); g(1, 5, 9, 13, m[s[2]], m[s[3]]);
    g(2, 6, 10, 14, m[s[4]], m[s[5]]); g(3, 7, 11, 15, m[s[6]], m[s[7]]);
    g(0, 5, 10, 15, m[s[8]], m[s[9]]); g(1, 6, 11, 12, m[s[10]], m[s[11]]);
    g(2, 7, 8, 13, m[s[12]], m[s[13]]); g(3, 4, 9, 14, m[s[14]], m[s[15]]);
  }
  for (let i = 0; i < 8; i++) hs[i] ^= v[i] ^ v[i + 8];
}

// Unkeyed BLAKE2b of data (Uint8Array) with an outlen-byte digest (1..64).
export function blake2b(data, outlen) {
  const hs = [...IV];
  hs[0] ^= 0x01010000n ^ BigInt(outlen);
  let t = 0n, off = 0;
  // Every block but the last full one; the last (possibly empty) is padded with zeros.
  while (data.length - off > 128) {
    t += 128n;
    compress(hs, data.subarray(off, off + 128), t, false);
    off += 128;
  }
  const last = new Uint8Array(128);
  last.set(data.subarray(off));
  t += BigInt(data.length - off);
  compress(hs, last, t, true);
  const out = new Uint8Array(outlen);
  for (let i = 0; i < outlen; i++) out[i] = Number((hs[i >> 3] >> BigInt(8 * (i & 7))) & 0xffn);
  return out;
}

export const hex = (b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join('');

export function b64(bytes) {
  let s = '';
  for (const x of bytes) s += String.fromCharCode(x);
  return btoa(s);
}

function unb64(text) {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

const b64url = (s) => unb64(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));

export class KeyError extends Error {
  constructor(code) { super(code); this.code = code; }   // code: an i18n key under key.*
}

// Key id as the box computes it: 16 hex digits.
export const keyId = (pk) => hex(blake2b(pk, 8));

// Turns the text of a secret key file (`otasukectl feed keygen` writes one base64 line of
// libsodium's 64-byte secret key: seed then public key) into a signing key. Checks that
// the public half matches the seed, so a damaged or mixed-up file is refused before use.
// Returns { key (non-extractable CryptoKey), pk (Uint8Array), id, pub (base64) }.
export async function loadSecretKey(text) {
  if (!globalThis.crypto || !crypto.subtle) throw new KeyError('key.nocrypto');
  const line = String(text).trim();
  if (!line || /\s/.test(line) || !/^[A-Za-z0-9+/]+=*$/.test(line)) throw new KeyError('key.notbase64');
  let raw;
  try { raw = unb64(line); } catch { throw new KeyError('key.notbase64'); }
  if (raw.length === 32) throw new KeyError('key.public');
  if (raw.length !== 64) throw new KeyError('key.badlen');
  // PKCS#8 wrapping of an Ed25519 seed (RFC 8410): fixed 16-byte prefix + 32 bytes.
  const der = new Uint8Array(48);
  der.set([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
  der.set(raw.subarray(0, 32), 16);
  let pk;
  let key;
  try {
    const probe = await crypto.subtle.importKey('pkcs8', der, { name: 'Ed25519' }, true, ['sign']);
    pk = b64url((await crypto.subtle.exportKey('jwk', probe)).x);
    key = await crypto.subtle.importKey('pkcs8', der, { name: 'Ed25519' }, false, ['sign']);
  } catch (e) {
    der.fill(0); raw.fill(0);
    if (e instanceof KeyError) throw e;
    throw new KeyError('key.noed25519');
  }
  const match = pk.length === 32 && pk.every((x, i) => x === raw[32 + i]);
  der.fill(0); raw.fill(0);
  if (!match) throw new KeyError('key.mismatch');
  return { key, pk, id: keyId(pk), pub: b64(pk) };
}

// Signs the exact bytes of text (UTF-8); returns the base64 signature.
export async function signText(key, text) {
  const sig = await crypto.subtle.sign({ name: 'Ed25519' }, key, new TextEncoder().encode(text));
  return b64(new Uint8Array(sig));
}
