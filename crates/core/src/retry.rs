//! Backoff for retrying the parts of a batch call that AWS reported as unprocessed (failed
//! SendMessageBatch entries, BatchWriteItem UnprocessedItems, DeleteIdentities
//! UnprocessedIdentityIds). Whole calls are retried by the SDK's own retry policy; this covers only
//! what the SDK cannot see as a failure.

use std::time::Duration;

use crate::crypto::fill_random;

/// How many times a batch's leftovers are sent again before they are reported as failed.
pub const MAX_ATTEMPTS: u32 = 4;

/// Exponential backoff with full jitter, as the SDK's standard strategy: a random delay in
/// `0..min(cap, base * 2^attempt)`, with base 50 ms and cap 2 s.
pub fn backoff(attempt: u32) -> Duration {
    let ceiling_ms = (50u64 << attempt.min(10)).min(2_000);
    let mut random = [0u8; 8];
    fill_random(&mut random);
    Duration::from_millis(u64::from_le_bytes(random) % (ceiling_ms + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_under_the_cap() {
        for attempt in 0..20 {
            let ceiling = (50u64 << attempt.min(10)).min(2_000);
            assert!(backoff(attempt) <= Duration::from_millis(ceiling));
        }
    }
}
