//! Dead letters: work that cannot be done as things stand, as the dead-letter queue keeps it
//! for `sqs-push redrive`. A letter holds one copy of its text — a message's JSON, or a poison
//! Kinesis record's data — and, for a message, references to the deliveries it was for
//! (queue, session): never a session key. A replay reads each session's key again from the
//! sessions table, so a session that ended meanwhile is reported gone, not resent.
//!
//! A letter larger than one dead-letter record ([`DEAD_LETTER_BYTES`]) is split into parts
//! that share its id and header; redrive joins them again ([`join`]). So any message the API
//! accepts (up to the queues' MaximumMessageSize, 1 MiB) and any Kinesis record can be
//! dead-lettered in a queue whose own limit is 256 KiB.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use futures::StreamExt;

use crate::crypto::fill_random;
use crate::dispatch::send::{Delivery, SendJob};
use crate::model::ids::{SessionId, UserId};
use crate::model::recipient::Recipient;
use crate::ports::{
    AsyncFunction, DEAD_LETTER_BYTES, Invoker, PortError, PortErrorKind, SessionStore,
};

/// Session reads in flight at once while a replay resolves a letter's deliveries.
const RESOLVE_CONCURRENCY: usize = 16;

/// Which session a delivery was for: what a dead letter names instead of its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRef {
    /// The user.
    pub user_id: UserId,
    /// The session.
    pub session_id: SessionId,
}

/// One delivery of a dead-lettered message: its queue and session, no key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRef {
    /// The queue the message was for.
    pub queue_url: String,
    /// The session that queue belonged to; `None` only for a delivery handed between
    /// functions by a version that did not name sessions (a replay reports it unresolvable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionRef>,
}

/// What a letter is about; repeated in each of its parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum About {
    /// A message SQS refused for good, or that kept failing through every hand-on: the
    /// letter's text is the message's JSON, its deliveries the sessions it did not reach.
    #[serde(rename_all = "camelCase")]
    Undelivered {
        /// The message id (clients dedupe a replay by it).
        message_id: String,
        /// How many `sender` invocations had handed the deliveries on when they were given up.
        attempt: u32,
    },
    /// A Kinesis record that can never be dispatched as written: the letter's text is its
    /// data, base64 (standard alphabet, as Kinesis shows it).
    #[serde(rename_all = "camelCase")]
    Poison {
        /// The shard the record was read from.
        shard_id: String,
        /// Its sequence number.
        sequence_number: String,
        /// Why it cannot be dispatched (field names, never values).
        reason: String,
    },
}

/// A whole letter.
#[derive(Clone, PartialEq, Eq)]
pub struct Letter {
    /// Shared by all its parts.
    pub id: String,
    /// What it is about.
    pub about: About,
    /// The message's JSON, or the record's data in base64.
    pub text: String,
    /// The deliveries of an undelivered message; empty for a poison record.
    pub deliveries: Vec<DeliveryRef>,
}

impl fmt::Debug for Letter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Letter")
            .field("id", &self.id)
            .field("about", &self.about)
            .field("text_bytes", &self.text.len())
            .field("deliveries", &self.deliveries.len())
            .finish()
    }
}

/// One part of a letter: one dead-letter record's payload.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LetterPart {
    /// The letter's id.
    pub letter: String,
    /// This part's number, from 0.
    pub part: u32,
    /// How many parts the letter has.
    pub parts: u32,
    /// What the letter is about.
    pub about: About,
    /// This part's piece of the letter's text (the pieces join in part order).
    pub text: String,
    /// This part's share of the letter's deliveries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<DeliveryRef>,
}

impl fmt::Debug for LetterPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LetterPart")
            .field("letter", &self.letter)
            .field("part", &self.part)
            .field("parts", &self.parts)
            .field("about", &self.about)
            .field("text_bytes", &self.text.len())
            .field("deliveries", &self.deliveries.len())
            .finish()
    }
}

impl Letter {
    /// A letter with a fresh random id.
    pub fn new(about: About, text: String, deliveries: Vec<DeliveryRef>) -> Self {
        let mut bytes = [0u8; 12];
        fill_random(&mut bytes);
        Self {
            id: URL_SAFE_NO_PAD.encode(bytes),
            about,
            text,
            deliveries,
        }
    }

