//! Async invocation of the `sender`, `history` and `dispatcher` functions on Lambda
//! (InvocationType Event), and the stage's dead-letter queue for work that cannot succeed.

use async_trait::async_trait;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use sqs_push_core::ports::{AsyncFunction, Invoker, destination_record};
use sqs_push_core::{PortError, PortErrorKind};

use crate::errors::port_error;

/// [`Invoker`] on Lambda: functions are named `<prefix>-<function>`.
#[derive(Debug, Clone)]
pub struct LambdaInvoker {
    client: Client,
    prefix: String,
    dead_letters: Option<DeadLetterQueue>,
}

/// Where [`Invoker::dead_letter`] writes: the queue Lambda's on-failure destinations write to.
#[derive(Debug, Clone)]
struct DeadLetterQueue {
    sqs: aws_sdk_sqs::Client,
    url: String,
}

impl LambdaInvoker {
    /// `prefix` is `sqs-push-<stage>`.
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            prefix: prefix.into(),
            dead_letters: None,
        }
    }

    /// Dead-letters into the queue at `url` (the stage's `sqs-push-dlq-<stage>`).
    pub fn with_dead_letters(mut self, sqs: aws_sdk_sqs::Client, url: impl Into<String>) -> Self {
        self.dead_letters = Some(DeadLetterQueue {
            sqs,
            url: url.into(),
        });
        self
    }

    /// The function a payload goes to.
    pub fn function_name(&self, function: AsyncFunction) -> String {
        format!("{}-{}", self.prefix, function.name())
    }
}

#[async_trait]
impl Invoker for LambdaInvoker {
    async fn invoke_async(
        &self,
        function: AsyncFunction,
        payload: Vec<u8>,
    ) -> Result<(), PortError> {
        let name = self.function_name(function);
        let output = self
            .client
            .invoke()
            .function_name(&name)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|error| port_error("Lambda Invoke", &name, error))?;
        // An accepted async invoke answers 202.
        if output.status_code() != 202 {
            return Err(PortError::new(
                PortErrorKind::Transient,
                "Lambda Invoke",
                name,
                format!("expected status 202, got {}", output.status_code()),
            ));
        }
        Ok(())
    }

    async fn dead_letter(
        &self,
        function: AsyncFunction,
        payload: Vec<u8>,
        reason: &str,
    ) -> Result<(), PortError> {
        let name = self.function_name(function);
        let Some(queue) = &self.dead_letters else {
            return Err(PortError::new(
                PortErrorKind::Other,
                "dead-letter",
                name,
                "no dead-letter queue configured (SQS_PUSH_DEAD_LETTER_QUEUE_URL)",
            ));
        };
        // The function's name stands for its ARN: redrive reads the name either way.
        let record = destination_record(
            &name,
            "RefusedOrExhausted",
            &payload,
            "Undeliverable",
            reason,
        )?;
        queue
            .sqs
            .send_message()
            .queue_url(&queue.url)
            .message_body(record)
            .send()
            .await
            .map_err(|error| port_error("SQS SendMessage", &queue.url, error))?;
        Ok(())
    }
}
