//! Which AWS operation a request calls, and in which wire protocol.

use std::fmt;

use http::{HeaderMap, Method};

/// An AWS operation as the proxy identified it, e.g. `sqs` / `SendMessageBatch`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Operation {
    /// Service, lower case as in the SigV4 scope: `sqs`, `dynamodb`, `dynamodbstreams`,
    /// `cognito-identity`, `kinesis`, `sts`, `iam`, `lambda`, or `unknown`.
    pub service: String,
    /// Operation name as in the API reference (`BatchWriteItem`), or `Unknown`.
    pub name: String,
}

impl Operation {
    /// An operation from its service and name.
    pub fn new(service: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            service: service.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.service, self.name)
    }
}

/// The wire protocol of a request; it decides the shape of an injected error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `X-Amz-Target` + `application/x-amz-json-1.0` (DynamoDB, DynamoDB Streams, SQS).
    AwsJson10,
    /// `X-Amz-Target` + `application/x-amz-json-1.1` (Kinesis, Cognito).
    AwsJson11,
    /// Form-encoded `Action=...` answered with XML (STS, IAM, SQS's older protocol).
    Query,
    /// REST + JSON by path (Lambda).
    RestJson,
    /// Anything else.
    Unknown,
}

/// Identifies the operation and protocol of a request from its method, path (with query),
/// headers and body. Never fails: what it cannot tell is `unknown` / `Unknown`.
pub fn identify(
    method: &Method,
    path_and_query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (Operation, Protocol) {
    let scope_service = signing_service(headers);
    if let Some(target) = header_str(headers, "x-amz-target") {
        let (prefix, name) = target.rsplit_once('.').unwrap_or(("", target));
        let service = target_service(prefix)
            .map(str::to_string)
            .or(scope_service)
            .unwrap_or_else(|| "unknown".into());
        let protocol = if header_str(headers, "content-type")
            .is_some_and(|value| value.contains("x-amz-json-1.1"))
        {
            Protocol::AwsJson11
        } else {
            Protocol::AwsJson10
        };
        return (Operation::new(service, name), protocol);
    }
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    let action = form_value(body, "Action")
        .or_else(|| form_value(query.as_bytes(), "Action"))
        .filter(|action| !action.is_empty());
    if let Some(action) = action {
        let service = scope_service
            .or_else(|| query_service(&action, body).map(str::to_string))
            .unwrap_or_else(|| "unknown".into());
        return (Operation::new(service, action), Protocol::Query);
    }
    if let Some(name) = lambda_operation(method, path) {
        return (Operation::new("lambda", name), Protocol::RestJson);
    }
    let service = scope_service.unwrap_or_else(|| "unknown".into());
    (Operation::new(service, "Unknown"), Protocol::Unknown)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The service of the SigV4 credential scope: `Credential=AKID/date/region/SERVICE/aws4_request`.
fn signing_service(headers: &HeaderMap) -> Option<String> {
    let auth = header_str(headers, "authorization")?;
    let credential = auth.split("Credential=").nth(1)?;
    let scope = credential.split([',', ' ']).next()?;
    let mut parts = scope.split('/');
    let service = parts.nth(3)?;
    (!service.is_empty()).then(|| service.to_string())
}

fn target_service(prefix: &str) -> Option<&'static str> {
    Some(match prefix {
        p if p.starts_with("DynamoDBStreams_") => "dynamodbstreams",
        p if p.starts_with("DynamoDB_") => "dynamodb",
        "AmazonSQS" => "sqs",
        "AWSCognitoIdentityService" => "cognito-identity",
        "AWSCognitoIdentityProviderService" => "cognito-idp",
        p if p.starts_with("Kinesis_") => "kinesis",
        _ => return None,
    })
}

/// The service of an unsigned query-protocol call (STS's web-identity calls are unsigned).
fn query_service(action: &str, body: &[u8]) -> Option<&'static str> {
    const STS: &[&str] = &[
        "AssumeRole",
        "AssumeRoleWithWebIdentity",
        "AssumeRoleWithSAML",
        "GetCallerIdentity",
        "GetSessionToken",
        "GetFederationToken",
        "DecodeAuthorizationMessage",
        "GetAccessKeyInfo",
    ];
    if STS.contains(&action) {
        Some("sts")
    } else if form_value(body, "QueueUrl").is_some() || form_value(body, "QueueName").is_some() {
        Some("sqs")
    } else {
        None
    }
}