    /// The letter cut into parts whose payloads each stay within `max_bytes` of JSON: the text
    /// first, cut at character boundaries, then the deliveries.
    pub fn split(&self, max_bytes: usize) -> Vec<LetterPart> {
        let header = LetterPart {
            letter: self.id.clone(),
            // Room for the largest numbers a part can carry.
            part: u32::MAX,
            parts: u32::MAX,
            about: self.about.clone(),
            text: String::new(),
            deliveries: Vec::new(),
        };
        // The empty part, plus the `,"deliveries":[]` a part with deliveries adds.
        let room = max_bytes
            .saturating_sub(json_len(&header) + r#","deliveries":[]"#.len())
            .max(1_024);
        let mut parts: Vec<(String, Vec<DeliveryRef>)> = vec![(String::new(), Vec::new())];
        let mut used = 0;
        for character in self.text.chars() {
            let size = escaped_len(character);
            if used + size > room {
                parts.push((String::new(), Vec::new()));
                used = 0;
            }
            parts
                .last_mut()
                .expect("one part at least")
                .0
                .push(character);
            used += size;
        }
        for delivery in &self.deliveries {
            // Its JSON and the comma before the next.
            let size = json_len(delivery) + 1;
            if used + size > room {
                parts.push((String::new(), Vec::new()));
                used = 0;
            }
            parts
                .last_mut()
                .expect("one part at least")
                .1
                .push(delivery.clone());
            used += size;
        }
        let count = parts.len() as u32;
        parts
            .into_iter()
            .enumerate()
            .map(|(index, (text, deliveries))| LetterPart {
                letter: self.id.clone(),
                part: index as u32,
                parts: count,
                about: self.about.clone(),
                text,
                deliveries,
            })
            .collect()
    }

    /// Puts the letter in the dead-letter queue as a record of `function` per part (so a
    /// listing names who gave it up); returns how many records. `reason` names the cause,
    /// never a key or a message body.
    pub async fn post(
        &self,
        invoker: &dyn Invoker,
        function: AsyncFunction,
        reason: &str,
    ) -> Result<usize, PortError> {
        let parts = self.split(DEAD_LETTER_BYTES);
        let count = parts.len();
        let writes = parts.iter().map(|part| {
            let payload = serde_json::to_vec(part).expect("a letter part serializes");
            invoker.dead_letter(function, payload, reason)
        });
        futures::future::try_join_all(writes).await?;
        Ok(count)
    }
}

/// An undelivered letter made sendable again: the sessions it names that still exist, with
/// the keys read now, and those that are gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The message for every session still there (its row names the same queue and is
    /// within its ttl), at the attempt the letter was given up at.
    pub job: SendJob,
    /// Deliveries whose session ended since (no row, a row that now names another queue, a
    /// ttl passed) or that name no session: reported, not resent.
    pub gone: Vec<DeliveryRef>,
}

impl Letter {
    /// Reads the key of each session an undelivered letter names again from `store`; `None`
    /// for a poison letter, which has no deliveries to resolve.
    pub async fn resolve(
        &self,
        store: &dyn SessionStore,
        now: u64,
    ) -> Result<Option<Resolved>, PortError> {
        let About::Undelivered { attempt, .. } = &self.about else {
            return Ok(None);
        };
        let looked_up: Vec<Result<(DeliveryRef, Option<Delivery>), PortError>> =
            futures::stream::iter(self.deliveries.iter().cloned())
                .map(|reference| async move {
                    let Some(session) = &reference.session else {
                        return Ok((reference, None));
                    };
                    let row = store.get(session.user_id, &session.session_id).await?;
                    let delivery = row
                        .filter(|row| row.queue.url == reference.queue_url && row.is_live(now))
                        .map(|row| Delivery::to(&Recipient::from(&row), 0));
                    Ok((reference, delivery))
                })
                .buffered(RESOLVE_CONCURRENCY)
                .collect()
                .await;
        let mut resolved = Resolved {
            job: SendJob {
                messages: vec![self.text.clone()],
                deliveries: Vec::new(),
                attempt: *attempt,
            },
            gone: Vec::new(),
        };
        for result in looked_up {
            match result? {
                (_, Some(delivery)) => resolved.job.deliveries.push(delivery),
                (reference, None) => resolved.gone.push(reference),
            }
        }
        Ok(Some(resolved))
    }
}

