//! The test vectors in docs/wire-format.md, which the Python and JavaScript paths also pass.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use sqs_push_core::crypto::{SessionCipher, SessionKey, derive_mac_key};

fn vectors() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/wire-format.md");
    let doc = std::fs::read_to_string(path).expect("docs/wire-format.md exists");
    let block = doc
        .split("<!-- vectors:begin -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- vectors:end -->").next())
        .expect("the doc marks its vectors");
    let json = block
        .trim()
        .trim_start_matches("```json")
        .trim_end_matches("```");
    let vectors: Vec<Value> = serde_json::from_str(json).expect("the vectors are a JSON array");
    assert!(vectors.len() >= 5, "expected at least 5 vectors");
    vectors
}

fn field<'a>(vector: &'a Value, name: &str) -> &'a str {
    vector[name]
        .as_str()
        .unwrap_or_else(|| panic!("vector lacks {name}"))
}

#[test]
fn every_documented_vector_seals_and_opens_exactly() {
    for vector in vectors() {
        let name = field(&vector, "name");
        let key = SessionKey::from_base64(field(&vector, "key")).unwrap();
        let counter: u128 = field(&vector, "counter").parse().unwrap();
        let plaintext = field(&vector, "plaintext");
        assert_eq!(
            STANDARD.encode(derive_mac_key(&key)),
            field(&vector, "mac_key"),
            "{name}: mac key"
        );
        let cipher = SessionCipher::new(&key);
        let sealed = cipher.seal_with_counter(counter, plaintext.as_bytes());
        assert_eq!(sealed.body, field(&vector, "body"), "{name}: body");
        assert_eq!(sealed.mac, field(&vector, "mac"), "{name}: mac");
        let opened = cipher
            .open(field(&vector, "body"), Some(field(&vector, "mac")))
            .unwrap();
        assert_eq!(opened, plaintext.as_bytes(), "{name}: decrypt");
    }
}

#[test]
fn the_documented_vectors_include_a_low_64_bit_wrap() {
    let wraps = vectors().iter().any(|vector| {
        let counter: u128 = field(vector, "counter").parse().unwrap();
        let blocks = field(vector, "plaintext").len().div_ceil(16) as u128;
        let low = counter as u64 as u128;
        low + blocks > u64::MAX as u128 + 1
    });
    assert!(
        wraps,
        "a vector must carry from the low 64 bits into the high 64"
    );
}
