//! The dispatch settings a stack reads from its `SQS_PUSH_*` variables.

use super::DispatchSettings;
use crate::settings::{ConfigError, Lookup, flag, setting};

impl DispatchSettings {
    /// The defaults, with what the variables set; [`SizeLimits`](crate::model::message::SizeLimits)
    /// are left to the caller, who knows the queues' message size.
    pub fn from_lookup(lookup: Lookup<'_>) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let direct_limit = setting(lookup, "SQS_PUSH_DIRECT_LIMIT", 0..=100_000)?;
        Ok(Self {
            broadcast_segments: setting(lookup, "SQS_PUSH_BROADCAST_SEGMENTS", 1..=256)?
                .unwrap_or(defaults.broadcast_segments),
            scan_page: setting(lookup, "SQS_PUSH_SCAN_PAGE", 1..=100_000)?
                .unwrap_or(defaults.scan_page),
            large_account: setting(lookup, "SQS_PUSH_LARGE_ACCOUNT", 0..=100_000)?
                .unwrap_or(defaults.large_account),
            direct_limit: direct_limit.unwrap_or(defaults.direct_limit),
            // Queue URLs are reported for exactly the fan-outs sent directly.
            report_urls_up_to: direct_limit.unwrap_or(defaults.report_urls_up_to),
            sender_batch: setting(lookup, "SQS_PUSH_SENDER_BATCH", 1..=100_000)?
                .unwrap_or(defaults.sender_batch),
            history_batch: setting(lookup, "SQS_PUSH_HISTORY_BATCH", 1..=100_000)?
                .unwrap_or(defaults.history_batch),
            payload_limit: setting(lookup, "SQS_PUSH_INVOKE_PAYLOAD_LIMIT", 16_384..=1_048_576)?
                .unwrap_or(defaults.payload_limit),
            implicit_broadcast: flag(lookup, "SQS_PUSH_IMPLICIT_BROADCAST")?
                .unwrap_or(defaults.implicit_broadcast),
            limits: defaults.limits,
        })
    }
}
