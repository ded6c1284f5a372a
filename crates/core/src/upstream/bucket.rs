//! A token bucket: `rate` tokens a second up to `burst`, kept in thousandths so that a
//! millisecond's refill is not lost to rounding.

/// A bucket's state as stored: tokens (thousandths) at a time (epoch milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Thousandths of a token.
    pub milli_tokens: u64,
    /// When `milli_tokens` was right.
    pub at_millis: u64,
}

/// How fast a bucket fills and how much it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: u32,
    /// Tokens it holds at most (and starts with).
    pub burst: u32,
}

impl Rate {
    /// The state after taking one token at `now_millis` from `bucket` (a full bucket when there
    /// is none yet), or `None` when it is empty.
    pub fn take(&self, bucket: Option<Bucket>, now_millis: u64) -> Option<Bucket> {
        let full = u64::from(self.burst) * 1_000;
        let filled = match bucket {
            None => full,
            Some(bucket) => {
                let elapsed = now_millis.saturating_sub(bucket.at_millis);
                bucket
                    .milli_tokens
                    .saturating_add(elapsed.saturating_mul(u64::from(self.per_second)))
                    .min(full)
            }
        };
        let left = filled.checked_sub(1_000)?;
        Some(Bucket {
            milli_tokens: left,
            at_millis: now_millis.max(bucket.map_or(0, |b| b.at_millis)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_gives_its_burst_then_its_rate() {
        let rate = Rate {
            per_second: 2,
            burst: 3,
        };
        let mut state = None;
        let mut taken = 0;
        for _ in 0..10 {
            if let Some(next) = rate.take(state, 1_000) {
                state = Some(next);
                taken += 1;
            }
        }
        assert_eq!(taken, 3, "the burst, all at once");
        assert!(
            rate.take(state, 1_499).is_none(),
            "half a second refills 0.998"
        );
        let state = rate
            .take(state, 1_500)
            .expect("half a second at 2/s is one token");
        assert!(rate.take(Some(state), 1_500).is_none());
        let later = rate.take(Some(state), 1_000_000).unwrap();
        assert_eq!(later.milli_tokens, 2_000, "never more than the burst");
    }
}
