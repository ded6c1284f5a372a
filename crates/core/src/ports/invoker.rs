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
}

impl AsyncFunction {
    /// The function's short name, as in `sqs-push-<stage>-<name>`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sender => "sender",
            Self::History => "history",
            Self::Dispatcher => "dispatcher",
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
}

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
        if items.is_empty() {
            return Ok(0);
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
            limits.max_bytes,
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
        let count = payloads.len();
        let handed = payloads
            .into_iter()
            .map(|bytes| self.invoke_async(function, bytes));
        futures::future::try_join_all(handed).await?;
        Ok(count)
    }
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
