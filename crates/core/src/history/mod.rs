//! User message history: writing rows for a dispatched message ([`write`]), reading them a page
//! at a time ([`read`]), and read receipts ([`receipts`]); plus the payload the `history`
//! function takes.

pub mod read;
pub mod receipts;
pub mod write;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use receipts::ReceiptJob;
use write::HistoryJob;

/// A payload of the `history` function: a write job, or read receipts to apply.
///
/// A write job travels as the plain [`HistoryJob`] JSON, as before receipts existed, so payloads
/// from older dispatchers still parse and older history functions still read new ones; a
/// receipt job carries `"kind": "readReceipts"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryTask {
    /// Write one message into many users' histories.
    Write(HistoryJob),
    /// Mark one user's messages read.
    Receipts(ReceiptJob),
}

/// The `kind` of a receipt job.
const RECEIPTS_KIND: &str = "readReceipts";

#[derive(Serialize)]
struct TaggedReceipts<'a> {
    kind: &'static str,
    #[serde(flatten)]
    job: &'a ReceiptJob,
}

impl Serialize for HistoryTask {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Write(job) => job.serialize(serializer),
            Self::Receipts(job) => TaggedReceipts {
                kind: RECEIPTS_KIND,
                job,
            }
            .serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for HistoryTask {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        match value.get("kind") {
            None => HistoryJob::deserialize(value)
                .map(Self::Write)
                .map_err(D::Error::custom),
            Some(kind) if kind == RECEIPTS_KIND => ReceiptJob::deserialize(value)
                .map(Self::Receipts)
                .map_err(D::Error::custom),
            Some(kind) => Err(D::Error::custom(format!(
                "unknown history task kind {kind}; expected none (a write) or \"{RECEIPTS_KIND}\""
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_jobs_travel_untagged_and_receipt_jobs_by_kind() {
        let write = r#"{"messageId":"m","message":"{}","created":5,"userIds":[1,2]}"#;
        let task: HistoryTask = serde_json::from_str(write).unwrap();
        assert!(matches!(&task, HistoryTask::Write(job) if job.user_ids.len() == 2));
        assert_eq!(serde_json::to_string(&task).unwrap(), write);

        let receipts = r#"{"kind":"readReceipts","userId":7,"messageIds":["a","b"]}"#;
        let task: HistoryTask = serde_json::from_str(receipts).unwrap();
        assert!(matches!(&task, HistoryTask::Receipts(job) if job.message_ids.len() == 2));
        assert_eq!(serde_json::to_string(&task).unwrap(), receipts);

        for bad in [
            r#"{"kind":"other","userId":7}"#,
            r#"{"kind":"readReceipts","userId":7,"messageIds":[""]}"#,
            r#"{"messageId":"m"}"#,
        ] {
            assert!(serde_json::from_str::<HistoryTask>(bad).is_err(), "{bad}");
        }
    }
}
