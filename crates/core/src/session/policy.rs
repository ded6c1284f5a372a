//! The IAM documents that decide who may read a queue (design.md, "Access to a queue").
//!
//! Two layers: the session policy passed to AssumeRoleWithWebIdentity names exactly one queue,
//! and the identities' role itself only allows queues tagged with the caller's identity. Session
//! identities are developer-authenticated (the pool admits no unauthenticated ones), so the role
//! trusts only `amr` `authenticated` web identity tokens of the one pool.

use serde_json::{Value, json};

use super::queue_name::SEPARATOR;

/// What a browser may do on its own queue, and nothing else: no send, no purge, no delete-queue.
/// DeleteMessageBatch and ChangeMessageVisibilityBatch are authorized by the single-message actions.
pub const QUEUE_READER_ACTIONS: [&str; 4] = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
];

/// The tag a queue carries with its owner's Cognito identity id.
pub const OWNER_TAG: &str = "owner";

/// The inline session policy for a session's credentials: the four reader actions on one queue,
/// and, when the stack has an upstream queue, SendMessage on it and nothing else there (no
/// receive: one session must never read another's upstream messages).
pub fn session_policy(queue_arn: &str, upstream_arn: Option<&str>) -> String {
    let mut statements = vec![json!({
        "Sid": "ReadOwnQueueOnly",
        "Effect": "Allow",
        "Action": QUEUE_READER_ACTIONS,
        "Resource": queue_arn,
    })];
    if let Some(upstream_arn) = upstream_arn {
        statements.push(json!({
            "Sid": UPSTREAM_SID,
            "Effect": "Allow",
            "Action": UPSTREAM_ACTION,
            "Resource": upstream_arn,
        }));
    }
    json!({
        "Version": "2012-10-17",
        "Statement": statements,
    })
    .to_string()
}

/// The one action a browser has on the upstream queue (it also authorizes SendMessageBatch).
pub const UPSTREAM_ACTION: &str = "sqs:SendMessage";
/// The statement id of the upstream grant, in the session policy and the identities' role.
pub const UPSTREAM_SID: &str = "SendUpstreamOnly";

/// The identities' role's permissions: reader actions on the stage's queues, and only on a
/// queue whose `owner` tag is the caller's own identity id. `queue_prefix` is the generator's
/// prefix (`sqs-push-<stage>`), without the separator.
/// Also SendMessage on the stage's upstream queue (`<queue_prefix>-upstream`), which the session
/// policy narrows to the same one action.
pub fn identity_role_policy(partition: &str, queue_prefix: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "ReadQueuesTaggedWithOwnIdentity",
            "Effect": "Allow",
            "Action": QUEUE_READER_ACTIONS,
            "Resource": format!("arn:{partition}:sqs:*:*:{queue_prefix}{SEPARATOR}*"),
            "Condition": {
                "StringEquals": {
                    format!("aws:ResourceTag/{OWNER_TAG}"): "${cognito-identity.amazonaws.com:sub}"
                }
            }
        }, {
            "Sid": UPSTREAM_SID,
            "Effect": "Allow",
            "Action": UPSTREAM_ACTION,
            "Resource": format!("arn:{partition}:sqs:*:*:{queue_prefix}-upstream"),
        }]
    })
}

/// Who may assume the identities' role: authenticated (developer-authenticated) identities of one
/// identity pool. An unauthenticated identity's token (`amr` `unauthenticated`) is refused.
pub fn identity_trust_policy(identity_pool_id: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Federated": "cognito-identity.amazonaws.com" },
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": { "cognito-identity.amazonaws.com:aud": identity_pool_id },
                "ForAnyValue:StringLike": { "cognito-identity.amazonaws.com:amr": "authenticated" }
            }
        }]
    })
}

