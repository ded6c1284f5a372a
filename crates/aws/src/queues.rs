//! Queues on SQS.

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName, SendMessageBatchRequestEntry};
use sqs_push_core::PortError;
use sqs_push_core::model::session::QueueRef;
use sqs_push_core::ports::{BatchEntry, FailedEntry, QueuePage, QueueService, QueueSpec};
use sqs_push_core::session::policy::OWNER_TAG;

use crate::errors::{missing, port_error};

/// SQS's message size limit since 2025; queues still default to 256 KiB unless told.
pub const MAX_MESSAGE_BYTES: u32 = 1_048_576;

/// The message attribute that carries the body's HMAC tag.
pub const MAC_ATTRIBUTE: &str = "mac";

/// [`QueueService`] on SQS.
#[derive(Debug, Clone)]
pub struct SqsQueues {
    client: Client,
    max_message_bytes: u32,
}

impl SqsQueues {
    /// `max_message_bytes` is set on each new queue (SQS allows up to [`MAX_MESSAGE_BYTES`]).
    pub fn new(client: Client, max_message_bytes: u32) -> Self {
        Self {
            client,
            max_message_bytes,
        }
    }
}

/// The `mac` attribute as SQS wants it.
pub fn mac_attribute(mac: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(mac)
        .build()
        .expect("data_type is set")
}

#[async_trait]
impl QueueService for SqsQueues {
    async fn create_queue(&self, spec: &QueueSpec) -> Result<QueueRef, PortError> {
        let mut request = self
            .client
            .create_queue()
            .queue_name(&spec.name)
            .attributes(
                QueueAttributeName::MaximumMessageSize,
                self.max_message_bytes.to_string(),
            )
            .tags(OWNER_TAG, &spec.owner_identity_id);
        if let Some(seconds) = spec.retention_seconds {
            request = request.attributes(
                QueueAttributeName::MessageRetentionPeriod,
                seconds.to_string(),
            );
        }
        let output = request
            .send()
            .await
            .map_err(|error| port_error("SQS CreateQueue", &spec.name, error))?;
        let url = output
            .queue_url()
            .ok_or_else(|| missing("SQS CreateQueue", &spec.name, "QueueUrl"))?;
        Ok(QueueRef {
            url: url.to_string(),
            name: spec.name.clone(),
        })
    }

    async fn send_batch(
        &self,
        queue_url: &str,
        entries: &[BatchEntry],
    ) -> Result<Vec<FailedEntry>, PortError> {
        let entries: Vec<SendMessageBatchRequestEntry> = entries
            .iter()
            .map(|entry| {
                SendMessageBatchRequestEntry::builder()
                    .id(&entry.id)
                    .message_body(&entry.message.body)
                    .message_attributes(MAC_ATTRIBUTE, mac_attribute(&entry.message.mac))
                    .build()
                    .expect("id and body are set")
            })
            .collect();
        let output = self
            .client
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|error| port_error("SQS SendMessageBatch", queue_url, error))?;
        Ok(output
            .failed()
            .iter()
            .map(|failed| FailedEntry {
                id: failed.id().to_string(),
                code: failed.code().to_string(),
                sender_fault: failed.sender_fault(),
            })
            .collect())
    }

    async fn delete_queue(&self, queue_url: &str) -> Result<(), PortError> {
        self.client
            .delete_queue()
            .queue_url(queue_url)
            .send()
            .await
            .map_err(|error| port_error("SQS DeleteQueue", queue_url, error))?;
        Ok(())
    }

    async fn list_queues_page(
        &self,
        prefix: &str,
        token: Option<&str>,
        max: u16,
    ) -> Result<QueuePage, PortError> {
        // With MaxResults SQS pages and answers a NextToken while more remain.
        let output = self
            .client
            .list_queues()
            .queue_name_prefix(prefix)
            .max_results(i32::from(max.clamp(1, 1000)))
            .set_next_token(token.map(str::to_string))
            .send()
            .await
            .map_err(|error| port_error("SQS ListQueues", prefix, error))?;
        let queues = output
            .queue_urls()
            .iter()
            .filter_map(|url| {
                let name = url.rsplit('/').next()?.to_string();
                Some(QueueRef {
                    url: url.clone(),
                    name,
                })
            })
            .collect();
        Ok(QueuePage {
            queues,
            next: output.next_token().map(str::to_string),
        })
    }

    async fn created_at(&self, queue_url: &str) -> Result<u64, PortError> {
        const OPERATION: &str = "SQS GetQueueAttributes";
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::CreatedTimestamp)
            .send()
            .await
            .map_err(|error| port_error(OPERATION, queue_url, error))?;
        output
            .attributes()
            .and_then(|attributes| attributes.get(&QueueAttributeName::CreatedTimestamp))
            .and_then(|raw| raw.parse::<f64>().ok())
            .map(|seconds| seconds.max(0.0) as u64)
            .ok_or_else(|| missing(OPERATION, queue_url, "CreatedTimestamp"))
    }
}
