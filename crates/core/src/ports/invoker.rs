//! The port for handing work to another function without waiting for it.

use async_trait::async_trait;
use serde::Serialize;

use crate::batch::cut;
use crate::ports::{PortError, PortErrorKind};

/// The functions a dispatcher hands work to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AsyncFunction {
    /// Encrypts and sends a batch of deliveries.
    Sender,
    /// Writes a batch of history rows.
    History,
    /// Pages through one scan segment of a broadcast (a `SegmentJob`); also the Kinesis consumer.
    Dispatcher,
    /// Runs the next step of an orphan sweep (a `{"sweep": cursor}`); also the sessions
    /// stream's consumer.
    Cleanup,
}

impl AsyncFunction {
    /// The function's short name, as in `sqs-push-<stage>-<name>`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sender => "sender",
            Self::History => "history",
            Self::Dispatcher => "dispatcher",
            Self::Cleanup => "cleanup",
        }
    }
}

/// Hands a payload to another function without waiting for its result.
#[async_trait]
pub trait Invoker: Send + Sync {
    /// Queues `payload` (JSON) for `function`; returns once it was accepted.
    async fn invoke_async(
        &self,
        function: AsyncFunction,
        payload: Vec<u8>,
    ) -> Result<(), PortError>;

    /// Puts `payload` — work for `function` that cannot succeed as things stand (SQS refuses
    /// it, or it kept failing through every hand-on) — in the stage's dead-letter queue, as the
    /// record Lambda's on-failure destination writes ([`destination_record`]), so
    /// `sqs-push redrive` replays it once the cause is fixed. `reason` names the cause, never
    /// a key or a message body.
    async fn dead_letter(
        &self,
        function: AsyncFunction,
        payload: Vec<u8>,
        reason: &str,
    ) -> Result<(), PortError>;
}

/// The record Lambda's on-failure destination writes for a failed async invoke, which
/// `sqs-push redrive` reads: the function (by ARN or name), the condition, the payload to invoke
/// it with again, and the error. Written by the dead-letter implementations so that work
/// dead-lettered by the service itself replays exactly like work Lambda gave up on.
pub fn destination_record(
    function_arn: &str,
    condition: &str,
    payload: &[u8],
    error_type: &str,
    error_message: &str,
) -> Result<String, PortError> {
    let payload: serde_json::Value = serde_json::from_slice(payload).map_err(|error| {
        PortError::new(
            PortErrorKind::Other,
            "dead-letter",
            function_arn.to_string(),
            format!("payload is not JSON: {error}"),
        )
    })?;
    let record = serde_json::json!({
        "version": "1.0",
        "requestContext": {
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": 1,
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
        "responsePayload": {"errorType": error_type, "errorMessage": error_message},
    });
    Ok(record.to_string())
}

/// Records of the dead-letter queue stay under this, so they fit the queue's default maximum
/// message size (256 KiB) with room for the record's envelope; larger work is split into
/// several records (`dispatch::letter`).
pub const DEAD_LETTER_BYTES: usize = 200_000;

/// Limits of one hand-off: items per payload and the payload's serialized size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandOffLimits {
    /// At most this many items per payload.
    pub max_items: usize,
    /// At most this many bytes of JSON per payload (the async-invoke limit).
    pub max_bytes: usize,
}

impl dyn Invoker + '_ {
    /// Cuts `items` into payloads built by `payload` — each within `limits` by its real
    /// serialized size — and hands them all to `function`; returns how many payloads. An item
    /// too large for any payload is refused before anything is handed off.
    pub async fn hand_off<I, P>(
        &self,
        function: AsyncFunction,
        items: Vec<I>,
        limits: HandOffLimits,
        payload: impl Fn(Vec<I>) -> P,
    ) -> Result<usize, PortError>
    where
        I: Serialize,
        P: Serialize,
    {
        self.hand_off_reserving(function, items, limits, 0, payload)
            .await
    }

    /// [`hand_off`](Self::hand_off) with `reserve` bytes of each payload kept for what the
    /// payload carries beside its items (the messages of a grouped send job): items are cut to
    /// `max_bytes - reserve`, and each whole payload must still fit `max_bytes`.
    pub async fn hand_off_reserving<I, P>(
        &self,
        function: AsyncFunction,
        items: Vec<I>,
        limits: HandOffLimits,
        reserve: usize,
        payload: impl Fn(Vec<I>) -> P,
    ) -> Result<usize, PortError>
    where
        I: Serialize,
        P: Serialize,
    {
        let payloads = payloads(function, items, limits, reserve, payload)?;
        let count = payloads.len();
        let handed = payloads
            .into_iter()
            .map(|bytes| self.invoke_async(function, bytes));
        futures::future::try_join_all(handed).await?;
        Ok(count)
    }
}

/// `items` cut into serialized payloads built by `payload`, each within `limits` by its real
/// size, items within `max_bytes - reserve`. An item too large for any payload is refused
/// before anything is handed off.
fn payloads<I, P>(
    function: AsyncFunction,
    items: Vec<I>,
    limits: HandOffLimits,
    reserve: usize,
    payload: impl Fn(Vec<I>) -> P,
) -> Result<Vec<Vec<u8>>, PortError>
where
    I: Serialize,
    P: Serialize,
{
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let empty = serde_json::to_vec(&payload(Vec::new())).expect("a payload serializes");
    let sized: Vec<(I, usize)> = items
        .into_iter()
        .map(|item| {
            // The item's JSON plus the comma that separates it from the next.
            let size = json_len(&item) + 1;
            (item, size)
        })
        .collect();
    let groups = cut(
        sized,
        limits.max_items,
        limits.max_bytes.saturating_sub(reserve),
        empty.len(),
        |(_, size)| *size,
    );
    let payloads = groups
        .into_iter()
        .map(|group| {
            let items = group.into_iter().map(|(item, _)| item).collect();
            let bytes = serde_json::to_vec(&payload(items)).expect("a payload serializes");
            if bytes.len() > limits.max_bytes {
                return Err(PortError::new(
                    PortErrorKind::TooLarge,
                    "hand-off",
                    function.name(),
                    format!(
                        "a payload of {} bytes exceeds the async-invoke limit of {} bytes",
                        bytes.len(),
                        limits.max_bytes
                    ),
                ));
            }
            Ok(bytes)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(payloads)
}

/// How many bytes `value`'s JSON takes, counted as serde_json writes it, without keeping it:
/// sizing every item of a large hand-off allocates nothing.
fn json_len(value: &impl Serialize) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, value).expect("an item serializes");
    counter.0
}
