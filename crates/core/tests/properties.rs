//! Property tests (issue 11, item 8): the id parsers accept exactly their documented grammar, and
//! the wire-format parser never panics and round-trips what it sealed. Case counts are bounded
//! so the whole file runs in a few seconds.

use proptest::prelude::*;
use sqs_push_core::crypto::{SessionCipher, SessionKey};
use sqs_push_core::{AccountId, SessionId, UserId};

const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The documented integer grammar: `0` or a digit 1-9 followed by digits, at most 2^53-1.
fn is_safe_integer(raw: &str) -> bool {
    let digits = !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit());
    let no_leading_zero = raw == "0" || !raw.starts_with('0');
    digits && no_leading_zero && raw.parse::<u64>().is_ok_and(|v| v <= MAX_SAFE_INTEGER)
}

/// The documented session id grammar: 1-256 printable ASCII characters other than '/'.
fn is_session_id(raw: &str) -> bool {
    (1..=256).contains(&raw.len()) && raw.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b'/')
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Strings near the grammars' edges: digits with signs, spaces and zeros; printable and not.
fn id_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{0,20}",
        "[-+ 0]?[0-9]{1,17}[ ]?",
        "[ -~]{0,300}",
        "\\PC{0,40}",
        any::<String>(),
        (0u64..=u64::MAX).prop_map(|v| v.to_string()),
        (MAX_SAFE_INTEGER - 3..=MAX_SAFE_INTEGER + 3).prop_map(|v| v.to_string()),
    ]
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn integer_ids_accept_exactly_the_grammar(raw in id_like()) {
        let expected = is_safe_integer(&raw);
        for (field, parsed) in [
            ("accountId", AccountId::parse(&raw).map(AccountId::get)),
            ("userId", UserId::parse(&raw).map(UserId::get)),
        ] {
            match parsed {
                Ok(value) => {
                    prop_assert!(expected, "{field} accepted {raw:?}");
                    prop_assert_eq!(value.to_string(), raw.clone());
                }
                Err(error) => {
                    prop_assert!(!expected, "{field} refused {raw:?}: {error}");
                    prop_assert_eq!(error.field, field);
                    prop_assert!(!error.reason.contains(&raw) || raw.len() < 3);
                }
            }
        }
    }

    #[test]
    fn session_ids_accept_exactly_the_grammar(raw in id_like()) {
        // "." and ".." are refused or not depending on issue 11 item 1's fix; left out here.
        prop_assume!(raw != "." && raw != "..");
        let parsed = SessionId::parse(&raw);
        match parsed {
            Ok(id) => {
                prop_assert!(is_session_id(&raw), "accepted {raw:?}");
                prop_assert_eq!(id.as_str(), raw.as_str());
            }
            Err(error) => {
                prop_assert!(!is_session_id(&raw), "refused {raw:?}: {error}");
                prop_assert_eq!(error.field, "sessionId");
            }
        }
    }
}

proptest! {
    #![proptest_config(config(500))]

    #[test]
    fn opening_arbitrary_bodies_and_macs_never_panics(
        key in any::<[u8; 32]>(),
        body in prop_oneof!["[A-Za-z0-9+/=]{0,200}", any::<String>(), "[-+ 0-9]{0,45}\\|[A-Za-z0-9+/=]{0,120}"],
        mac in proptest::option::of(prop_oneof!["[A-Za-z0-9+/=]{0,64}", any::<String>()]),
    ) {
        let cipher = SessionCipher::new(&SessionKey::from_bytes(key));
        let _ = cipher.open(&body, mac.as_deref());
    }

    #[test]
    fn sealed_messages_open_to_what_was_sealed_and_tampering_is_caught(
        key in any::<[u8; 32]>(),
        plaintext in proptest::collection::vec(any::<u8>(), 0..2048),
        flip in any::<usize>(),
    ) {
        let cipher = SessionCipher::new(&SessionKey::from_bytes(key));
        let sealed = cipher.seal(&plaintext);
        let opened = cipher.open(&sealed.body, Some(&sealed.mac));
        prop_assert_eq!(opened.as_deref().ok(), Some(plaintext.as_slice()));

        // Another key does not open it.
        let mut other = key;
        other[0] ^= 1;
        let stranger = SessionCipher::new(&SessionKey::from_bytes(other));
        prop_assert!(stranger.open(&sealed.body, Some(&sealed.mac)).is_err());

        // A changed body character is caught by the tag (or is not base64 any more).
        let mut body = sealed.body.clone().into_bytes();
        let at = flip % body.len();
        body[at] = if body[at] == b'A' { b'B' } else { b'A' };
        let body = String::from_utf8(body).unwrap();
        if body != sealed.body {
            prop_assert!(cipher.open(&body, Some(&sealed.mac)).is_err());
        }
    }
}