/// The ARN of a queue from its URL (`https://host/<account>/<name>`), the only place both the
/// account id and the name are known without another API call.
pub fn queue_arn(partition: &str, region: &str, queue_url: &str) -> Option<String> {
    let path = queue_url.split_once("://")?.1.split_once('/')?.1;
    let (account, name) = path.trim_end_matches('/').split_once('/')?;
    let valid_account = !account.is_empty() && account.bytes().all(|b| b.is_ascii_digit());
    if !valid_account || name.is_empty() || name.contains('/') {
        return None;
    }
    Some(format!("arn:{partition}:sqs:{region}:{account}:{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_policy_allows_only_reading_one_queue() {
        let arn = "arn:aws:sqs:us-east-1:123456789012:sqs-push-prod-AbC";
        let expected = r#"{"Statement":[{"Action":["sqs:ReceiveMessage","sqs:DeleteMessage","sqs:ChangeMessageVisibility","sqs:GetQueueAttributes"],"Effect":"Allow","Resource":"arn:aws:sqs:us-east-1:123456789012:sqs-push-prod-AbC","Sid":"ReadOwnQueueOnly"}],"Version":"2012-10-17"}"#;
        assert_eq!(session_policy(arn, None), expected);
    }

    #[test]
    fn session_policy_adds_only_send_on_the_upstream_queue() {
        let arn = "arn:aws:sqs:us-east-1:123456789012:sqs-push-prod_AbC";
        let upstream = "arn:aws:sqs:us-east-1:123456789012:sqs-push-prod-upstream";
        let policy: Value = serde_json::from_str(&session_policy(arn, Some(upstream))).unwrap();
        let statements = policy["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[0]["Resource"], arn);
        assert!(!statements[0].to_string().contains("SendMessage"));
        assert_eq!(statements[1]["Action"], "sqs:SendMessage");
        assert_eq!(statements[1]["Resource"], upstream);
    }

    #[test]
    fn role_policy_requires_the_owner_tag_to_match_the_identity() {
        let policy = identity_role_policy("aws", "sqs-push-prod");
        let statement = &policy["Statement"][0];
        assert_eq!(statement["Resource"], "arn:aws:sqs:*:*:sqs-push-prod_*");
        assert_eq!(
            statement["Condition"]["StringEquals"]["aws:ResourceTag/owner"],
            "${cognito-identity.amazonaws.com:sub}"
        );
        assert_eq!(statement["Action"].as_array().unwrap().len(), 4);
        assert!(!statement.to_string().contains("sqs:SendMessage"));
        let upstream = &policy["Statement"][1];
        assert_eq!(upstream["Action"], "sqs:SendMessage");
        assert_eq!(
            upstream["Resource"],
            "arn:aws:sqs:*:*:sqs-push-prod-upstream"
        );
    }

    #[test]
    fn trust_policy_admits_only_authenticated_identities_of_the_pool() {
        let expected = r#"{"Statement":[{"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"ForAnyValue:StringLike":{"cognito-identity.amazonaws.com:amr":"authenticated"},"StringEquals":{"cognito-identity.amazonaws.com:aud":"us-east-1:pool"}},"Effect":"Allow","Principal":{"Federated":"cognito-identity.amazonaws.com"}}],"Version":"2012-10-17"}"#;
        assert_eq!(
            identity_trust_policy("us-east-1:pool").to_string(),
            expected
        );
        let policy = identity_trust_policy("us-east-1:pool");
        let condition = &policy["Statement"][0]["Condition"];
        assert_eq!(
            condition["StringEquals"]["cognito-identity.amazonaws.com:aud"],
            "us-east-1:pool"
        );
        assert_eq!(
            condition["ForAnyValue:StringLike"]["cognito-identity.amazonaws.com:amr"],
            "authenticated"
        );
        assert!(!policy.to_string().contains("unauthenticated"));
    }

    #[test]
    fn queue_arns_come_from_the_url_path() {
        assert_eq!(
            queue_arn(
                "aws",
                "eu-west-1",
                "https://sqs.eu-west-1.amazonaws.com/123456789012/q-1"
            )
            .as_deref(),
            Some("arn:aws:sqs:eu-west-1:123456789012:q-1")
        );
        assert_eq!(
            queue_arn("aws", "us-east-1", "http://127.0.0.1:4566/000000000000/q").as_deref(),
            Some("arn:aws:sqs:us-east-1:000000000000:q")
        );
        assert_eq!(queue_arn("aws", "us-east-1", "http://host/q"), None);
        assert_eq!(queue_arn("aws", "us-east-1", "http://host/abc/q"), None);
        assert_eq!(queue_arn("aws", "us-east-1", "not a url"), None);
    }
}
