//! Shared helpers: one moto emulator per test binary (while any test holds it), SDK configs
//! pointed at a proxy, and a recorder of the SDK's retry verdicts.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_credential_types::Credentials;
use aws_sdk_sqs::config::interceptors::InterceptorContext;
use aws_sdk_sqs::config::retry::{ClassifyRetry, RetryAction};
use aws_smithy_runtime_api::client::retries::classifiers::{RetryClassifierPriority, RetryReason};
use aws_smithy_types::retry::ErrorKind;
use sqs_push_fault_proxy::FaultProxy;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

/// A moto server of our own, stopped when the last test holding it drops it.
pub struct Emulator {
    child: Child,
    /// e.g. `http://127.0.0.1:40123`.
    pub url: String,
}

static SHARED: Mutex<Weak<Emulator>> = Mutex::new(Weak::new());

impl Emulator {
    /// The running emulator, or a new one: tests running at the same time share one.
    pub fn shared() -> Arc<Self> {
        let mut shared = SHARED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(emulator) = shared.upgrade() {
            return emulator;
        }
        let emulator = Arc::new(Self::start());
        *shared = Arc::downgrade(&emulator);
        emulator
    }

    /// Starts `scripts/emulator.py` from the project's venv on a free port and waits until it
    /// answers (the same way the e2e tests in tests/ do).
    fn start() -> Self {
        let root = repo_root();
        let python = root.join(".venv/bin/python");
        assert!(
            python.exists(),
            "{} is missing: run scripts/test (or scripts/emulator once) to install the emulator",
            python.display()
        );
        let port = free_port();
        let mut child = Command::new(python)
            .arg(root.join("scripts/emulator.py"))
            .args(["--port", &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the emulator starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut lines = BufReader::new(stdout).lines();
        loop {
            assert!(
                Instant::now() < deadline,
                "the emulator did not start within 60 s"
            );
            match lines.next() {
                Some(Ok(line)) if line.contains("emulator listening") => break,
                Some(_) => continue,
                None => panic!("the emulator exited before it was ready"),
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

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
