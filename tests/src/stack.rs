//! The local stack in process against an emulator of its own, optionally with the fault proxy
//! between the stack and the emulator.

use std::ops::Deref;
use std::time::{Duration, Instant};

use sqs_push_fault_proxy::FaultProxy;
use sqs_push_local::{LocalKeys, LocalOptions, LocalStack};

use crate::Emulator;

/// The key pair the test stacks accept.
pub fn test_keys() -> LocalKeys {
    LocalKeys {
        access_key: "AKIDTESTSTACK".into(),
        secret_key: "test-stack-secret".into(),
    }
}

/// A running stack: the local stack (what it derefs to), its emulator and, when asked for, the
/// fault proxy every AWS call of the stack crosses. Dropping it stops all three.
pub struct Stack {
    // Fields drop in order: the stack before the proxy it calls, both before the emulator.
    local: LocalStack,
    proxy: Option<FaultProxy>,
    /// The emulator holding the stack's tables, queues, stream and identity pool.
    pub emulator: Emulator,
}

impl Stack {
    /// A stack with the test defaults on an emulator of its own.
    pub async fn start() -> Self {
        Self::builder().start().await
    }

    /// A stack to adjust before it starts.
    pub fn builder<'a>() -> StackBuilder<'a> {
        StackBuilder::default()
    }

    /// The fault proxy between the stack and the emulator.
    ///
    /// # Panics
    /// When the stack was built without [`StackBuilder::fault_proxy`].
    pub fn proxy(&self) -> &FaultProxy {
        self.proxy
            .as_ref()
            .expect("the stack was built with .fault_proxy()")
    }
}

impl Deref for Stack {
    type Target = LocalStack;

    fn deref(&self) -> &LocalStack {
        &self.local
    }
}

/// One change to a stack's options before it starts.
type Adjustment<'a> = Box<dyn FnOnce(&mut LocalOptions) + 'a>;

/// What to change about a [`Stack`] before it starts.
#[derive(Default)]
pub struct StackBuilder<'a> {
    fault_proxy: bool,
    adjustments: Vec<Adjustment<'a>>,
}

impl<'a> StackBuilder<'a> {
    /// Puts the fault proxy between the stack and the emulator (see [`Stack::proxy`]).
    pub fn fault_proxy(mut self) -> Self {
        self.fault_proxy = true;
        self
    }

    /// Adjusts the stack's options (settings, intervals) before it starts.
    pub fn configure(mut self, adjust: impl FnOnce(&mut LocalOptions) + 'a) -> Self {
        self.adjustments.push(Box::new(adjust));
        self
    }

    /// Starts the emulator, the proxy if asked for, and the stack on a free port.
    pub async fn start(self) -> Stack {
        let emulator = Emulator::start();
        let proxy = if self.fault_proxy {
            let proxy = FaultProxy::start(&emulator.url).await;
            Some(proxy.expect("the proxy starts"))
        } else {
            None
        };
        let mut options = LocalOptions::new(&emulator.url);
        options.api_address = "127.0.0.1:0".parse().expect("a socket address");
        options.keys = test_keys();
        if let Some(proxy) = &proxy {
            options.emulator_url = proxy.url();
        }
        for adjust in self.adjustments {
            adjust(&mut options);
        }
        let local = LocalStack::start(options)
            .await
            .expect("the local stack starts");
        Stack {
            local,
            proxy,
            emulator,
        }
    }
}

/// Polls `check` every 100 ms until it returns true; panics with `what` after `limit`.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
