export { SqsPushClient } from './client.js';
export { decrypt, decryptText, verifyMac, deriveMacKey, importKeys, parseBody } from './crypto.js';
export { regionFromUrl, endpointFor } from './sqs.js';
export {
  SqsPushError,
  InvalidKeyError,
  MalformedBodyError,
  MacMismatchError,
  MissingMacError,
  SqsRequestError,
  RenewError,
  HandlerError,
  DeleteError,
  SendError,
} from './errors.js';
