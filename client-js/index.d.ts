// Type declarations for @sqs-push/client (hand-written; the package is plain ESM JavaScript).

/** What the backend's session create/renew call returns. */
export interface SqsPushSession {
  /** Queue URL, e.g. https://sqs.us-east-1.amazonaws.com/123456789012/sqs-push-prod-… */
  sqsUrl: string;
  sqsQueueName?: string;
  /** Standard base64 of the 32-byte AES-256 session key. */
  aesKey: string;
  accessKey: string;
  secretKey: string;
  sessionToken?: string;
  /** Epoch seconds when the credentials expire. */
  expires?: number;
  identityId?: string;
  sessionId?: string;
  userId?: number;
  accountId?: number;
  /** Epoch seconds when the session itself is removed. */
  ttl?: number;
  region?: string;
  [extra: string]: unknown;
}

/** A decrypted message, e.g. {"message":"Hello User","userId":200,"messageId":"…"}. */
export interface SqsPushMessage {
  messageId?: string;
  message?: unknown;
  userId?: number;
  accountId?: number;
  [field: string]: unknown;
}

/**
 * One row of `GET /messages/user/{userId}` (called by your backend, signed): the message's own
 * fields at the top level, as the original stack returned them, with the row's `messageId`,
 * `created` (epoch seconds), `is_read` (0 or 1) and `userId` winning over same-named fields.
 */
export interface SqsPushHistoryRow {
  messageId: string;
  created: number;
  is_read: 0 | 1;
  userId: number;
  _type?: string;
  [field: string]: unknown;
}

/** The answer of `GET /messages/user/{userId}`; follow `next` until it is null. */
export interface SqsPushHistoryPage {
  success: true;
  messages: SqsPushHistoryRow[];
  next: string | null;
}

export type SqsPushState = 'stopped' | 'connecting' | 'connected' | 'reconnecting';

/** A fetch-compatible function (the global fetch, or a test double). */
export type FetchLike = (input: string, init: {
  method: string;
  headers: Headers;
  body: string;
  signal: AbortSignal;
}) => Promise<Response>;

export interface SqsPushClientOptions {
  /** The session from the backend (create call). */
  session: SqsPushSession;
  /**
   * Returns fresh credentials for the same queue and key. Called with the current
   * session before `expires - renewBeforeSeconds` and after an ExpiredToken error.
   * The result is merged over the current session, so it may hold only
   * accessKey/secretKey/sessionToken/expires. `signal` aborts on stop().
   */
  renew?: (current: SqsPushSession, context: { signal: AbortSignal }) => Promise<Partial<SqsPushSession>> | Partial<SqsPushSession>;
  /** Called once per new message, in queue order; the message is deleted when this resolves. */
  onMessage: (message: SqsPushMessage) => unknown | Promise<unknown>;
  /** Errors: request failures, rejected messages, handler failures, renew failures. Default: console.warn. */
  onError?: (error: SqsPushError) => void;
  /** State changes: connecting → connected → reconnecting → … → stopped. */
  onState?: (state: SqsPushState) => void;
  /** Reject messages without a `mac` attribute (default true). A bad mac is always rejected. */
  requireMac?: boolean;
  /** Long-poll wait, 0–20 s (default 20). */
  waitTimeSeconds?: number;
  /** Renew this many seconds before `expires` (default 300). */
  renewBeforeSeconds?: number;
  /** How many recent messageIds to remember for dedupe (default 1000; 0 disables). */
  dedupeWindow?: number;
  /** Backoff base in ms (default 500); delays are random(0, min(cap, base·2^(n-1))). */
  backoffBaseMs?: number;
  /** Backoff cap in ms (default 30000). */
  backoffCapMs?: number;
  /** Region when neither session.region nor an sqs.<region>.amazonaws.com URL gives one (default us-east-1). */
  region?: string;
  /** Override the endpoint requests are posted to (default: origin of sqsUrl + "/"). */
  endpoint?: string;
  /** Injected fetch (default globalThis.fetch). */
  fetch?: FetchLike;
  /** Injected clock in ms (default Date.now). */
  now?: () => number;
  /** Injected random in [0, 1) for backoff jitter (default Math.random). */
  random?: () => number;
}

