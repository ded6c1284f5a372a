//! The local stack's [`StackConfig`] from the same `SQS_PUSH_*` settings the Lambda functions
//! read (docs/operations.md, "Settings"), parsed by the functions' own parser, so an operator can
//! try a setting (say `SQS_PUSH_IMPLICIT_BROADCAST=true`) locally before deploying it.
//!
//! The local stack keeps what makes it local: stage `local`, the region it was given, and the
//! emulator's endpoint, identity pool, role and developer provider (filled in at start). A
//! setting that is not set keeps the local default ([`LocalOptions::new`]), which is the
//! functions' default except where the emulator needs less (`SQS_PUSH_SEND_CONCURRENCY` 16).

use sqs_push_functions::config::{ConfigError, StackConfig};

use crate::LocalOptions;

/// Settings the local stack decides itself; set in the environment, they are ignored.
pub const LOCAL_OWNED: [&str; 9] = [
    "SQS_PUSH_STAGE",
    "SQS_PUSH_REGION",
    "SQS_PUSH_IDENTITY_POOL_ID",
    "SQS_PUSH_UNAUTH_ROLE_ARN",
    "SQS_PUSH_ENDPOINT_URL",
    "SQS_PUSH_PARTITION",
    "SQS_PUSH_DEVELOPER_PROVIDER",
    "SQS_PUSH_BROWSER_ROLE_ID",
    "SQS_PUSH_UPSTREAM_QUEUE_URL",
];

/// The local defaults with every `SQS_PUSH_*` setting `lookup` (the environment) knows applied;
/// a bad value is the functions' error, naming its variable.
pub fn stack_config(
    region: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<StackConfig, ConfigError> {
    let mut defaults = LocalOptions::new("").stack;
    defaults.region = region.to_string();
    let local_default = |name: &str| match name {
        "SQS_PUSH_STAGE" => Some(defaults.stage.clone()),
        "SQS_PUSH_REGION" => Some(defaults.region.clone()),
        // Required by the parser; the bootstrap fills in the emulator's own.
        "SQS_PUSH_IDENTITY_POOL_ID" | "SQS_PUSH_UNAUTH_ROLE_ARN" => {
            Some("filled-in-at-start".to_string())
        }
        "SQS_PUSH_SEND_CONCURRENCY" => Some(defaults.send_concurrency.to_string()),
        _ => None,
    };
    let mut config = StackConfig::from_lookup(|name| {
        if LOCAL_OWNED.contains(&name) {
            return local_default(name);
        }
        lookup(name).or_else(|| local_default(name))
    })?;
    config.identity_pool_id = defaults.identity_pool_id.clone();
    config.unauthenticated_role_arn = defaults.unauthenticated_role_arn.clone();
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn nothing_set_is_the_local_defaults() {
        let config = stack_config("us-east-1", env(&[])).unwrap();
        let local = LocalOptions::new("").stack;
        assert_eq!(config.stage, "local");
        assert_eq!(config.send_concurrency, local.send_concurrency);
        assert_eq!(
            config.dispatch.implicit_broadcast,
            local.dispatch.implicit_broadcast
        );
        assert_eq!(config.dispatch.direct_limit, local.dispatch.direct_limit);
        assert_eq!(config.idle_seconds, local.idle_seconds);
        assert_eq!(config.identity_pool_id, "");
        assert_eq!(config.developer_provider_name, "sqs-push.local");
    }

    #[test]
    fn the_functions_settings_apply_locally() {
        let config = stack_config(
            "eu-west-1",
            env(&[
                ("SQS_PUSH_IMPLICIT_BROADCAST", "true"),
                ("SQS_PUSH_DIRECT_LIMIT", "7"),
                ("SQS_PUSH_SEND_CONCURRENCY", "4"),
                ("SQS_PUSH_HISTORY_TTL_SECONDS", "600"),
            ]),
        )
        .unwrap();
        assert!(config.dispatch.implicit_broadcast);
        assert_eq!(config.dispatch.direct_limit, 7);
        assert_eq!(config.send_concurrency, 4);
        assert_eq!(config.history_ttl_seconds, 600);
        assert_eq!(config.region, "eu-west-1");
    }

    #[test]
    fn a_bad_setting_names_its_variable() {
        let error =
            stack_config("us-east-1", env(&[("SQS_PUSH_IMPLICIT_BROADCAST", "yes")])).unwrap_err();
        assert_eq!(error.variable, "SQS_PUSH_IMPLICIT_BROADCAST");
    }

    #[test]
    fn what_makes_the_stack_local_cannot_be_set() {
        let config = stack_config(
            "us-east-1",
            env(&[
                ("SQS_PUSH_STAGE", "prod"),
                ("SQS_PUSH_ENDPOINT_URL", "https://example.com"),
                ("SQS_PUSH_DEVELOPER_PROVIDER", "login.example.com"),
            ]),
        )
        .unwrap();
        assert_eq!(config.stage, "local");
        assert_eq!(config.endpoint_url, None);
        assert_eq!(config.developer_provider_name, "sqs-push.local");
    }
}
