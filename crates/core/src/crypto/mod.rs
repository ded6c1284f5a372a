//! The wire format's crypto (docs/wire-format.md): AES-256-CTR with a random 128-bit initial
//! counter block, body `<decimal counter>|<base64 ciphertext>`, and an HMAC-SHA256 tag over the
//! body with a MAC key derived from the session key by HKDF-SHA256.

use std::fmt;

use aes::Aes256;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ctr::cipher::{KeyIvInit, StreamCipher};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::Sha256;

type Aes256Ctr = ctr::Ctr128BE<Aes256>;
type HmacSha256 = Hmac<Sha256>;

/// HKDF `info` for the MAC key; versioned so a future format can derive a different key.
pub const MAC_KEY_INFO: &[u8] = b"sqs-push/v1/mac";

/// Why a body could not be opened. Never carries the key or the plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The session key is not 32 bytes of standard base64.
    #[error("aesKey must be 32 bytes in standard base64")]
    InvalidKey,
    /// The body is not `<decimal counter>|<base64>`.
    #[error("malformed message body: {0}")]
    MalformedBody(&'static str),
    /// The `mac` attribute is not base64 of 32 bytes.
    #[error("malformed mac attribute")]
    MalformedMac,
    /// The tag does not match: the body was altered or encrypted with another key.
    #[error("mac does not match: the body was altered or sealed with another key")]
    MacMismatch,
}

/// A session's 256-bit AES key. Its Debug output is redacted so it cannot leak into logs.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey([u8; 32]);

impl SessionKey {
    /// A new key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        fill_random(&mut bytes);
        Self(bytes)
    }

    /// A key from its raw bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses the standard base64 form that create returns as `aesKey`.
    pub fn from_base64(encoded: &str) -> Result<Self, CryptoError> {
        let bytes = STANDARD
            .decode(encoded.trim())
            .map_err(|_| CryptoError::InvalidKey)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::InvalidKey)?;
        Ok(Self(bytes))
    }

    /// The standard base64 form, as create returns it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

/// An encrypted message ready for SQS: the body and its `mac` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedMessage {
    /// `<decimal counter>|<base64 ciphertext>`.
    pub body: String,
    /// Standard base64 of HMAC-SHA256(mac key, body).
    pub mac: String,
}

/// Seals and opens messages for one session. Built once per session key: the MAC key derivation
/// and the HMAC key schedule are done here, not per message.
#[derive(Clone)]
pub struct SessionCipher {
    key: [u8; 32],
    mac: HmacSha256,
}

impl fmt::Debug for SessionCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionCipher(<redacted>)")
    }
}

impl SessionCipher {
    /// Derives the MAC key and prepares the HMAC state.
    pub fn new(key: &SessionKey) -> Self {
        let mac_key = derive_mac_key(key);
        let mac = HmacSha256::new_from_slice(&mac_key).expect("HMAC accepts any key length");
        Self { key: key.0, mac }
    }

    /// Encrypts `plaintext` under a fresh random counter.
    pub fn seal(&self, plaintext: &[u8]) -> SealedMessage {
        let mut counter = [0u8; 16];
        fill_random(&mut counter);
        self.seal_under(u128::from_be_bytes(counter), plaintext)
    }

    /// Encrypts under a chosen counter; only for test vectors (the `testing` feature) — reusing
    /// a counter with the same key reveals the XOR of the plaintexts.
    #[cfg(any(test, feature = "testing"))]
    pub fn seal_with_counter(&self, counter: u128, plaintext: &[u8]) -> SealedMessage {
        self.seal_under(counter, plaintext)
    }

    fn seal_under(&self, counter: u128, plaintext: &[u8]) -> SealedMessage {
        let mut buffer = plaintext.to_vec();
        self.apply_keystream(counter, &mut buffer);
        let mut body = String::with_capacity(40 + 1 + buffer.len().div_ceil(3) * 4);
        body.push_str(&counter.to_string());
        body.push('|');
        STANDARD.encode_string(&buffer, &mut body);
        let mac = STANDARD.encode(self.tag(&body));
        SealedMessage { body, mac }
    }

    /// Verifies `mac` when given, then decrypts. Whether a missing tag is acceptable is the
    /// caller's decision.
    pub fn open(&self, body: &str, mac: Option<&str>) -> Result<Vec<u8>, CryptoError> {
        if let Some(mac) = mac {
            let tag = STANDARD
                .decode(mac.trim())
                .map_err(|_| CryptoError::MalformedMac)?;
            let mut verifier = self.mac.clone();
            verifier.update(body.as_bytes());
            verifier
                .verify_slice(&tag)
                .map_err(|_| CryptoError::MacMismatch)?;
        }
        let (counter, ciphertext) = body.split_once('|').ok_or(CryptoError::MalformedBody(
            "no '|' between counter and ciphertext",
        ))?;
        let counter = parse_counter(counter)?;
        let mut buffer = STANDARD
            .decode(ciphertext)
            .map_err(|_| CryptoError::MalformedBody("ciphertext is not standard base64"))?;
        self.apply_keystream(counter, &mut buffer);
        Ok(buffer)
    }

