//! Partial-success rewrites: forward part of a batch, answer the rest as not done.

use serde_json::{Map, Value, json};

use crate::operation::{Operation, Protocol};
use crate::rules::FaultKind;

/// The partial-success fault that applies to this request, and its number of entries; `None`
/// when the request is no batch the proxy can split (wrong operation, protocol or body).
pub(crate) fn batch_of(
    operation: &Operation,
    protocol: Protocol,
    body: &[u8],
) -> Option<(FaultKind, usize)> {
    if !matches!(protocol, Protocol::AwsJson10 | Protocol::AwsJson11) {
        return None;
    }
    let kind = match (operation.service.as_str(), operation.name.as_str()) {
        ("dynamodb", "BatchWriteItem") => FaultKind::UnprocessedItems,
        ("sqs", "SendMessageBatch") => FaultKind::FailedEntries,
        ("cognito-identity", "DeleteIdentities") => FaultKind::UnprocessedIdentityIds,
        _ => return None,
    };
    let request: Value = serde_json::from_slice(body).ok()?;
    let count = match kind {
        FaultKind::UnprocessedItems => write_items(&request)?
            .iter()
            .map(|(_, entries)| entries.len())
            .sum(),
        FaultKind::FailedEntries => message_entries(&request)?.len(),
        _ => identity_ids(&request)?.len(),
    };
    Some((kind, count))
}

fn write_items(request: &Value) -> Option<Vec<(&String, &Vec<Value>)>> {
    let items = request.get("RequestItems")?.as_object()?;
    items
        .iter()
        .map(|(table, entries)| Some((table, entries.as_array()?)))
        .collect()
}

fn message_entries(request: &Value) -> Option<&Vec<Value>> {
    let entries = request.get("Entries")?.as_array()?;
    entries
        .iter()
        .all(|entry| entry.get("Id").is_some_and(Value::is_string))
        .then_some(entries)
}

fn identity_ids(request: &Value) -> Option<&Vec<Value>> {
    let ids = request.get("IdentityIdsToDelete")?.as_array()?;
    ids.iter().all(Value::is_string).then_some(ids)
}

/// A batch cut in two.
#[derive(Debug)]
pub(crate) struct Split {
    kind: FaultKind,
    /// The request body with only the forwarded entries; `None` when nothing is forwarded.
    pub(crate) forward: Option<Vec<u8>>,
    /// The withheld part, already in the response's shape.
    withheld: Value,
    /// How many entries were withheld.
    pub(crate) withheld_count: usize,
}

/// Cuts the request `body` by `withhold` (per entry, in `batch_of`'s order; true = withhold).
pub(crate) fn split(kind: FaultKind, body: &[u8], withhold: &[bool]) -> Option<Split> {
    let mut request: Value = serde_json::from_slice(body).ok()?;
    let withheld_at = |index: usize| withhold.get(index).copied().unwrap_or(false);
    let (kept_any, withheld, withheld_count) = match kind {
        FaultKind::UnprocessedItems => {
            let mut kept = Map::new();
            let mut unprocessed = Map::new();
            let mut index = 0;
            let mut count = 0;
            for (table, entries) in write_items(&request)? {
                let (mut keep, mut hold) = (Vec::new(), Vec::new());
                for entry in entries {
                    if withheld_at(index) {
                        hold.push(entry.clone());
                    } else {
                        keep.push(entry.clone());
                    }
                    index += 1;
                }
                count += hold.len();
                if !keep.is_empty() {
                    kept.insert(table.clone(), Value::Array(keep));
                }
                if !hold.is_empty() {
                    unprocessed.insert(table.clone(), Value::Array(hold));
                }
            }
            let kept_any = !kept.is_empty();
            request["RequestItems"] = Value::Object(kept);
            (kept_any, Value::Object(unprocessed), count)
        }
        FaultKind::FailedEntries => {
            let (mut keep, mut failed) = (Vec::new(), Vec::new());
            for (index, entry) in message_entries(&request)?.iter().enumerate() {
                if withheld_at(index) {
                    failed.push(json!({
                        "Id": entry["Id"],
                        "SenderFault": false,
                        "Code": "InternalError",
                        "Message": "withheld by sqs-push-fault-proxy",
                    }));
                } else {
                    keep.push(entry.clone());
                }
            }
            let count = failed.len();
            let kept_any = !keep.is_empty();
            request["Entries"] = Value::Array(keep);
            (kept_any, Value::Array(failed), count)
        }
        FaultKind::UnprocessedIdentityIds => {
            let (mut keep, mut unprocessed) = (Vec::new(), Vec::new());
            for (index, id) in identity_ids(&request)?.iter().enumerate() {
                if withheld_at(index) {
                    unprocessed.push(json!({"IdentityId": id, "ErrorCode": "InternalServerError"}));
                } else {
                    keep.push(id.clone());
                }
            }
            let count = unprocessed.len();
            let kept_any = !keep.is_empty();
            request["IdentityIdsToDelete"] = Value::Array(keep);
            (kept_any, Value::Array(unprocessed), count)
        }
        _ => return None,
    };
    let forward = if kept_any {
        Some(serde_json::to_vec(&request).ok()?)
    } else {
        None
    };
    Some(Split {
        kind,
        forward,
        withheld,
        withheld_count,
    })
}

