// Error classes. Messages never contain key material or message bodies:
// they name the problem and, where known, the SQS MessageId.

/** Base class of every error this package throws or reports. */
export class SqsPushError extends Error {
  constructor(message, options = {}) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    // names are spelled out: minifiers rename classes, so new.target.name would not do
    this.name = 'SqsPushError';
    /** Stable machine-readable code, e.g. "MAC_MISMATCH". */
    this.code = options.code || 'SQS_PUSH_ERROR';
    /** SQS MessageId of the message concerned, when there is one. */
    if (options.sqsMessageId !== undefined) this.sqsMessageId = options.sqsMessageId;
  }
}

/** The key (aesKey) is not standard base64 of exactly 32 bytes. */
export class InvalidKeyError extends SqsPushError {
  constructor(message) {
    super(message, { code: 'INVALID_KEY' });
    this.name = 'InvalidKeyError';
  }
}

/** The body is not `<counter>|<base64>`, or it does not decrypt to a UTF-8 JSON object. */
export class MalformedBodyError extends SqsPushError {
  constructor(message, options = {}) {
    super(message, { ...options, code: 'MALFORMED_BODY' });
    this.name = 'MalformedBodyError';
  }
}

/** The `mac` attribute does not match the body (tampered, truncated or wrong key). */
export class MacMismatchError extends SqsPushError {
  constructor(message, options = {}) {
    super(message, { ...options, code: 'MAC_MISMATCH' });
    this.name = 'MacMismatchError';
  }
}

/** The message has no `mac` attribute and the client requires one (`requireMac`, default true). */
export class MissingMacError extends SqsPushError {
  constructor(message, options = {}) {
    super(message, { ...options, code: 'MAC_MISSING' });
    this.name = 'MissingMacError';
  }
}

/**
 * An SQS request failed: network error (status 0), timeout, or an error answer.
 * `operation` is "ReceiveMessage", "DeleteMessageBatch" or "SendMessage"; `awsCode` the AWS
 * error code (e.g. "ExpiredToken", "AWS.SimpleQueueService.NonExistentQueue").
 */
export class SqsRequestError extends SqsPushError {
  constructor(message, { operation, status = 0, awsCode, cause, clockSkew = false, serverTime } = {}) {
    super(message, { code: 'SQS_REQUEST_FAILED', cause });
    this.name = 'SqsRequestError';
    this.operation = operation;
    this.status = status;
    if (awsCode !== undefined) this.awsCode = awsCode;
    /** True when SQS refused the signature's time (this machine's clock is off). */
    this.isClockSkewError = clockSkew;
    /** The server's time (epoch ms) read from that answer, when it gave one. */
    if (serverTime !== undefined) this.serverTime = serverTime;
  }

  /** True when the queue does not exist (destroyed, or removed at the end of its TTL). */
  get isQueueGone() {
    return typeof this.awsCode === 'string' && /QueueDoesNotExist|NonExistentQueue/.test(this.awsCode);
  }

  /** True when new credentials may fix it (expired or unrecognised security token). */
  get isCredentialError() {
    return typeof this.awsCode === 'string' &&
      /ExpiredToken|InvalidClientTokenId|UnrecognizedClient/i.test(this.awsCode);
  }
}

/** The `renew` callback threw or returned something that is not a usable session. */
export class RenewError extends SqsPushError {
  constructor(message, options = {}) {
    super(message, { ...options, code: 'RENEW_FAILED' });
    this.name = 'RenewError';
  }
}

/** `onMessage` threw or rejected; the message is left in the queue and comes back later. */
export class HandlerError extends SqsPushError {
  constructor(message, options = {}) {
    super(message, { ...options, code: 'HANDLER_FAILED' });
    this.name = 'HandlerError';
    if (options.messageId !== undefined) this.messageId = options.messageId;
  }
}

/** DeleteMessageBatch reported entries it could not delete (they will be received again). */
export class DeleteError extends SqsPushError {
  constructor(message, { failed = [] } = {}) {
    super(message, { code: 'DELETE_FAILED' });
    this.name = 'DeleteError';
    /** [{ sqsMessageId, code, message, senderFault }] */
    this.failed = failed;
  }
}

/**
 * `send` (or `markRead`) will not deliver this message: SQS refused it for good, or it cannot be
 * sent at all. `reason`: "too-large" (over the upstream queue's 16 KiB), "not-allowed" (the
 * credentials may not send there), "refused" (any other permanent SQS refusal), "no-upstream"
 * (the session has no upstreamUrl or sessionId, or that queue does not exist), "ended" (the
 * session ended first). Transient failures are retried, not rejected.
 */
export class SendError extends SqsPushError {
  constructor(message, { reason, type, seq, awsCode, status, cause } = {}) {
    super(message, { code: 'SEND_FAILED', cause });
    this.name = 'SendError';
    this.reason = reason;
    /** The message's `type` and `seq` (never its body). */
    if (type !== undefined) this.type = type;
    if (seq !== undefined) this.seq = seq;
    if (awsCode !== undefined) this.awsCode = awsCode;
    if (status !== undefined) this.status = status;
  }
}
