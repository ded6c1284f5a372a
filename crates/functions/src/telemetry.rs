//! Logging set-up: on Lambda, the runtime's own subscriber, which follows Lambda's advanced
//! logging controls (`AWS_LAMBDA_LOG_LEVEL`, `AWS_LAMBDA_LOG_FORMAT=JSON`, else `RUST_LOG`);
//! readable text locally.

use tracing_subscriber::EnvFilter;

/// Logs as the Lambda runtime's default subscriber does; serverless.yml sets the JSON format.
pub fn init_lambda() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// Human-readable logs for the local stack and tools (`RUST_LOG`, default `info`).
pub fn init_local() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}
