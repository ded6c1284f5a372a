//! Presence: a session is online while its leader tab's last heartbeat is younger than
//! `online_seconds` (90 s by default; the tab beats at most once a minute while visible).

use std::sync::Arc;

use serde::Serialize;

use crate::clock::{Clock, rfc3339_millis};
use crate::model::ids::{SessionId, UserId};
use crate::ports::{PortError, UpstreamStore};

/// Whether a session is online, as status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Presence {
    /// The last heartbeat is younger than the online window.
    pub online: bool,
    /// The last heartbeat, RFC 3339; `null` when it never sent one (or too long ago to remember).
    pub last_seen: Option<String>,
}

impl Presence {
    /// Presence from the last heartbeat's time (epoch ms), at `now_millis`.
    pub fn from_last_seen(last_seen: Option<u64>, now_millis: u64, online_seconds: u64) -> Self {
        Self {
            online: last_seen
                .is_some_and(|seen| now_millis.saturating_sub(seen) < online_seconds * 1_000),
            last_seen: last_seen.map(rfc3339_millis),
        }
    }
}

/// Reads sessions' presence.
#[derive(Clone)]
pub struct PresenceReader {
    store: Arc<dyn UpstreamStore>,
    clock: Arc<dyn Clock>,
    online_seconds: u64,
}

impl PresenceReader {
    /// Reads from `store`; online while younger than `online_seconds`.
    pub fn new(store: Arc<dyn UpstreamStore>, clock: Arc<dyn Clock>, online_seconds: u64) -> Self {
        Self {
            store,
            clock,
            online_seconds,
        }
    }

    /// The presence of one session.
    pub async fn of(&self, user_id: UserId, session_id: &SessionId) -> Result<Presence, PortError> {
        let last_seen = self.store.last_seen(user_id, session_id).await?;
        Ok(Presence::from_last_seen(
            last_seen,
            self.clock.now_millis(),
            self.online_seconds,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_while_the_last_beat_is_younger_than_the_window() {
        let at = 1_000_000;
        assert!(Presence::from_last_seen(Some(at), at + 89_999, 90).online);
        let gone = Presence::from_last_seen(Some(at), at + 90_000, 90);
        assert!(!gone.online);
        assert_eq!(gone.last_seen.as_deref(), Some("1970-01-01T00:16:40.000Z"));
        assert_eq!(
            Presence::from_last_seen(None, at, 90),
            Presence {
                online: false,
                last_seen: None
            }
        );
    }
}