    fn apply_keystream(&self, counter: u128, buffer: &mut [u8]) {
        let mut cipher = Aes256Ctr::new(&self.key.into(), &counter.to_be_bytes().into());
        cipher.apply_keystream(buffer);
    }

    fn tag(&self, body: &str) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(body.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// HKDF-SHA256(ikm = key, no salt, info = [`MAC_KEY_INFO`]) → 32 bytes.
pub fn derive_mac_key(key: &SessionKey) -> [u8; 32] {
    let mut mac_key = [0u8; 32];
    Hkdf::<Sha256>::new(None, &key.0)
        .expand(MAC_KEY_INFO, &mut mac_key)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    mac_key
}

fn parse_counter(decimal: &str) -> Result<u128, CryptoError> {
    if decimal.is_empty() || !decimal.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CryptoError::MalformedBody(
            "counter is not a decimal integer",
        ));
    }
    decimal
        .parse::<u128>()
        .map_err(|_| CryptoError::MalformedBody("counter does not fit in 128 bits"))
}

/// Fills `buffer` from the operating system's CSPRNG. Without one there is no safe key or queue
/// name to hand out, so failing loudly is the only option.
pub fn fill_random(buffer: &mut [u8]) {
    OsRng
        .try_fill_bytes(buffer)
        .expect("the operating system's random number generator failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> SessionCipher {
        SessionCipher::new(&SessionKey::from_bytes([7u8; 32]))
    }

    #[test]
    fn sealed_messages_open_to_the_same_plaintext() {
        let plaintext = br#"{"message":"Hello User","userId":200,"messageId":"m"}"#;
        let sealed = cipher().seal(plaintext);
        assert_eq!(
            cipher().open(&sealed.body, Some(&sealed.mac)).unwrap(),
            plaintext
        );
    }

    #[test]
    fn each_seal_uses_a_fresh_counter() {
        let first = cipher().seal(b"same");
        let second = cipher().seal(b"same");
        assert_ne!(first.body, second.body);
    }

    #[test]
    fn body_is_decimal_counter_bar_base64() {
        let sealed = cipher().seal_with_counter(u128::MAX, b"abc");
        let (counter, ciphertext) = sealed.body.split_once('|').unwrap();
        assert_eq!(counter, "340282366920938463463374607431768211455");
        assert_eq!(STANDARD.decode(ciphertext).unwrap().len(), 3);
    }

    #[test]
    fn a_changed_body_fails_the_mac() {
        let sealed = cipher().seal(b"{\"message\":\"x\"}");
        let mut tampered = sealed.body.clone().into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            cipher().open(&tampered, Some(&sealed.mac)),
            Err(CryptoError::MacMismatch)
        );
    }

    #[test]
    fn another_keys_mac_does_not_verify() {
        let sealed = cipher().seal(b"x");
        let other = SessionCipher::new(&SessionKey::from_bytes([8u8; 32]));
        assert_eq!(
            other.open(&sealed.body, Some(&sealed.mac)),
            Err(CryptoError::MacMismatch)
        );
    }

    #[test]
    fn malformed_bodies_are_named() {
        let c = cipher();
        assert!(matches!(
            c.open("no-bar", None),
            Err(CryptoError::MalformedBody(_))
        ));
        assert!(matches!(
            c.open("12x|AAAA", None),
            Err(CryptoError::MalformedBody(_))
        ));
        assert!(matches!(
            c.open("340282366920938463463374607431768211456|AAAA", None),
            Err(CryptoError::MalformedBody(_))
        ));
        assert!(matches!(
            c.open("1|not base64!", None),
            Err(CryptoError::MalformedBody(_))
        ));
        assert_eq!(c.open("1|AAAA", Some("%%")), Err(CryptoError::MalformedMac));
    }

    #[test]
    fn keys_round_trip_through_base64_and_reject_wrong_lengths() {
        let key = SessionKey::generate();
        assert_eq!(SessionKey::from_base64(&key.to_base64()).unwrap(), key);
        assert_eq!(
            SessionKey::from_base64("AAAA"),
            Err(CryptoError::InvalidKey)
        );
        assert_eq!(format!("{key:?}"), "SessionKey(<redacted>)");
    }

    #[test]
    fn counter_wrap_matches_a_manual_two_block_keystream() {
        // The second block of a message sealed at u128::MAX uses counter 0: check against AES
        // applied block by block so the wrap is proven independently of the ctr crate.
        use aes::cipher::{BlockEncrypt, KeyInit};
        let key = [7u8; 32];
        let aes = Aes256::new(&key.into());
        let mut first = aes::Block::from(u128::MAX.to_be_bytes());
        let mut second = aes::Block::from(0u128.to_be_bytes());
        aes.encrypt_block(&mut first);
        aes.encrypt_block(&mut second);
        let plaintext = [0u8; 32];
        let sealed = cipher().seal_with_counter(u128::MAX, &plaintext);
        let ciphertext = STANDARD
            .decode(sealed.body.split_once('|').unwrap().1)
            .unwrap();
        assert_eq!(&ciphertext[..16], first.as_slice());
        assert_eq!(&ciphertext[16..], second.as_slice());
    }
}
