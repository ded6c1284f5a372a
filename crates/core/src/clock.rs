//! Time as the domain sees it: whole seconds since the Unix epoch, from a clock that tests can set.

use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time in epoch seconds.
pub trait Clock: Send + Sync {
    /// Seconds since the Unix epoch.
    fn now(&self) -> u64;
    /// Milliseconds since the Unix epoch, for what whole seconds are too coarse for (the
    /// upstream's rate limits and timestamps); a clock that only knows seconds gives whole ones.
    fn now_millis(&self) -> u64 {
        self.now() * 1_000
    }
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs())
            .unwrap_or(0)
    }

    fn now_millis(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// `epoch_millis` as RFC 3339 UTC with milliseconds (`2026-12-08T01:02:03.456Z`), the form
/// upstream answers and presence events carry.
pub fn rfc3339_millis(epoch_millis: u64) -> String {
    let seconds = epoch_millis / 1_000;
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (never negative here).
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3_600,
        of_day % 3_600 / 60,
        of_day % 60,
        epoch_millis % 1_000
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_formats_utc_with_milliseconds() {
        assert_eq!(super::rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339_millis(1_709_210_096_789),
            "2024-02-29T12:34:56.789Z"
        );
    }
}
