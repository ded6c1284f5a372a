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

/**
 * Call one SQS JSON-protocol operation. Resolves with the parsed JSON answer;
 * rejects with SqsRequestError, or with the AbortError when `signal` aborted.
 */
export async function sqsCall({ fetch, endpoint, region, credentials, operation, payload, signal, timeoutMs }) {
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
    throw new SqsRequestError(
      `${operation} failed: HTTP ${res.status}${code ? ' ' + code : ''}${message ? ': ' + message : ''}`,
      { operation, status: res.status, awsCode: code },
    );
  }
  if (!text) return {};
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new SqsRequestError(`${operation} failed: answer is not JSON`, { operation, status: res.status, cause: err });
  }
}
