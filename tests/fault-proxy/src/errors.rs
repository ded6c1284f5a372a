//! Injected error responses, in the shape each protocol's SDK parses.

use std::sync::atomic::{AtomicU64, Ordering};

use http::{HeaderValue, Response, StatusCode};
use hyper::body::Bytes;
use serde_json::json;

use crate::operation::{Operation, Protocol};

/// What the answer stands for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ErrorClass<'a> {
    /// HTTP 500.
    Server,
    /// The service's throttling error.
    Throttling,
    /// A caller-chosen error.
    Custom { status: u16, code: &'a str },
}

const MESSAGE: &str = "injected by sqs-push-fault-proxy";

/// A request id of our own, so the SDK's request-id parsing has something to read.
pub(crate) fn request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("fault-proxy-{:012}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Status and code for an error class on an operation in a protocol.
pub(crate) fn status_and_code<'a>(
    class: ErrorClass<'a>,
    operation: &Operation,
    protocol: Protocol,
) -> (u16, &'a str) {
    let service = operation.service.as_str();
    match class {
        ErrorClass::Custom { status, code } => (status, code),
        ErrorClass::Server => match protocol {
            Protocol::Query => (500, "InternalError"),
            Protocol::RestJson => (500, "ServiceException"),
            _ if service == "sqs" => (500, "InternalError"),
            _ => (500, "InternalFailure"),
        },
        ErrorClass::Throttling => match (protocol, service) {
            (_, "sqs") => (400, "RequestThrottled"),
            (Protocol::Query, _) => (400, "Throttling"),
            (Protocol::RestJson, _) | (_, "cognito-identity" | "cognito-idp") => {
                (429, "TooManyRequestsException")
            }
            (_, "dynamodb" | "kinesis") => (400, "ProvisionedThroughputExceededException"),
            _ => (400, "ThrottlingException"),
        },
    }
}

/// The smithy namespace that `__type` carries for a service (the SDK strips it).
fn namespace(service: &str, code: &str) -> &'static str {
    match (service, code) {
        (_, "InternalFailure" | "ThrottlingException") => "com.amazon.coral.service",
        ("dynamodb" | "dynamodbstreams", _) => "com.amazonaws.dynamodb.v20120810",
        ("sqs", _) => "com.amazonaws.sqs",
        ("kinesis", _) => "com.amazonaws.kinesis",
        ("cognito-identity", _) => "com.amazonaws.cognitoidentity",
        _ => "com.amazon.coral.service",
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The full error response.
pub(crate) fn error_response(
    class: ErrorClass<'_>,
    operation: &Operation,
    protocol: Protocol,
) -> Response<Bytes> {
    let (status, code) = status_and_code(class, operation, protocol);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let fault_type = if status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    let request_id = request_id();
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    let header = |value: &str| {
        HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
    };
    headers.insert("x-amzn-requestid", header(&request_id));
    let body = match protocol {
        Protocol::Query => {
            headers.insert("content-type", HeaderValue::from_static("text/xml"));
            headers.insert("x-amz-request-id", header(&request_id));
            format!(
                "<?xml version=\"1.0\"?>\n<ErrorResponse><Error><Type>{fault_type}</Type>\
                 <Code>{}</Code><Message>{MESSAGE}</Message></Error>\
                 <RequestId>{request_id}</RequestId></ErrorResponse>",
                xml_escape(code)
            )
        }
        Protocol::RestJson => {
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            headers.insert("x-amzn-errortype", header(code));
            let kind = if status.is_server_error() {
                "Service"
            } else {
                "User"
            };
            json!({"Type": kind, "message": MESSAGE}).to_string()
        }
        Protocol::AwsJson10 | Protocol::AwsJson11 | Protocol::Unknown => {
            let content_type = if protocol == Protocol::AwsJson11 {
                "application/x-amz-json-1.1"
            } else {
                "application/x-amz-json-1.0"
            };
            headers.insert("content-type", HeaderValue::from_static(content_type));
            headers.insert("x-amzn-errortype", header(code));
            if operation.service == "sqs" {
                // SQS's JSON protocol is query-compatible: the SDK takes the code from here.
                headers.insert(
                    "x-amzn-query-error",
                    header(&format!("{code};{fault_type}")),
                );
            }
            let ns = namespace(&operation.service, code);
            json!({"__type": format!("{ns}#{code}"), "message": MESSAGE}).to_string()
        }
    };
    *response.body_mut() = Bytes::from(body);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_per_protocol() {
        let sqs = Operation::new("sqs", "SendMessageBatch");
        let r = error_response(ErrorClass::Throttling, &sqs, Protocol::AwsJson10);
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["x-amzn-query-error"], "RequestThrottled;Sender");
        let body: serde_json::Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(body["__type"], "com.amazonaws.sqs#RequestThrottled");

        let ddb = Operation::new("dynamodb", "BatchWriteItem");
        let r = error_response(ErrorClass::Server, &ddb, Protocol::AwsJson10);
        assert_eq!(r.status(), 500);
        assert_eq!(r.headers()["x-amzn-errortype"], "InternalFailure");

        let sts = Operation::new("sts", "AssumeRole");
        let r = error_response(ErrorClass::Server, &sts, Protocol::Query);
        let text = std::str::from_utf8(r.body()).unwrap();
        assert!(
            text.contains("<Type>Receiver</Type><Code>InternalError</Code>"),
            "{text}"
        );

        let custom = ErrorClass::Custom {
            status: 1000,
            code: "a<b\n",
        };
        let r = error_response(custom, &sts, Protocol::Query);
        assert_eq!(r.status(), 500);
        assert!(std::str::from_utf8(r.body()).unwrap().contains("a&lt;b"));
        let r = error_response(custom, &ddb, Protocol::AwsJson11);
        assert_eq!(r.headers()["x-amzn-errortype"], "invalid");
    }
}
