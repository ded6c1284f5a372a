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
  /** The channels the session is subscribed to (the backend subscribes it). */
  channels?: string[];
  /** The stage's upstream queue: where `send`, `markRead` and heartbeats go. Absent on stacks without one. */
  upstreamUrl?: string;
  [extra: string]: unknown;
}

/** A JSON value: what a message body sent upstream may be. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * The page's message types and their bodies, e.g. `{ chat: { text: string }; typing: boolean }`
 * (the second type parameter of SqsPushClient). The default takes any type with any JSON body.
 */
export type SqsPushUpstream = Record<string, JsonValue>;

/** sqs-push's own types: sent by the client itself (heartbeats) or through markRead. */
export type SqsPushReservedType = 'heartbeat' | 'read';

/** What `send` resolves with once SQS has the message. */
export interface SqsPushSent {
  /** SQS's MessageId on the upstream queue. */
  messageId: string;
  /** The envelope's seq: unique per session (random start per tab and page load, +1 per message). */
  seq: number;
}

/** Options of `send` and `markRead`. */
export interface SqsPushSendOptions {
  /** Abort: the promise rejects with the abort reason (the message may already have reached SQS). */
  signal?: AbortSignal;
}

/**
 * A join or leave on a channel with presence events (subscribed with `?presence=true`): a session
 * came online (its first heartbeat) or went offline (none for 90 s, or it ended).
 */
export interface SqsPushPresence {
  presence: 'join' | 'leave';
  channel: string;
  accountId: number;
  userId: number;
  sessionId: string;
  /** RFC 3339 time of the session's last heartbeat. */
  lastSeen: string;
  /** True when the event is about this client's own session. */
  self: boolean;
  messageId?: string;
}