impl Split {
    /// The emulator's successful answer to the forwarded part with the withheld part added;
    /// `None` when that answer is not the JSON object expected.
    pub(crate) fn merge(&self, upstream: &[u8]) -> Option<Vec<u8>> {
        let mut response: Value = serde_json::from_slice(upstream).ok()?;
        let object = response.as_object_mut()?;
        match self.kind {
            FaultKind::UnprocessedItems => {
                let unprocessed = object
                    .entry("UnprocessedItems")
                    .or_insert_with(|| Value::Object(Map::new()));
                if unprocessed.is_null() {
                    *unprocessed = Value::Object(Map::new());
                }
                let unprocessed = unprocessed.as_object_mut()?;
                for (table, entries) in self.withheld.as_object()? {
                    let list = unprocessed
                        .entry(table.clone())
                        .or_insert_with(|| Value::Array(Vec::new()));
                    list.as_array_mut()?
                        .extend(entries.as_array()?.iter().cloned());
                }
            }
            FaultKind::FailedEntries => {
                object
                    .entry("Successful")
                    .or_insert_with(|| Value::Array(Vec::new()));
                let failed = object
                    .entry("Failed")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if failed.is_null() {
                    *failed = Value::Array(Vec::new());
                }
                failed
                    .as_array_mut()?
                    .extend(self.withheld.as_array()?.iter().cloned());
            }
            _ => {
                let unprocessed = object
                    .entry("UnprocessedIdentityIds")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if unprocessed.is_null() {
                    *unprocessed = Value::Array(Vec::new());
                }
                unprocessed
                    .as_array_mut()?
                    .extend(self.withheld.as_array()?.iter().cloned());
            }
        }
        serde_json::to_vec(&response).ok()
    }

    /// The whole answer when nothing was forwarded.
    pub(crate) fn alone(&self) -> Vec<u8> {
        let response = match self.kind {
            FaultKind::UnprocessedItems => json!({"UnprocessedItems": self.withheld}),
            FaultKind::FailedEntries => json!({"Successful": [], "Failed": self.withheld}),
            _ => json!({"UnprocessedIdentityIds": self.withheld}),
        };
        serde_json::to_vec(&response).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_write_items_split_per_table() {
        let op = Operation::new("dynamodb", "BatchWriteItem");
        let body = br#"{"RequestItems":{"b":[{"PutRequest":{"Item":{"k":{"S":"b1"}}}}],
            "a":[{"PutRequest":{"Item":{"k":{"S":"a1"}}}},{"DeleteRequest":{"Key":{"k":{"S":"a2"}}}}]},
            "ReturnConsumedCapacity":"NONE"}"#;
        assert_eq!(
            batch_of(&op, Protocol::AwsJson10, body),
            Some((FaultKind::UnprocessedItems, 3))
        );
        assert_eq!(batch_of(&op, Protocol::Query, body), None);
        // Order: table a (a1, a2), then b (b1). Withhold a2 and b1.
        let split = split(FaultKind::UnprocessedItems, body, &[false, true, true]).unwrap();
        let forward: Value = serde_json::from_slice(split.forward.as_ref().unwrap()).unwrap();
        assert_eq!(forward["RequestItems"]["a"].as_array().unwrap().len(), 1);
        assert!(forward["RequestItems"].get("b").is_none());
        assert_eq!(forward["ReturnConsumedCapacity"], "NONE");
        let merged: Value =
            serde_json::from_slice(&split.merge(br#"{"UnprocessedItems":{}}"#).unwrap()).unwrap();
        assert_eq!(
            merged["UnprocessedItems"]["a"][0]["DeleteRequest"]["Key"]["k"]["S"],
            "a2"
        );
        assert_eq!(
            merged["UnprocessedItems"]["b"][0]["PutRequest"]["Item"]["k"]["S"],
            "b1"
        );
        assert_eq!(split.withheld_count, 2);
    }

    #[test]
    fn send_message_batch_failed_entries_and_odd_bodies() {
        let op = Operation::new("sqs", "SendMessageBatch");
        let body = br#"{"QueueUrl":"q","Entries":[{"Id":"1","MessageBody":"x"},{"Id":"2","MessageBody":"y"}]}"#;
        assert_eq!(
            batch_of(&op, Protocol::AwsJson10, body),
            Some((FaultKind::FailedEntries, 2))
        );
        let all = split(FaultKind::FailedEntries, body, &[true, true]).unwrap();
        assert!(all.forward.is_none());
        let alone: Value = serde_json::from_slice(&all.alone()).unwrap();
        assert_eq!(alone["Successful"], json!([]));
        assert_eq!(alone["Failed"][1]["Id"], "2");
        assert_eq!(alone["Failed"][1]["SenderFault"], false);
        for odd in [
            &b"[]"[..],
            b"{}",
            b"{\"Entries\":[{}]}",
            b"\xff",
            b"{\"Entries\":7}",
        ] {
            assert_eq!(batch_of(&op, Protocol::AwsJson10, odd), None);
            assert!(split(FaultKind::FailedEntries, odd, &[true]).is_none());
        }
        let some = split(FaultKind::FailedEntries, body, &[false, true]).unwrap();
        assert!(some.merge(b"[]").is_none());
        assert!(some.merge(b"not json").is_none());
    }
}
