//! `decrypt-message AESKEY`: the Reuters demo's helper, with tag verification.

use std::io::Read;
use std::process::ExitCode;

use serde::Deserialize;
use sqs_push_core::crypto::{CryptoError, SessionCipher, SessionKey};

/// Arguments of decrypt-message.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The session's aesKey, as create returned it.
    aes_key: String,
}

/// The part of `aws sqs receive-message` output this reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReceiveOutput {
    #[serde(default)]
    messages: Vec<ReceivedMessage>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ReceivedMessage {
    #[serde(default)]
    message_id: String,
    body: String,
    #[serde(default)]
    message_attributes: Option<std::collections::HashMap<String, Attribute>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Attribute {
    string_value: Option<String>,
}

/// What happened to one message.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Tag verified, decrypted.
    Verified(String),
    /// No `mac` attribute in the input; decrypted without verification.
    Unverified(String),
    /// Rejected.
    Failed(CryptoError),
}

/// Decrypts every message of a receive-message answer.
pub fn decrypt_all(input: &str, key: &SessionKey) -> Result<Vec<(String, Outcome)>, String> {
    if input.trim().is_empty() {
        // The AWS CLI prints nothing when the long poll returned no message.
        return Ok(Vec::new());
    }
    let output: ReceiveOutput = serde_json::from_str(input)
        .map_err(|error| format!("stdin is not receive-message JSON: {error}"))?;
    let cipher = SessionCipher::new(key);
    Ok(output
        .messages
        .into_iter()
        .map(|message| {
            let mac = message
                .message_attributes
                .as_ref()
                .and_then(|attributes| attributes.get("mac"))
                .and_then(|attribute| attribute.string_value.clone());
            let outcome = match cipher.open(&message.body, mac.as_deref()) {
                Ok(plaintext) => {
                    let text = String::from_utf8_lossy(&plaintext).into_owned();
                    if mac.is_some() {
                        Outcome::Verified(text)
                    } else {
                        Outcome::Unverified(text)
                    }
                }
                Err(error) => Outcome::Failed(error),
            };
            (message.message_id, outcome)
        })
        .collect())
}

/// Prints each message; exits 1 when any was rejected.
pub fn run(args: Args) -> ExitCode {
    let key = match SessionKey::from_base64(&args.aes_key) {
        Ok(key) => key,
        Err(error) => {
            eprintln!("decrypt-message: {error}");
            return ExitCode::from(2);
        }
    };
    let mut input = String::new();
    if let Err(error) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("decrypt-message: cannot read stdin: {error}");
        return ExitCode::from(2);
    }
    let outcomes = match decrypt_all(&input, &key) {
        Ok(outcomes) => outcomes,
        Err(error) => {
            eprintln!("decrypt-message: {error}");
            return ExitCode::from(2);
        }
    };
    let mut failed = false;
    for (message_id, outcome) in outcomes {
        match outcome {
            Outcome::Verified(text) => println!("{text}"),
            Outcome::Unverified(text) => {
                eprintln!(
                    "decrypt-message: message {message_id} has no mac attribute, so it was NOT verified (receive with --message-attribute-names All)"
                );
                println!("{text}");
            }
            Outcome::Failed(error) => {
                failed = true;
                eprintln!("decrypt-message: message {message_id} rejected: {error}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn receive_output(body: &str, mac: Option<&str>) -> String {
        let mut message = json!({"MessageId": "m1", "Body": body});
        if let Some(mac) = mac {
            message["MessageAttributes"] =
                json!({"mac": {"StringValue": mac, "DataType": "String"}});
        }
        json!({ "Messages": [message] }).to_string()
    }

    #[test]
    fn verified_unverified_and_tampered_messages_are_told_apart() {
        let key = SessionKey::generate();
        let sealed = SessionCipher::new(&key).seal(br#"{"message":"Hello User"}"#);
        let verified = decrypt_all(&receive_output(&sealed.body, Some(&sealed.mac)), &key).unwrap();
        assert_eq!(
            verified[0].1,
            Outcome::Verified(r#"{"message":"Hello User"}"#.into())
        );
        let unverified = decrypt_all(&receive_output(&sealed.body, None), &key).unwrap();
        assert!(matches!(unverified[0].1, Outcome::Unverified(_)));
        let other = SessionCipher::new(&SessionKey::generate()).seal(b"{}");
        let tampered = decrypt_all(&receive_output(&sealed.body, Some(&other.mac)), &key).unwrap();
        assert_eq!(tampered[0].1, Outcome::Failed(CryptoError::MacMismatch));
    }

    #[test]
    fn empty_input_means_no_messages_and_garbage_is_an_error() {
        let key = SessionKey::generate();
        assert!(decrypt_all("", &key).unwrap().is_empty());
        assert!(decrypt_all("{}", &key).unwrap().is_empty());
        assert!(decrypt_all("not json", &key).is_err());
    }
}