/// Why parts do not make a letter.
fn broken(letter: &str, why: String) -> PortError {
    PortError::new(PortErrorKind::Other, "join letter", letter.to_string(), why)
}

/// Joins the parts of one letter (in any order) again; fails when a part is missing, doubled
/// or from another letter.
pub fn join(mut parts: Vec<LetterPart>) -> Result<Letter, PortError> {
    let Some(first) = parts.first() else {
        return Err(broken("", "no parts".to_string()));
    };
    let (id, count, about) = (first.letter.clone(), first.parts, first.about.clone());
    parts.sort_by_key(|part| part.part);
    let numbers: Vec<u32> = parts.iter().map(|part| part.part).collect();
    if numbers != (0..count).collect::<Vec<_>>() {
        return Err(broken(&id, format!("has parts {numbers:?} of {count}")));
    }
    if parts
        .iter()
        .any(|part| part.letter != id || part.parts != count || part.about != about)
    {
        return Err(broken(&id, "parts of different letters".to_string()));
    }
    let mut text = String::new();
    let mut deliveries = Vec::new();
    for part in parts {
        text.push_str(&part.text);
        deliveries.extend(part.deliveries);
    }
    Ok(Letter {
        id,
        about,
        text,
        deliveries,
    })
}

/// The most bytes serde_json writes for `character` inside a string.
fn escaped_len(character: char) -> usize {
    match character {
        '"' | '\\' => 2,
        // `\n` and friends take 2, other control characters `\u00XX`: 6 covers both.
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// How many bytes `value`'s JSON takes.
fn json_len(value: &impl Serialize) -> usize {
    serde_json::to_vec(value).map_or(0, |json| json.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(n: usize) -> DeliveryRef {
        DeliveryRef {
            queue_url: format!("https://sqs.eu-west-1.amazonaws.com/1/sqs-push-prod_{n:043}"),
            session: Some(SessionRef {
                user_id: UserId::try_from(n as u64).unwrap(),
                session_id: SessionId::parse(&format!("s\"{n}\\")).unwrap(),
            }),
        }
    }

    fn undelivered(text: String, deliveries: usize) -> Letter {
        Letter::new(
            About::Undelivered {
                message_id: "m-1".into(),
                attempt: 3,
            },
            text,
            (0..deliveries).map(delivery).collect(),
        )
    }

    #[test]
    fn a_small_letter_is_one_part() {
        let letter = undelivered(r#"{"message":"hi"}"#.into(), 3);
        let parts = letter.split(DEAD_LETTER_BYTES);
        assert_eq!(parts.len(), 1);
        assert_eq!((parts[0].part, parts[0].parts), (0, 1));
        assert_eq!(join(parts).unwrap(), letter);
    }

    #[test]
    fn the_largest_message_and_many_deliveries_split_into_parts_within_the_limit_and_join_again() {
        // Quotes, backslashes, control and multi-byte characters: the text escapes to more than
        // its own size, and cuts must fall between characters.
        let text: String = "\"\\\u{1}é€😀x".repeat(60_000);
        let letter = undelivered(text, 5_000);
        let parts = letter.split(DEAD_LETTER_BYTES);
        assert!(parts.len() > 5, "{} parts", parts.len());
        for part in &parts {
            let bytes = serde_json::to_vec(part).unwrap();
            assert!(bytes.len() <= DEAD_LETTER_BYTES, "{} bytes", bytes.len());
            let back: LetterPart = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(&back, part);
        }
        let mut shuffled = parts.clone();
        shuffled.reverse();
        assert_eq!(join(shuffled).unwrap(), letter);
        let mut missing = parts;
        missing.remove(2);
        assert!(join(missing).is_err(), "a missing part is no letter");
    }

    #[test]
    fn parts_carry_no_key_and_print_no_text() {
        let letter = undelivered(r#"{"message":"secret body"}"#.into(), 1);
        let json = String::from_utf8(serde_json::to_vec(&letter.split(1_000)[0]).unwrap()).unwrap();
        assert!(!json.contains("aesKey"), "{json}");
        assert!(json.contains("\"userId\":0"), "{json}");
        let printed = format!("{letter:?} {:?}", letter.split(1_000)[0]);
        assert!(!printed.contains("secret body"), "{printed}");
    }
}