/** A decrypted message, e.g. {"message":"Hello User","userId":200,"messageId":"…"}. */
export interface SqsPushMessage {
  messageId?: string;
  message?: unknown;
  userId?: number;
  accountId?: number;
  /** Set on messages published to a channel: the channel's name. */
  channel?: string;
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

export type SqsPushState = 'stopped' | 'connecting' | 'connected' | 'reconnecting' | 'paused' | 'ended';

/** "leader": this tab polls for its session's tabs; "follower": another tab does; "solo": not shared. */
export type SqsPushRole = 'leader' | 'follower' | 'solo';

/** Why a session ended: its queue no longer exists, or `renew` resolved null. */
export interface SqsPushEnded {
  reason: 'queue-gone' | 'session-gone';
  /** The SqsRequestError that showed the queue was gone. */
  cause?: SqsRequestError;
}

/** What the client asks of the page: visibility and network, with change notifications. */
export interface SqsPushPage {
  visible(): boolean;
  online(): boolean;
  /** Call `onChange` after any change; returns a function that unsubscribes. */
  subscribe(onChange: () => void): () => void;
}

/** A fetch-compatible function (the global fetch, or a test double). */
export type FetchLike = (input: string, init: {
  method: string;
  headers: Headers;
  body: string;
  signal: AbortSignal;
}) => Promise<Response>;

export interface SqsPushClientOptions<M extends SqsPushMessage = SqsPushMessage> {
  /** The session from the backend (create call). */
  session: SqsPushSession;
  /**
   * Returns fresh credentials for the same queue and key. Called with the current
   * session before `expires - renewBeforeSeconds` and after an ExpiredToken error.
   * The result is merged over the current session, so it may hold only
   * accessKey/secretKey/sessionToken/expires. Resolve `null` when the session is gone
   * (the client then ends). `signal` aborts on stop().
   */
  renew?: (current: SqsPushSession, context: { signal: AbortSignal }) =>
    Promise<Partial<SqsPushSession> | null> | Partial<SqsPushSession> | null;
  /** Called once per new message (a standard queue keeps no order); the message is deleted when this resolves. */
  onMessage?: (message: M) => unknown | Promise<unknown>;
  /** Errors: request failures, rejected messages, handler failures, renew failures. Default: console.warn unless an "error" listener is added. */
  onError?: (error: SqsPushError) => void;
  /** State changes: connecting → connected → reconnecting/paused → … → stopped or ended. */
  onState?: (state: SqsPushState) => void;
  /** Presence events (join/leave) of the session's channels with presence; awaited like onMessage. */
  onPresence?: (event: SqsPushPresence) => unknown | Promise<unknown>;
  /**
   * Heartbeats (presence): the leader tab sends one at most every this many seconds while some
   * tab of the session is visible and online, and at once when one becomes visible if that long
   * has passed; none while hidden. 1–85 (default 60), or 0 for none. Only with session.upstreamUrl.
   */
  heartbeatSeconds?: number;
  /** Reject messages without a `mac` attribute (default true). A bad mac is always rejected. */
  requireMac?: boolean;
  /** Long-poll wait while visible, 0–20 s (default 20). */
  waitTimeSeconds?: number;
  /** While every tab of the session is hidden: "poll" once every hiddenPollSeconds (default) or "pause". */
  hidden?: 'poll' | 'pause';
  /** Seconds between polls while hidden, 1–86400 (default 600). */
  hiddenPollSeconds?: number;
  /** Tabs of one session share one poller (default true in a page with BroadcastChannel; false elsewhere). */
  share?: boolean;
  /** Renew this many seconds before `expires` (default 300). */
  renewBeforeSeconds?: number;
  /** How many recent messageIds to remember for dedupe (default 1000; 0 disables). */
  dedupeWindow?: number;
  /** Backoff base in ms (default 500); delays are random(0, min(cap, base·2^(n-1))). */
  backoffBaseMs?: number;
  /** Backoff cap in ms (default 30000). */
  backoffCapMs?: number;
  /**
   * A queue never reached yet that SQS calls missing may only be too new to be visible (AWS: up
   * to a second after CreateQueue): ask again this many times, 0–20 (default 3), before ending
   * with reason "queue-gone". A queue that answered once and then is missing ends at once.
   */
  newQueueRetries?: number;
  /** The n-th of those retries waits n × this many ms, 0–60000 (default 1000: 1 s, 2 s, 3 s). */
  newQueueDelayMs?: number;
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
  /** Injected page observer (default: document.visibilityState and navigator.onLine). */
  page?: SqsPushPage;
}

/** The events of `on`/`off` and what their listeners receive. */
export interface SqsPushEvents<M extends SqsPushMessage = SqsPushMessage> {
  message: M;
  presence: SqsPushPresence;
  state: SqsPushState;
  error: SqsPushError;
  ended: SqsPushEnded;
  role: SqsPushRole | null;
}

/** A listener's argument: for "channel:<name>", the message with `channel` set. */
export type SqsPushEventArg<M extends SqsPushMessage, E extends string> =
  E extends keyof SqsPushEvents<M> ? SqsPushEvents<M>[E]
  : E extends `channel:${infer C}` ? M & { channel: C }
  : never;

export type SqsPushEventName = keyof SqsPushEvents | `channel:${string}`;

export class SqsPushClient<M extends SqsPushMessage = SqsPushMessage, U extends object = SqsPushUpstream> {
  constructor(options: SqsPushClientOptions<M>);
  /**
   * Send `body` as a message of `type` (`^[a-z][a-z0-9_.:-]{0,63}$`, not "heartbeat" or "read")
   * to the session's upstream queue. Resolves once SQS has it; held while offline, retried on
   * transient failures; rejects with a SendError when refused for good (too large, not allowed,
   * no upstream, session ended). Any tab may send, leader or not, started or not.
   */
  send<T extends keyof U & string>(
    type: T extends SqsPushReservedType ? never : T,
    body: U[T],
    options?: SqsPushSendOptions,
  ): Promise<SqsPushSent>;
  /** Mark history messages read (type "read"): 1 or more ids, duplicates dropped, 100 per message sent. */
  markRead(messageIds: readonly string[], options?: SqsPushSendOptions): Promise<SqsPushSent[]>;
  /** Current state; "stopped" before start(). */
  readonly state: SqsPushState;
  /** This tab's part in its session's tab group; null while stopped. */
  readonly role: SqsPushRole | null;
  /** A copy of the session in use (renewed credentials merged in). */
  readonly session: SqsPushSession;
  /**
   * Listen. Message listeners (and onMessage) are awaited; the message is deleted when all
   * resolve, and left in the queue (it comes back) when one throws.
   */
  on<E extends SqsPushEventName>(event: E, listener: (arg: SqsPushEventArg<M, E>) => unknown): this;
  /** Remove a listener added with on(). */
  off<E extends SqsPushEventName>(event: E, listener: (arg: SqsPushEventArg<M, E>) => unknown): this;
  /** Start polling, or join the session's tab group (no-op while running or once ended). */
  start(): void;
  /** Abort the in-flight poll and resolve when the loop has ended; a leader hands over to another tab. */
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
  | 'DELETE_FAILED'
  | 'SEND_FAILED';

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
  readonly operation: 'ReceiveMessage' | 'DeleteMessageBatch' | 'SendMessage' | string;
  /** HTTP status; 0 for a network error or timeout. */
  readonly status: number;
  /** AWS error code, e.g. "ExpiredTokenException", "QueueDoesNotExist". */
  readonly awsCode?: string;
  /** True for expired/unrecognised security tokens (a renew follows). */
  readonly isCredentialError: boolean;
  /** True when SQS refused the signature's time (this machine's clock is off; corrected and retried once). */
  readonly isClockSkewError: boolean;
  /** The server's time (epoch ms) that answer gave, when it gave one. */
  readonly serverTime?: number;
  /** True for QueueDoesNotExist / NonExistentQueue: the session has ended. */
  readonly isQueueGone: boolean;
}
export class RenewError extends SqsPushError {}
export class HandlerError extends SqsPushError {
  /** The message's own messageId, when it has one. */
  readonly messageId?: string;
}
export class DeleteError extends SqsPushError {
  readonly failed: Array<{ sqsMessageId?: string; code?: string; message?: string; senderFault?: boolean }>;
}

/** Why a send was refused for good. */
export type SendErrorReason = 'too-large' | 'not-allowed' | 'refused' | 'no-upstream' | 'ended';

/** `send`/`markRead` will not deliver the message (never carries its body). */
export class SendError extends SqsPushError {
  readonly reason: SendErrorReason;
  /** The message's type and seq. */
  readonly type?: string;
  readonly seq?: number;
  /** SQS's error code when SQS refused it, e.g. "InvalidParameterValue", "AccessDenied". */
  readonly awsCode?: string;
  readonly status?: number;
}
