//! Each function of the local stack calls AWS as itself, as each has its own role on AWS: its own
//! SDK clients with its own access key, so the emulator's call log (scripts/call_log.py) says
//! which function made each call, and the Lambda invokes this process runs in its place are
//! written to the same log ([`CallLog`]). The IAM check (scripts/iam/check.mjs) evaluates every
//! one against that function's role in the packaged template.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use serde_json::json;
use sqs_push_functions::config::StackConfig;

/// The functions of the stack, as `crates/functions/src/bin` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LocalFunction {
    /// The HTTP API.
    Api,
    /// The Kinesis trigger and the segment workers.
    Dispatcher,
    /// Async sends.
    Sender,
    /// Async history writes and read receipts.
    History,
    /// The sessions stream's trigger.
    Cleanup,
    /// The upstream queue's trigger.
    Consumer,
}

/// The account the emulator gives every resource (moto's default), in the ARNs this stack writes.
pub const EMULATOR_ACCOUNT: &str = "123456789012";

/// The secret of every function's key pair: the emulator checks no signature.
const FUNCTION_SECRET: &str = "sqs-push-local-function";

impl LocalFunction {
    /// Every function.
    pub const ALL: [LocalFunction; 6] = [
        LocalFunction::Api,
        LocalFunction::Dispatcher,
        LocalFunction::Sender,
        LocalFunction::History,
        LocalFunction::Cleanup,
        LocalFunction::Consumer,
    ];

    /// Its name: `api`, `dispatcher`, …
    pub fn name(self) -> &'static str {
        match self {
            LocalFunction::Api => "api",
            LocalFunction::Dispatcher => "dispatcher",
            LocalFunction::Sender => "sender",
            LocalFunction::History => "history",
            LocalFunction::Cleanup => "cleanup",
            LocalFunction::Consumer => "consumer",
        }
    }

    /// The access key its calls are signed with: `AKIDLOCALFN` and the name in capitals
    /// (scripts/iam/check.mjs reads the function back from it).
    pub fn access_key(self) -> String {
        format!("AKIDLOCALFN{}", self.name().to_ascii_uppercase())
    }

    /// The stack's config with this function's credentials.
    pub fn config(self, stack: &StackConfig) -> StackConfig {
        let mut config = stack.clone();
        config.static_credentials = Some((self.access_key(), FUNCTION_SECRET.to_string()));
        config
    }

    /// An SDK config for the emulator signed as this function.
    pub async fn sdk_config(self, emulator_url: &str, region: &str) -> aws_config::SdkConfig {
        sqs_push_aws::load_sdk_config(&sqs_push_aws::Endpoint {
            region: region.to_string(),
            endpoint_url: Some(emulator_url.to_string()),
            credentials: Some(aws_credential_types::Credentials::new(
                self.access_key(),
                FUNCTION_SECRET,
                None,
                None,
                "sqs-push-local-function",
            )),
        })
        .await
    }
}

/// The file of `SQS_PUSH_CALL_LOG`, where the local stack adds the Lambda invokes it runs in
/// process, in the emulator's line format.
#[derive(Debug)]
pub struct CallLog {
    file: Mutex<File>,
}

impl CallLog {
    /// Opens `path` for appending.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            file: Mutex::new(file),
        })
    }

    /// `caller` invoked function `target` (`sqs-push-<stage>-<name>`) in `region`.
    pub fn invoke(&self, caller: LocalFunction, target_function_name: &str, region: &str) {
        let line = json!({
            "key": caller.access_key(),
            "service": "lambda",
            "action": "InvokeFunction",
            "region": region,
            "resources": [format!(
                "arn:aws:lambda:{region}:{EMULATOR_ACCOUNT}:function:{target_function_name}"
            )],
        });
        // One write of one line on an O_APPEND file: the emulator appends to it too.
        let mut text = line.to_string();
        text.push('\n');
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(error) = file.write_all(text.as_bytes()) {
            tracing::warn!(%error, "cannot write the call log");
        }
    }
}