export class SqsPushClient {
  constructor(options: SqsPushClientOptions);
  /** Current state; "stopped" before start(). */
  readonly state: SqsPushState;
  /** A copy of the session in use (renewed credentials merged in). */
  readonly session: SqsPushSession;
  /** Start the long-poll loop (no-op while running). */
  start(): void;
  /** Abort the in-flight poll and resolve when the loop has ended. */
  stop(): Promise<void>;
}

/** Opaque imported key material (see importKeys). */
export interface SqsPushKeys {
  readonly aes: CryptoKey;
  readonly mac: CryptoKey;
}

export type KeyInput = string | Uint8Array | ArrayBuffer | SqsPushKeys;

/**
 * Verify (when `mac` is given) and decrypt a body `<counter>|<base64>` to the
 * message object. Throws MacMismatchError, MalformedBodyError, InvalidKeyError.
 */
export function decrypt(body: string, aesKey: KeyInput, mac?: string | null): Promise<SqsPushMessage>;
/** Like decrypt, but resolves with the decrypted JSON text. */
export function decryptText(body: string, aesKey: KeyInput, mac?: string | null): Promise<string>;
/** True when `mac` (base64) is the HMAC-SHA256 of `body` under the key's derived MAC key. */
export function verifyMac(body: string, aesKey: KeyInput, mac: string): Promise<boolean>;
/** The 32-byte derived MAC key: HKDF-SHA256(key, salt = "", info = "sqs-push/v1/mac"). */
export function deriveMacKey(aesKey: string | Uint8Array | ArrayBuffer): Promise<Uint8Array>;
/** Import a key once for repeated decrypt/verifyMac calls. */
export function importKeys(aesKey: KeyInput): Promise<SqsPushKeys>;
/** Split and validate a body; throws MalformedBodyError. */
export function parseBody(body: string): { counter: Uint8Array; ciphertext: Uint8Array };
/** Region from an sqs.<region>.amazonaws.com (or <region>.queue.amazonaws.com) URL. */
export function regionFromUrl(sqsUrl: string): string | undefined;
/** Origin of the queue URL + "/": where SQS JSON requests are posted. */
export function endpointFor(sqsUrl: string): string;

export type SqsPushErrorCode =
  | 'SQS_PUSH_ERROR'
  | 'INVALID_KEY'
  | 'MALFORMED_BODY'
  | 'MAC_MISMATCH'
  | 'MAC_MISSING'
  | 'SQS_REQUEST_FAILED'
  | 'RENEW_FAILED'
  | 'HANDLER_FAILED'
  | 'DELETE_FAILED';

export class SqsPushError extends Error {
  readonly code: SqsPushErrorCode;
  /** SQS MessageId of the message concerned, when there is one. */
  sqsMessageId?: string;
  cause?: unknown;
}
export class InvalidKeyError extends SqsPushError {}
export class MalformedBodyError extends SqsPushError {}
export class MacMismatchError extends SqsPushError {}
export class MissingMacError extends SqsPushError {}
export class SqsRequestError extends SqsPushError {
  readonly operation: 'ReceiveMessage' | 'DeleteMessageBatch' | string;
  /** HTTP status; 0 for a network error or timeout. */
  readonly status: number;
  /** AWS error code, e.g. "ExpiredTokenException", "QueueDoesNotExist". */
  readonly awsCode?: string;
  /** True for expired/unrecognised security tokens (a renew follows). */
  readonly isCredentialError: boolean;
}
export class RenewError extends SqsPushError {}
export class HandlerError extends SqsPushError {
  /** The message's own messageId, when it has one. */
  readonly messageId?: string;
}
export class DeleteError extends SqsPushError {
  readonly failed: Array<{ sqsMessageId?: string; code?: string; message?: string; senderFault?: boolean }>;
}
