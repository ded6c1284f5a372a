//! Async invocation of the `sender` and `history` functions on Lambda (InvocationType Event).

use async_trait::async_trait;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use sqs_push_core::ports::{AsyncFunction, Invoker};
use sqs_push_core::{PortError, PortErrorKind};

use crate::errors::port_error;

/// [`Invoker`] on Lambda: functions are named `<prefix>-<function>`.
#[derive(Debug, Clone)]
pub struct LambdaInvoker {
    client: Client,
    prefix: String,
}

impl LambdaInvoker {
    /// `prefix` is `sqs-push-<stage>`.
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            prefix: prefix.into(),
        }
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
}
