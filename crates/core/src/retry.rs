//! The one retry helper for the parts of a batch call that AWS reports as not done (failed
//! SendMessageBatch entries, BatchWriteItem UnprocessedItems, DeleteIdentities
//! UnprocessedIdentityIds). Whole calls are retried by the SDK's own retry policy (its standard
//! mode, configured once in `sqs-push-aws`); this covers only what the SDK cannot see as a failure.

use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::crypto::fill_random;
use crate::ports::PortError;

/// Calls made for one batch while the service keeps reporting some of it not done.
pub const MAX_ATTEMPTS: u32 = 4;

/// Exponential backoff with full jitter, as the SDK's standard strategy: a random delay in
/// `0..min(cap, base * 2^attempt)`, with base 50 ms and cap 2 s.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling_ms = (50u64 << attempt.min(10)).min(2_000);
    let mut random = [0u8; 8];
    fill_random(&mut random);
    Duration::from_millis(u64::from_le_bytes(random) % (ceiling_ms + 1))
}

/// Why [`retry_leftovers`] stopped.
#[derive(Debug)]
pub enum Stop {
    /// Everything was done.
    Done,
    /// Items were still not done after [`MAX_ATTEMPTS`] calls.
    Exhausted,
    /// The deadline passed before the next call.
    Deadline,
    /// A whole call failed (after the SDK's own retries); its items are left.
    Failed(PortError),
}

/// What is left of a batch after [`retry_leftovers`].
#[derive(Debug)]
pub struct Leftovers<T> {
    /// The items not done; empty when [`Stop::Done`].
    pub items: Vec<T>,
    /// Why the retries ended.
    pub stop: Stop,
    /// Calls made.
    pub calls: usize,
}

/// Calls `call` with the pending items until it reports none left over, at most
/// [`MAX_ATTEMPTS`] times, with [`backoff`] between calls and no call started after `deadline`.
/// `call` gets a copy of the pending items and answers with those to try again.
pub async fn retry_leftovers<'a, T: Clone + 'a>(
    mut pending: Vec<T>,
    deadline: Option<Instant>,
    call: impl Fn(Vec<T>) -> BoxFuture<'a, Result<Vec<T>, PortError>>,
) -> Leftovers<T> {
    let mut calls = 0;
    for attempt in 0..MAX_ATTEMPTS {
        if pending.is_empty() {
            break;
        }
        if attempt > 0 {
            tokio::time::sleep(backoff(attempt - 1)).await;
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            return Leftovers {
                items: pending,
                stop: Stop::Deadline,
                calls,
            };
        }
        calls += 1;
        match call(pending.clone()).await {
            Ok(again) => pending = again,
            Err(error) => {
                return Leftovers {
                    items: pending,
                    stop: Stop::Failed(error),
                    calls,
                };
            }
        }
    }
    let stop = if pending.is_empty() {
        Stop::Done
    } else {
        Stop::Exhausted
    };
    Leftovers {
        items: pending,
        stop,
        calls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::PortErrorKind;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn backoff_grows_and_stays_under_the_cap() {
        for attempt in 0..20 {
            let ceiling = (50u64 << attempt.min(10)).min(2_000);
            assert!(backoff(attempt) <= Duration::from_millis(ceiling));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn leftovers_are_retried_until_none_remain() {
        let calls = AtomicUsize::new(0);
        let outcome = retry_leftovers(vec![1, 2, 3], None, |items| {
            calls.fetch_add(1, Ordering::SeqCst);
            let again: Vec<i32> = items.into_iter().skip(1).collect();
            Box::pin(async move { Ok(again) })
        })
        .await;
        assert!(matches!(outcome.stop, Stop::Done));
        assert_eq!((outcome.calls, calls.into_inner()), (3, 3));
    }

    #[tokio::test(start_paused = true)]
    async fn items_never_done_are_left_after_the_last_attempt() {
        let outcome = retry_leftovers(vec![1], None, |items| {
            let again = items.clone();
            Box::pin(async move { Ok(again) })
        })
        .await;
        assert!(matches!(outcome.stop, Stop::Exhausted));
        assert_eq!(
            (outcome.items, outcome.calls),
            (vec![1], MAX_ATTEMPTS as usize)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_call_leaves_its_items_and_the_error() {
        let outcome = retry_leftovers(vec![1, 2], None, |_| {
            Box::pin(async { Err(PortError::new(PortErrorKind::Transient, "op", "r", "boom")) })
        })
        .await;
        assert!(matches!(outcome.stop, Stop::Failed(_)));
        assert_eq!(outcome.items, vec![1, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_called_after_the_deadline() {
        let deadline = Instant::now();
        let outcome = retry_leftovers(vec![1], Some(deadline), |_| {
            Box::pin(async { panic!("called after the deadline") })
        })
        .await;
        assert!(matches!(outcome.stop, Stop::Deadline));
        assert_eq!(outcome.calls, 0);
    }
}
