// Wire format (docs/wire-format.md):
//   body = <counter>|<base64 ciphertext>
//   counter: 128-bit unsigned integer in decimal = big-endian initial counter block
//   ciphertext = AES-256-CTR(key, counter, UTF-8 JSON), whole 128-bit block incremented
//   mac attribute = base64(HMAC-SHA256(HKDF-SHA256(key, salt="", info="sqs-push/v1/mac", 32), body))
// Only globalThis.crypto.subtle is used, so this runs in browsers and Node 20+.

import {
  InvalidKeyError,
  MacMismatchError,
  MalformedBodyError,
  MissingMacError,
  SqsPushError,
} from './errors.js';

const encoder = new TextEncoder();
const MAC_INFO = encoder.encode('sqs-push/v1/mac');
const MAX_COUNTER = (1n << 128n) - 1n;
const COUNTER_RE = /^(?:0|[1-9][0-9]{0,38})$/; // no sign, no leading zeros
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/; // padded
const KEYS = Symbol('sqs-push keys');

function subtle() {
  const s = globalThis.crypto && globalThis.crypto.subtle;
  if (!s) {
    throw new SqsPushError(
      'WebCrypto (crypto.subtle) is not available: use a secure context (https or localhost) or Node 20+',
    );
  }
  return s;
}

/** Standard padded base64 → bytes, or null when the text is not that. */
function fromBase64(text) {
  if (typeof text !== 'string' || !BASE64_RE.test(text)) return null;
  let bin;
  try {
    bin = atob(text);
  } catch {
    return null;
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function keyBytes(aesKey) {
  let bytes = null;
  if (typeof aesKey === 'string') bytes = fromBase64(aesKey);
  else if (aesKey instanceof Uint8Array) bytes = aesKey;
  else if (aesKey instanceof ArrayBuffer) bytes = new Uint8Array(aesKey);
  if (!bytes || bytes.length !== 32) {
    throw new InvalidKeyError('aesKey must be standard base64 of exactly 32 bytes');
  }
  return bytes;
}

async function deriveMacBits(raw) {
  const ikm = await subtle().importKey('raw', raw, 'HKDF', false, ['deriveBits']);
  const bits = await subtle().deriveBits(
    { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: MAC_INFO },
    ikm,
    256,
  );
  return new Uint8Array(bits);
}

/**
 * The 32-byte MAC key derived from the session key (HKDF-SHA256, empty salt,
 * info "sqs-push/v1/mac"). Exposed for tests and interoperability checks.
 */
export async function deriveMacKey(aesKey) {
  return deriveMacBits(keyBytes(aesKey));
}

/**
 * Import a session key once (AES-CTR key + derived HMAC key) so that repeated
 * decrypt/verifyMac calls skip the key setup. The result can be passed
 * wherever an aesKey is accepted.
 */
export async function importKeys(aesKey) {
  if (isKeys(aesKey)) return aesKey;
  const raw = keyBytes(aesKey);
  const s = subtle();
  const [aes, macBits] = await Promise.all([
    s.importKey('raw', raw, { name: 'AES-CTR' }, false, ['decrypt']),
    deriveMacBits(raw),
  ]);
  const mac = await s.importKey('raw', macBits, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  return Object.freeze({ [KEYS]: true, aes, mac });
}

function isKeys(value) {
  return value !== null && typeof value === 'object' && value[KEYS] === true;
}

/**
 * Split and validate `<counter>|<base64>`. Returns the 16-byte initial counter
 * block and the ciphertext bytes; throws MalformedBodyError.
 */
export function parseBody(body) {
  if (typeof body !== 'string') throw new MalformedBodyError('body is not a string');
  const bar = body.indexOf('|');
  if (bar < 0) throw new MalformedBodyError('body has no "|" between counter and ciphertext');
  const digits = body.slice(0, bar);
  if (!COUNTER_RE.test(digits)) {
    throw new MalformedBodyError('counter is not a decimal integer without sign or leading zeros');
  }
  let n = BigInt(digits);
  if (n > MAX_COUNTER) throw new MalformedBodyError('counter does not fit in 128 bits');
  const counter = new Uint8Array(16);
  for (let i = 15; i >= 0; i--) {
    counter[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  const ciphertext = fromBase64(body.slice(bar + 1));
  if (!ciphertext) throw new MalformedBodyError('ciphertext is not standard padded base64');
  return { counter, ciphertext };
}

/**
 * Check the `mac` attribute of a body. Resolves true when it matches, false
 * when it does not (or is not base64). Comparison is done by WebCrypto.
 */
export async function verifyMac(body, aesKey, mac) {
  if (typeof body !== 'string') return false;
  const keys = await importKeys(aesKey);
  return verifyWithKeys(body, keys, mac);
}

async function verifyWithKeys(body, keys, mac) {
  const tag = fromBase64(mac);
  if (!tag || tag.length !== 32) return false;
  return subtle().verify('HMAC', keys.mac, tag, encoder.encode(body));
}

/**
 * Verify (when `mac` is given) and decrypt a body to its UTF-8 JSON text.
 * `mac` undefined or null: no verification. Throws MacMismatchError,
 * MalformedBodyError or InvalidKeyError.
 */
export async function decryptText(body, aesKey, mac) {
  const keys = await importKeys(aesKey);
  return open(body, keys, mac, false);
}

/**
 * Verify (when `mac` is given) and decrypt a body to the message object.
 * Throws MacMismatchError, MalformedBodyError or InvalidKeyError.
 */
export async function decrypt(body, aesKey, mac) {
  return parseMessage(await decryptText(body, aesKey, mac));
}

/** Shared by decrypt and the client. */
export async function open(body, keys, mac, requireMac) {
  if (typeof body !== 'string') throw new MalformedBodyError('body is not a string');
  if (mac === undefined || mac === null) {
    if (requireMac) throw new MissingMacError('message has no "mac" attribute and a MAC is required');
  } else if (!(await verifyWithKeys(body, keys, mac))) {
    throw new MacMismatchError('MAC does not match the body (tampered, or wrong key)');
  }
  const { counter, ciphertext } = parseBody(body);
  const plain = await subtle().decrypt({ name: 'AES-CTR', counter, length: 128 }, keys.aes, ciphertext);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(plain);
  } catch {
    throw new MalformedBodyError('decrypted payload is not valid UTF-8 (wrong key?)');
  }
}

export function parseMessage(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    throw new MalformedBodyError('decrypted payload is not valid JSON (wrong key?)');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new MalformedBodyError('decrypted payload is not a JSON object');
  }
  return value;
}