fn lambda_operation(method: &Method, path: &str) -> Option<&'static str> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (version, rest) = segments.split_first()?;
    let is_date = version.len() == 10 && version.bytes().all(|b| b.is_ascii_digit() || b == b'-');
    if !is_date || rest.first() != Some(&"functions") {
        return None;
    }
    Some(match (method, &rest[1..]) {
        (&Method::POST, [_, "invocations"]) => "Invoke",
        (&Method::POST, [_, "invoke-async"]) => "InvokeAsync",
        (&Method::GET, [_]) => "GetFunction",
        (&Method::DELETE, [_]) => "DeleteFunction",
        (&Method::POST, []) => "CreateFunction",
        (&Method::GET, []) => "ListFunctions",
        _ => "Unknown",
    })
}

/// The first value of `key` in a form-encoded body, percent-decoded; `None` when absent or
/// not UTF-8.
pub(crate) fn form_value(body: &[u8], key: &str) -> Option<String> {
    for pair in body.split(|&b| b == b'&') {
        let mut kv = pair.splitn(2, |&b| b == b'=');
        let k = kv.next().unwrap_or_default();
        let v = kv.next();
        if let Some(v) = v
            && percent_decode(k).as_deref() == Some(key)
        {
            return percent_decode(v);
        }
    }
    None
}

fn percent_decode(input: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(input.len());
    let mut bytes = input.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = (*bytes.next()? as char).to_digit(16)?;
                let lo = (*bytes.next()? as char).to_digit(16)?;
                out.push((hi * 16 + lo) as u8);
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn json_targets_name_service_and_operation() {
        let cases = [
            (
                "DynamoDB_20120810.BatchWriteItem",
                "dynamodb",
                "BatchWriteItem",
            ),
            ("AmazonSQS.SendMessageBatch", "sqs", "SendMessageBatch"),
            (
                "AWSCognitoIdentityService.DeleteIdentities",
                "cognito-identity",
                "DeleteIdentities",
            ),
            ("Kinesis_20131202.GetRecords", "kinesis", "GetRecords"),
            (
                "DynamoDBStreams_20120810.GetRecords",
                "dynamodbstreams",
                "GetRecords",
            ),
        ];
        for (target, service, name) in cases {
            let (op, _) = identify(
                &Method::POST,
                "/",
                &headers(&[("x-amz-target", target)]),
                b"{}",
            );
            assert_eq!(op, Operation::new(service, name), "{target}");
        }
        let (_, protocol) = identify(
            &Method::POST,
            "/",
            &headers(&[
                ("x-amz-target", "Kinesis_20131202.PutRecords"),
                ("content-type", "application/x-amz-json-1.1"),
            ]),
            b"{}",
        );
        assert_eq!(protocol, Protocol::AwsJson11);
    }

    #[test]
    fn query_actions_take_the_service_from_the_signature_or_the_action() {
        let signed = headers(&[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/iam/aws4_request, \
             SignedHeaders=host, Signature=abc",
        )]);
        let (op, protocol) = identify(
            &Method::POST,
            "/",
            &signed,
            b"Action=CreateRole&Version=2010-05-08",
        );
        assert_eq!(op, Operation::new("iam", "CreateRole"));
        assert_eq!(protocol, Protocol::Query);
        let (op, _) = identify(
            &Method::POST,
            "/",
            &HeaderMap::new(),
            b"Version=2011-06-15&Action=AssumeRoleWithWebIdentity",
        );
        assert_eq!(op, Operation::new("sts", "AssumeRoleWithWebIdentity"));
        let (op, _) = identify(
            &Method::GET,
            "/?Action=Send%4DessageBatch&QueueUrl=x",
            &HeaderMap::new(),
            b"",
        );
        assert_eq!(op.name, "SendMessageBatch");
    }

    #[test]
    fn lambda_paths_and_odd_input() {
        let (op, protocol) = identify(
            &Method::POST,
            "/2015-03-31/functions/sqs-push-local-sender/invocations",
            &HeaderMap::new(),
            b"\xff\xfe",
        );
        assert_eq!(op, Operation::new("lambda", "Invoke"));
        assert_eq!(protocol, Protocol::RestJson);
        for body in [
            &b"%"[..],
            b"Action=%",
            b"Action=%zz",
            b"Action=%4",
            b"&&==",
            b"",
        ] {
            let (op, _) = identify(&Method::POST, "/x?%", &HeaderMap::new(), body);
            assert_eq!(op.name, "Unknown", "{body:?}");
        }
        let (op, _) = identify(
            &Method::POST,
            "/",
            &headers(&[("x-amz-target", "NoDot")]),
            b"",
        );
        assert_eq!(op, Operation::new("unknown", "NoDot"));
    }
}
