// Minimal SQS client for the JSON protocol (application/x-amz-json-1.0),
// signed with SigV4 by aws4fetch. Requests always go to the endpoint root
// ("<origin>/"): the emulator only answers CORS preflights there, and SQS
// takes the queue from the QueueUrl field.

import { AwsV4Signer } from 'aws4fetch';
import { SqsRequestError } from './errors.js';

const REGION_HOST_RE = /^sqs\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$/;
const LEGACY_HOST_RE = /^([a-z0-9-]+)\.queue\.amazonaws\.com(?:\.cn)?$/;

/** Region from `sqs.<region>.amazonaws.com` (or `<region>.queue.amazonaws.com`), else undefined. */
export function regionFromUrl(sqsUrl) {
  let host;
  try {
    host = new URL(sqsUrl).hostname;
  } catch {
    return undefined;
  }
  const m = REGION_HOST_RE.exec(host) || LEGACY_HOST_RE.exec(host);
  return m ? m[1] : undefined;
}

/** The endpoint root for a queue URL: its origin plus "/". */
export function endpointFor(sqsUrl) {
  return new URL(sqsUrl).origin + '/';
}

/**
 * An AbortSignal that fires when `parent` aborts or after `timeoutMs`.
 * Call `done()` when the request is over to release the timer and listener.
 */
function requestSignal(parent, timeoutMs) {
  const ctrl = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ctrl.abort();
  }, timeoutMs);
  const onAbort = () => ctrl.abort();
  if (parent) {
    if (parent.aborted) ctrl.abort();
    else parent.addEventListener('abort', onAbort, { once: true });
  }
  return {
    signal: ctrl.signal,
    timedOut: () => timedOut,
    done() {
      clearTimeout(timer);
      if (parent) parent.removeEventListener('abort', onAbort);
    },
  };
}

/**
 * AWS error code and message of an error answer. The JSON `__type` is used
 * first (short name after '#', e.g. "QueueDoesNotExist", "ExpiredTokenException")
 * since browsers may not be allowed to read the x-amzn-* headers.
 */
function awsError(text, headers) {
  try {
    const j = JSON.parse(text);
    const type = j.__type || j.code || j.Code;
    const message = j.message || j.Message;
    if (type) return { code: String(type).split('#').pop(), message };
  } catch {
    // not JSON; maybe XML from an older endpoint or a proxy
    const code = /<Code>([^<]*)<\/Code>/.exec(text);
    const message = /<Message>([^<]*)<\/Message>/.exec(text);
    if (code) return { code: code[1], message: message ? message[1] : undefined };
  }
  const header = headers && (headers.get('x-amzn-errortype') || headers.get('x-amzn-query-error'));
  if (header) return { code: header.split(/[;:]/)[0].split('#').pop() };
  return {};
}

/** `20260101T120000Z` (SigV4's X-Amz-Date) for epoch ms `ms`. */
export function amzDate(ms) {
  return new Date(ms).toISOString().replace(/[:-]|\.\d{3}/g, '');
}

function parseAmzDate(text) {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  return m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) : NaN;
}

/**
 * True for the answers SigV4 gives a request signed with a clock that is off: "Signature
 * expired: … is now earlier than …", "Signature not yet current: … is still later than …",
 * RequestExpired, RequestTimeTooSkewed.
 */
export function isClockSkewAnswer(code, message) {
  if (/^(RequestExpired|RequestTimeTooSkewed|RequestInTheFuture)$/.test(code || '')) return true;
  return /Signature expired|Signature not yet current/i.test(message || '');
}

/**
 * The server's time (epoch ms) from an answer: its `Date` header when the page may read it,
 * else the time SigV4 quotes in the message ("(20260101T121500Z - 15 min.)" or "+ 15 min.").
 */
export function serverTimeOf(headers, message) {
  const date = headers && headers.get('date');
  const fromHeader = date ? Date.parse(date) : NaN;
  if (Number.isFinite(fromHeader)) return fromHeader;
  const m = /\((\d{8}T\d{6}Z) [-+] \d+ min\.?\)/.exec(message || '');
  return m ? parseAmzDate(m[1]) : NaN;
}

/**
 * Call one SQS JSON-protocol operation. Resolves with the parsed JSON answer;
 * rejects with SqsRequestError, or with the AbortError when `signal` aborted.
 *
 * Requests are signed at `now() + clock.skewMs`. An answer saying the signature's time is off
 * sets `clock.skewMs` from the server's time and the request is signed again and sent once more.
 */
export async function sqsCall({ fetch, endpoint, region, credentials, operation, payload, signal, timeoutMs, clock, now = Date.now }) {
  const skew = clock || { skewMs: 0 };
  try {
    return await sqsCallOnce({ fetch, endpoint, region, credentials, operation, payload, signal, timeoutMs, skew, now });
  } catch (err) {
    if (!(err instanceof SqsRequestError) || !err.isClockSkewError || !Number.isFinite(err.serverTime)) throw err;
    skew.skewMs = err.serverTime - now();
    return sqsCallOnce({ fetch, endpoint, region, credentials, operation, payload, signal, timeoutMs, skew, now });
  }
}

async function sqsCallOnce({ fetch, endpoint, region, credentials, operation, payload, signal, timeoutMs, skew, now }) {
  const signer = new AwsV4Signer({
    url: endpoint,
    method: 'POST',
    headers: {
      'Content-Type': 'application/x-amz-json-1.0',
      'X-Amz-Target': 'AmazonSQS.' + operation,
    },
    body: JSON.stringify(payload),
    accessKeyId: credentials.accessKey,
    secretAccessKey: credentials.secretKey,
    sessionToken: credentials.sessionToken || undefined,
    service: 'sqs',
    region,
    datetime: amzDate(now() + skew.skewMs),
  });
  const signed = await signer.sign();
  const req = requestSignal(signal, timeoutMs);
  let res;
  let text;
  try {
    res = await fetch(signed.url.toString(), {
      method: 'POST',
      headers: signed.headers,
      body: signed.body,
      signal: req.signal,
    });
    text = await res.text();
  } catch (err) {
    if (signal && signal.aborted) throw err; // stop(): let the caller see the abort
    const why = req.timedOut() ? 'timed out' : 'network error';
    throw new SqsRequestError(`${operation} failed: ${why}`, { operation, cause: err });
  } finally {
    req.done();
  }
  if (!res.ok) {
    const { code, message } = awsError(text, res.headers);
    const skewed = isClockSkewAnswer(code, message);
    throw new SqsRequestError(
      `${operation} failed: HTTP ${res.status}${code ? ' ' + code : ''}${message ? ': ' + message : ''}`,
      {
        operation,
        status: res.status,
        awsCode: code,
        clockSkew: skewed,
        serverTime: skewed ? serverTimeOf(res.headers, message) : undefined,
      },
    );
  }
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new SqsRequestError(`${operation} failed: answer is not JSON`, { operation, status: res.status, cause: err });
  }
}
