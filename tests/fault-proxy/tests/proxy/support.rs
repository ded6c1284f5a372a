//! What the SDK tests share: SDK configs pointed at a proxy, unique names, and a recorder of the
//! SDK's retry verdicts. The emulator is the end-to-end harness's (`sqs_push_tests::Emulator`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_credential_types::Credentials;
use aws_sdk_sqs::config::interceptors::InterceptorContext;
use aws_sdk_sqs::config::retry::{ClassifyRetry, RetryAction};
use aws_smithy_runtime_api::client::retries::classifiers::{RetryClassifierPriority, RetryReason};
use aws_smithy_types::retry::ErrorKind;
use sqs_push_fault_proxy::FaultProxy;
use sqs_push_tests::Emulator;

/// An SDK config for `endpoint` with dummy credentials and the given retry config.
pub async fn sdk_config(endpoint: &str, retry: RetryConfig) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .retry_config(retry)
        .load()
        .await
}

/// Standard retries with `attempts` attempts and almost no backoff.
pub fn retries(attempts: u32) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(attempts)
        .with_initial_backoff(Duration::from_millis(1))
        .with_max_backoff(Duration::from_millis(5))
}

/// A proxy in front of a (shared) emulator.
pub async fn proxy(emulator: &Emulator) -> FaultProxy {
    FaultProxy::start(&emulator.url)
        .await
        .expect("the proxy starts")
}

/// A unique name for test resources.
pub fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "fp-{tag}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// What the SDK's own retry classifiers decided, per attempt: runs after all of them and
/// records the verdict they reached, changing nothing.
#[derive(Clone, Debug, Default)]
pub struct Verdicts(Arc<Mutex<Vec<RetryAction>>>);

impl Verdicts {
    /// The verdicts so far.
    pub fn all(&self) -> Vec<RetryAction> {
        self.0.lock().unwrap().clone()
    }

    /// Forgets the verdicts so far.
    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }

    /// The one verdict every classification reached: `Some(kind)` when all of them (at least
    /// one) were "retry, as `kind`". The SDK classifies each failed attempt twice (its retry
    /// strategy and its connection-poisoning interceptor), so count attempts elsewhere.
    pub fn only(&self) -> Option<ErrorKind> {
        let kinds = self.kinds();
        let first = (*kinds.first()?)?;
        kinds
            .iter()
            .all(|kind| *kind == Some(first))
            .then_some(first)
    }

    /// The error kind of each verdict (`None`: not retryable).
    pub fn kinds(&self) -> Vec<Option<ErrorKind>> {
        self.all()
            .iter()
            .map(|action| match action {
                RetryAction::RetryIndicated(RetryReason::RetryableError { kind, .. }) => {
                    Some(*kind)
                }
                _ => None,
            })
            .collect()
    }
}

impl ClassifyRetry for Verdicts {
    fn classify_retry(&self, _ctx: &InterceptorContext) -> RetryAction {
        RetryAction::NoActionIndicated
    }

    fn classify_retry_v2(&self, _ctx: &InterceptorContext, previous: &RetryAction) -> RetryAction {
        self.0.lock().unwrap().push(previous.clone());
        RetryAction::NoActionIndicated
    }

    fn name(&self) -> &'static str {
        "test verdict recorder"
    }

    fn priority(&self) -> RetryClassifierPriority {
        // After every classifier the SDK installs (the highest of them is the transient-error
        // classifier).
        RetryClassifierPriority::run_after(RetryClassifierPriority::run_after(
            RetryClassifierPriority::run_after(
                RetryClassifierPriority::transient_error_classifier(),
            ),
        ))
    }
}
