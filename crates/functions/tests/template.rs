//! The CloudFormation template that `scripts/package` generates from serverless.yml, checked
//! against the code it deploys: artifacts, roles, triggers, failure destinations, settings and
//! routes. Read as data (serde_json), so a check fails when the stack would behave differently,
//! not when serverless.yml is merely written differently.

use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use serde_json::{Value, json};
use sqs_push_core::ports::AsyncFunction;
use sqs_push_core::session::policy::{QUEUE_READER_ACTIONS, UPSTREAM_ACTION, UPSTREAM_SID};
use sqs_push_functions::config::StackConfig;

const TEMPLATE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../.serverless/cloudformation-template-update-stack.json"
);

/// The generated template; `scripts/test` runs `scripts/package dev` before `cargo test`.
fn template() -> &'static Value {
    static TEMPLATE_JSON: OnceLock<Value> = OnceLock::new();
    TEMPLATE_JSON.get_or_init(|| {
        let text = std::fs::read_to_string(TEMPLATE).unwrap_or_else(|error| {
            panic!(
                "cannot read {TEMPLATE} ({error}): generate it with `scripts/package dev` \
                 (scripts/test does that before cargo test)"
            )
        });
        serde_json::from_str(&text).expect("the generated template is JSON")
    })
}

fn resources() -> &'static serde_json::Map<String, Value> {
    template()["Resources"]
        .as_object()
        .expect("the template has Resources")
}

fn resource(logical_id: &str) -> &'static Value {
    resources()
        .get(logical_id)
        .unwrap_or_else(|| panic!("the template has no resource {logical_id}"))
}

fn of_type(kind: &str) -> Vec<(&'static str, &'static Value)> {
    resources()
        .iter()
        .filter(|(_, resource)| resource["Type"] == kind)
        .map(|(id, resource)| (id.as_str(), resource))
        .collect()
}

/// The function binaries in crates/functions/src/bin: every one is a Lambda function.
fn binaries() -> BTreeSet<String> {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src/bin"))
        .expect("crates/functions/src/bin exists")
        .map(|entry| {
            let name = entry.unwrap().file_name().into_string().unwrap();
            name.trim_end_matches(".rs").to_string()
        })
        .collect()
}

/// The stage the template was packaged for, from the functions' own setting.
fn stage() -> String {
    let (_, api) = function("api");
    api["Properties"]["Environment"]["Variables"]["SQS_PUSH_STAGE"]
        .as_str()
        .expect("SQS_PUSH_STAGE is a plain string")
        .to_string()
}

/// `sqs-push-<stage>`, the prefix of every resource name.
fn prefix() -> String {
    format!("sqs-push-{}", stage())
}

/// The Lambda function deployed from binary `name`: (logical id, resource).
fn function(name: &str) -> (&'static str, &'static Value) {
    let wanted_suffix = format!("-{name}");
    let matches: Vec<_> = of_type("AWS::Lambda::Function")
        .into_iter()
        .filter(|(_, f)| {
            f["Properties"]["FunctionName"]
                .as_str()
                .is_some_and(|n| n.starts_with("sqs-push-") && n.ends_with(&wanted_suffix))
        })
        .collect();
    assert_eq!(matches.len(), 1, "exactly one function named *-{name}");
    matches[0]
}

/// The logical id a `Ref`, `Fn::GetAtt` or `Fn::Sub: "${Id.Attr}..."` points at.
fn referenced_id(value: &Value) -> Option<String> {
    if let Some(id) = value.get("Ref").and_then(Value::as_str) {
        return Some(id.to_string());
    }
    if let Some(id) = value.pointer("/Fn::GetAtt/0").and_then(Value::as_str) {
        return Some(id.to_string());
    }
    let sub = value.get("Fn::Sub").and_then(Value::as_str)?;
    let inner = sub.strip_prefix("${")?;
    let id = inner.split(['.', '}']).next()?;
    (!id.contains("::")).then(|| id.to_string())
}

/// A template value as a string: intrinsics become stable placeholders, as config parsing only
/// needs a non-empty value of the right shape.
fn placeholder(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => match referenced_id(value).as_deref() {
            Some(parameter) if template()["Parameters"].get(parameter).is_some() => {
                placeholder(&template()["Parameters"][parameter]["Default"])
            }
            Some("AWS::Partition") => "aws".to_string(),
            Some("AWS::Region") => "us-east-1".to_string(),
            Some("AWS::AccountId") => "123456789012".to_string(),
            Some(id) => format!("placeholder-for-{id}"),
            None => format!("placeholder-for-{value}"),
        },
    }
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        other => panic!("expected a string or a list of strings, got {other}"),
    }
}

/// Every policy statement in a role's inline policies, with the parameters at their defaults.
fn statements(role: &Value) -> Vec<&Value> {
    statements_with(role, &HashMap::new())
}

/// Every policy statement in a role's inline policies, with the parameters in `parameters` set
/// (the others at their defaults): a statement under `Fn::If` is there when its condition holds.
fn statements_with<'a>(role: &'a Value, parameters: &HashMap<&str, &str>) -> Vec<&'a Value> {
    role["Properties"]["Policies"]
        .as_array()
        .expect("the role has inline policies")
        .iter()
        .flat_map(|policy| {
            policy["PolicyDocument"]["Statement"]
                .as_array()
                .expect("a policy has statements")
        })
        .filter_map(|statement| match statement.get("Fn::If") {
            None => Some(statement),
            Some(branches) => {
                let name = branches[0].as_str().expect("Fn::If names a condition");
                let chosen = if holds(&template()["Conditions"][name], parameters) {
                    &branches[1]
                } else {
                    &branches[2]
                };
                (chosen != &json!({ "Ref": "AWS::NoValue" })).then_some(chosen)
            }
        })
        .collect()
}

/// A template condition's value with `parameters` set (the others at their defaults).
fn holds(condition: &Value, parameters: &HashMap<&str, &str>) -> bool {
    let value = |operand: &Value| -> String {
        match operand.get("Ref").and_then(Value::as_str) {
            Some(name) => parameters
                .get(name)
                .map(ToString::to_string)
                .unwrap_or_else(|| placeholder(&template()["Parameters"][name]["Default"])),
            None => placeholder(operand),
        }
    };
    if let Some([left, right]) = condition
        .get("Fn::Equals")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        return value(left) == value(right);
    }
    if let Some(inner) = condition.pointer("/Fn::Not/0") {
        return !holds(inner, parameters);
    }
    panic!("a condition this test cannot read: {condition}")
}

fn allowed_actions(role: &Value) -> BTreeSet<String> {
    statements(role)
        .into_iter()
        .filter(|statement| statement["Effect"] == "Allow")
        .flat_map(|statement| strings(&statement["Action"]))
        .collect()
}

fn role_of(name: &str) -> (String, &'static Value) {
    let (_, f) = function(name);
    let id = referenced_id(&f["Properties"]["Role"])
        .unwrap_or_else(|| panic!("{name}'s Role refers to a role of this template"));
    let role = resource(&id);
    assert_eq!(role["Type"], "AWS::IAM::Role");
    (id, role)
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(ToString::to_string).collect()
}

/// The configuration a function would read from `environment`.
fn config_from(
    environment: &HashMap<String, String>,
) -> Result<StackConfig, sqs_push_functions::config::ConfigError> {
    StackConfig::from_lookup(|key| environment.get(key).cloned())
}

/// The least environment a function starts with, plus `extra`.
fn minimal_environment(extra: &[(&str, &str)]) -> HashMap<String, String> {
    let stage = stage();
    [
        ("SQS_PUSH_STAGE", stage.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("SQS_PUSH_IDENTITY_POOL_ID", "us-east-1:pool"),
        (
            "SQS_PUSH_UNAUTH_ROLE_ARN",
            "arn:aws:iam::123456789012:role/r",
        ),
    ]
    .iter()
    .chain(extra)
    .map(|(key, value)| (key.to_string(), value.to_string()))
    .collect()
}

fn dead_letter_queue_arn() -> Value {
    json!({ "Fn::GetAtt": ["DeadLetterQueue", "Arn"] })
}

#[test]
fn every_function_binary_is_deployed_from_its_own_artifact() {
    let functions = of_type("AWS::Lambda::Function");
    assert_eq!(functions.len(), binaries().len(), "one function per binary");
    let mut keys = BTreeSet::new();
    for name in binaries() {
        let (_, f) = function(&name);
        let key = f["Properties"]["Code"]["S3Key"]
            .as_str()
            .expect("Code.S3Key is a string");
        assert!(
            key.ends_with(&format!("/{name}.zip")),
            "{name} is deployed from {key}, not its own dist/{name}.zip"
        );
        assert_eq!(f["Properties"]["Runtime"], "provided.al2023");
        assert_eq!(f["Properties"]["Architectures"], json!(["arm64"]));
        assert_eq!(f["Properties"]["Handler"], "bootstrap");
        keys.insert(key.to_string());
    }
    assert_eq!(
        keys.len(),
        binaries().len(),
        "artifact keys differ: {keys:?}"
    );
}

/// What each role allows is proven by the IAM check (scripts/iam/check.mjs, run by scripts/test
/// after the end-to-end suite): every call a function made is allowed by its role, and every
/// grant is used by some call or explained in scripts/iam/not-exercised.json. Here: one role
/// each, for Lambda only.
#[test]
fn each_function_has_its_own_role_trusted_by_lambda_only() {
    let mut roles = BTreeSet::new();
    for name in binaries() {
        let (id, role) = role_of(&name);
        assert!(roles.insert(id.clone()), "{name} shares role {id}");
        assert_eq!(
            role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"],
            json!({ "Service": "lambda.amazonaws.com" })
        );
        assert!(
            role["Properties"].get("ManagedPolicyArns").is_none(),
            "{id}: only inline policies, which the IAM check reads"
        );
    }
    assert!(!resources().contains_key("IamRoleLambdaExecution"));
}

#[test]
fn function_roles_reach_only_this_stages_resources() {
    let prefix = prefix();
    for name in binaries() {
        let (id, role) = role_of(&name);
        for statement in statements(role) {
            let actions = strings(&statement["Action"]);
            let targets = match &statement["Resource"] {
                Value::Array(items) => items.clone(),
                single => vec![single.clone()],
            };
            for target in &targets {
                if target == "*" {
                    // Actions without resource-level permissions, which IAM matches only
                    // against "*" (the IAM check fails a grant of one on anything else).
                    assert!(
                        actions == ["sqs:ListQueues"]
                            || actions == ["dynamodb:ListStreams"]
                            || actions == ["cognito-identity:DeleteIdentities"]
                            || actions == ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                        "{id}: only actions that take no resource on *, got {actions:?}"
                    );
                    continue;
                }
                if let Some(sub) = target.get("Fn::Sub").and_then(Value::as_str)
                    && sub.starts_with("arn:")
                {
                    assert!(
                        sub.starts_with("arn:${AWS::Partition}:")
                            && sub.contains(":${AWS::Region}:${AWS::AccountId}:"),
                        "{id}: {sub} is not scoped to this account and region"
                    );
                    assert!(
                        sub.contains(&format!(":{prefix}-"))
                            || sub.ends_with(&format!(":{prefix}_*"))
                            || sub.contains(&format!("/aws/lambda/{prefix}-"))
                            || sub.ends_with("identitypool/${IdentityPool}"),
                        "{id}: {sub} reaches past stage {prefix}"
                    );
                    continue;
                }
                let target_id = referenced_id(target)
                    .unwrap_or_else(|| panic!("{id}: unexpected resource {target}"));
                assert!(
                    resources().contains_key(&target_id),
                    "{id}: {target} is not a resource of this stack"
                );
            }
        }
    }
}

#[test]
fn no_statement_anywhere_allows_a_wildcard_action() {
    fn walk(value: &Value, path: &str, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if map.contains_key("Effect") {
                    assert!(
                        !map.contains_key("NotAction"),
                        "{path}: NotAction allows everything else"
                    );
                    if map["Effect"] == "Allow" {
                        for action in strings(&map["Action"]) {
                            if action.contains('*') {
                                found.push(format!("{path}: {action}"));
                            }
                        }
                    }
                }
                for (key, child) in map {
                    walk(child, &format!("{path}/{key}"), found);
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    walk(child, &format!("{path}/{index}"), found);
                }
            }
            _ => {}
        }
    }
    let mut found = Vec::new();
    walk(template(), "", &mut found);
    assert!(found.is_empty(), "wildcard actions allowed: {found:?}");
}

#[test]
fn stream_triggers_bisect_retry_age_out_and_dead_letter_failed_batches() {
    let mappings = of_type("AWS::Lambda::EventSourceMapping");
    let by_function: HashMap<String, &Value> = mappings
        .iter()
        .filter(|(_, mapping)| mapping["Properties"].get("StartingPosition").is_some())
        .map(|(_, mapping)| {
            let id = referenced_id(&mapping["Properties"]["FunctionName"]).unwrap();
            (id, *mapping)
        })
        .collect();
    assert_eq!(
        by_function.len(),
        2,
        "the dispatcher's and cleanup's triggers"
    );
    for (name, source) in [
        (
            "dispatcher",
            json!({ "Fn::GetAtt": ["EventsStream", "Arn"] }),
        ),
        (
            "cleanup",
            json!({ "Fn::GetAtt": ["SessionsTable", "StreamArn"] }),
        ),
    ] {
        let (function_id, _) = function(name);
        let mapping = &by_function[function_id]["Properties"];
        assert_eq!(mapping["EventSourceArn"], source, "{name}'s source");
        assert_eq!(
            mapping["FunctionResponseTypes"],
            json!(["ReportBatchItemFailures"])
        );
        assert_eq!(
            mapping["BisectBatchOnFunctionError"], true,
            "{name} bisects"
        );
        let retries = mapping["MaximumRetryAttempts"].as_i64().unwrap();
        assert!((0..=10_000).contains(&retries), "{name}: finite retries");
        let age = mapping["MaximumRecordAgeInSeconds"].as_i64().unwrap();
        assert!((60..=604_800).contains(&age), "{name}: finite record age");
        assert_eq!(
            mapping["DestinationConfig"]["OnFailure"]["Destination"],
            dead_letter_queue_arn(),
            "{name}'s failed batches go to the dead-letter queue"
        );
        assert_eq!(mapping["Enabled"], true);
    }
    let (cleanup_id, _) = function("cleanup");
    let filters = by_function[cleanup_id]["Properties"]["FilterCriteria"]["Filters"]
        .as_array()
        .expect("cleanup's trigger is filtered");
    let events: BTreeSet<String> = filters
        .iter()
        .flat_map(|filter| {
            let pattern: Value = serde_json::from_str(filter["Pattern"].as_str().unwrap()).unwrap();
            strings(&pattern["eventName"])
        })
        .collect();
    assert_eq!(events, set(&["REMOVE", "MODIFY"]));
    let (dispatcher_id, _) = function("dispatcher");
    assert!(
        by_function[dispatcher_id]["Properties"]
            .get("FilterCriteria")
            .is_none(),
        "every event on the stream is for the dispatcher"
    );
}

#[test]
fn the_consumer_reads_the_upstream_queue_in_small_batches_reporting_only_routing_failures() {
    let (consumer_id, _) = function("consumer");
    let triggers: Vec<_> = of_type("AWS::Lambda::EventSourceMapping")
        .into_iter()
        .filter(|(_, mapping)| {
            referenced_id(&mapping["Properties"]["FunctionName"]).as_deref() == Some(consumer_id)
        })
        .collect();
    assert_eq!(triggers.len(), 1, "one trigger: the upstream queue");
    let mapping = &triggers[0].1["Properties"];
    assert_eq!(
        mapping["EventSourceArn"],
        json!({ "Fn::GetAtt": ["UpstreamQueue", "Arn"] })
    );
    assert_eq!(
        mapping["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"]),
        "without it Lambda would delete failed messages"
    );
    assert_eq!(mapping["BatchSize"], 10);
    assert_eq!(mapping["MaximumBatchingWindowInSeconds"], 0);
    // Presence's sweep: the consumer on a schedule, at most a minute apart.
    let sweeps: Vec<_> = of_type("AWS::Events::Rule")
        .into_iter()
        .filter(|(_, rule)| {
            rule["Properties"]["Targets"]
                .as_array()
                .is_some_and(|targets| {
                    targets.iter().any(|target| {
                        referenced_id(&target["Arn"]).as_deref() == Some(consumer_id)
                            && target["Input"].as_str().is_some_and(|input| {
                                serde_json::from_str::<Value>(input).ok()
                                    == Some(json!({ "presenceSweep": true }))
                            })
                    })
                })
        })
        .collect();
    assert_eq!(sweeps.len(), 1, "one schedule runs presence's sweep");
    assert_eq!(
        sweeps[0].1["Properties"]["ScheduleExpression"],
        "rate(1 minute)"
    );

    let config = config_from(&minimal_environment(&[])).unwrap();
    let queue = &resource("UpstreamQueue")["Properties"];
    assert_eq!(queue["QueueName"], config.upstream_queue());
    assert_eq!(
        queue["MaximumMessageSize"],
        sqs_push_core::upstream::envelope::MAX_ENVELOPE_BYTES
    );
    assert_eq!(queue["MessageRetentionPeriod"], 4 * 86_400);
    assert_eq!(queue["SqsManagedSseEnabled"], true);
    let (_, consumer) = function("consumer");
    let timeout = consumer["Properties"]["Timeout"].as_i64().unwrap();
    assert!(
        queue["VisibilityTimeout"].as_i64().unwrap() >= 6 * timeout,
        "Lambda's SQS trigger asks for 6 x the function's timeout"
    );
    assert_eq!(
        queue["RedrivePolicy"]["deadLetterTargetArn"],
        json!({ "Fn::GetAtt": ["UpstreamDeadLetterQueue", "Arn"] })
    );
    assert_eq!(queue["RedrivePolicy"]["maxReceiveCount"], 5);
    let dead = &resource("UpstreamDeadLetterQueue")["Properties"];
    assert_eq!(dead["QueueName"], config.upstream_dead_letter_queue());
    assert_eq!(dead["SqsManagedSseEnabled"], true);
    assert_eq!(
        alarms_on(
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            &json!({ "Fn::GetAtt": ["UpstreamDeadLetterQueue", "QueueName"] })
        )
        .len(),
        1,
        "an alarm on the upstream dead-letter queue"
    );
    assert!(
        of_type("AWS::SQS::QueuePolicy")
            .iter()
            .all(|(_, policy)| !policy["Properties"]["Queues"]
                .to_string()
                .contains("UpstreamQueue")),
        "no queue policy: only this account's principals can send upstream"
    );
    let table = &resource("UpstreamTable")["Properties"];
    assert_eq!(table["TableName"], config.upstream_table());
    assert_eq!(
        table["TimeToLiveSpecification"],
        json!({ "AttributeName": "ttl", "Enabled": true })
    );
}

#[test]
fn async_functions_retry_then_dead_letter_and_cannot_starve_the_api() {
    let configs = of_type("AWS::Lambda::EventInvokeConfig");
    for async_function in [AsyncFunction::Sender, AsyncFunction::History] {
        let name = async_function.name();
        let (function_id, f) = function(name);
        let config = configs
            .iter()
            .map(|(_, config)| &config["Properties"])
            .find(|config| referenced_id(&config["FunctionName"]).as_deref() == Some(function_id))
            .unwrap_or_else(|| panic!("{name} has an EventInvokeConfig"));
        let retries = config["MaximumRetryAttempts"].as_i64().unwrap();
        assert!((0..=2).contains(&retries), "{name}: retry attempts");
        let age = config["MaximumEventAgeInSeconds"].as_i64().unwrap();
        assert!((60..=21_600).contains(&age), "{name}: event age");
        assert_eq!(
            config["DestinationConfig"]["OnFailure"]["Destination"],
            dead_letter_queue_arn(),
            "{name}'s failed payloads go to the dead-letter queue"
        );
        // Reserved only when a parameter asks (issue 23): see
        // no_function_reserves_concurrency_unless_a_parameter_asks.
        assert!(
            f["Properties"]
                .get("ReservedConcurrentExecutions")
                .is_some()
        );
    }
    let (_, api) = function("api");
    assert!(api["Properties"]["ReservedConcurrentExecutions"].is_null());
}

#[test]
fn the_dead_letter_queue_is_encrypted_outside_the_session_queues_and_closed_to_others() {
    let queue = resource("DeadLetterQueue");
    let name = queue["Properties"]["QueueName"].as_str().unwrap();
    let session_queues = config_from(&minimal_environment(&[]))
        .unwrap()
        .queue_names()
        .unwrap()
        .name_prefix();
    assert!(
        !name.starts_with(&session_queues),
        "{name} is inside the session-queue space {session_queues}*"
    );
    assert_eq!(name, format!("sqs-push-dlq-{}", stage()));
    assert_eq!(queue["Properties"]["SqsManagedSseEnabled"], true);

    let policies: Vec<_> = of_type("AWS::SQS::QueuePolicy")
        .into_iter()
        .filter(|(_, p)| p["Properties"]["Queues"] == json!([{ "Ref": "DeadLetterQueue" }]))
        .collect();
    assert_eq!(policies.len(), 1, "the dead-letter queue has a policy");
    let queue_policy = policies[0].1["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    let send_deny = queue_policy
        .iter()
        .find(|s| s["Effect"] == "Deny" && strings(&s["Action"]) == ["sqs:SendMessage"])
        .expect("a statement denies sending to everyone else");
    let senders: BTreeSet<String> = send_deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arn| referenced_id(arn).unwrap())
        .collect();
    let roles: BTreeSet<String> = binaries().iter().map(|name| role_of(name).0).collect();
    assert_eq!(senders, roles, "exactly the function roles may send");
    let read_deny = queue_policy
        .iter()
        .find(|s| {
            s["Effect"] == "Deny" && strings(&s["Action"]).contains(&"sqs:ReceiveMessage".into())
        })
        .expect("a statement denies reading outside the account");
    assert_eq!(
        read_deny["Condition"]["StringNotEquals"]["aws:PrincipalAccount"],
        json!({ "Ref": "AWS::AccountId" })
    );
    for name in binaries() {
        let (_, role) = role_of(&name);
        assert!(
            statements(role).iter().any(|s| s["Effect"] == "Allow"
                && strings(&s["Action"]) == ["sqs:SendMessage"]
                && s["Resource"] == dead_letter_queue_arn()),
            "{name}'s role can send to the dead-letter queue"
        );
    }
}

#[test]
fn every_function_gets_every_setting_its_config_requires() {
    let stage = stage();
    for name in binaries() {
        let (_, f) = function(&name);
        let variables = f["Properties"]["Environment"]["Variables"]
            .as_object()
            .unwrap_or_else(|| panic!("{name} has environment variables"));
        let mut environment: HashMap<String, String> = variables
            .iter()
            .map(|(key, value)| (key.clone(), placeholder(value)))
            .collect();
        // Set by Lambda itself; a function may not set it.
        assert!(!environment.contains_key("AWS_REGION"));
        environment.insert("AWS_REGION".into(), "us-east-1".into());
        let config = config_from(&environment)
            .unwrap_or_else(|error| panic!("{name} would not start: {error}"));
        assert_eq!(config.stage, stage);
        assert_eq!(
            variables["SQS_PUSH_PARTITION"],
            json!({ "Ref": "AWS::Partition" })
        );
        assert_eq!(
            variables["SQS_PUSH_IDENTITY_POOL_ID"],
            json!({ "Ref": "IdentityPool" })
        );
        assert_eq!(
            variables["SQS_PUSH_UNAUTH_ROLE_ARN"],
            json!({ "Fn::GetAtt": ["IdentitiesRole", "Arn"] })
        );
        assert_eq!(
            variables["SQS_PUSH_DEVELOPER_PROVIDER"],
            resource("IdentityPool")["Properties"]["DeveloperProviderName"]
        );
        // Each required setting is really needed: without it the function would not start.
        for required in [
            "SQS_PUSH_STAGE",
            "SQS_PUSH_IDENTITY_POOL_ID",
            "SQS_PUSH_UNAUTH_ROLE_ARN",
        ] {
            let mut without = environment.clone();
            without.remove(required);
            let error = config_from(&without).expect_err("a required setting");
            assert_eq!(error.variable, required);
        }
    }
    for name in ["api", "dispatcher", "sender", "history"] {
        let (_, f) = function(name);
        assert_eq!(
            f["Properties"]["Environment"]["Variables"]["SQS_PUSH_DEAD_LETTER_QUEUE_URL"],
            json!({ "Ref": "DeadLetterQueue" }),
            "{name} knows the dead-letter queue"
        );
    }
    let (_, api) = function("api");
    assert_eq!(
        api["Properties"]["Environment"]["Variables"]["AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH"],
        "true",
        "the Router's paths carry no API Gateway stage"
    );
}

#[test]
fn resource_names_are_the_ones_the_code_derives_from_the_stage() {
    let config = config_from(&minimal_environment(&[])).unwrap();
    let name = |id: &str, property: &str| resource(id)["Properties"][property].clone();
    assert_eq!(name("SessionsTable", "TableName"), config.sessions_table());
    assert_eq!(name("HistoryTable", "TableName"), config.history_table());
    assert_eq!(name("ChannelsTable", "TableName"), config.channels_table());
    assert_eq!(name("EventsStream", "Name"), config.events_stream());
    assert_eq!(
        name("IdentityPool", "IdentityPoolName"),
        config.identity_pool_name()
    );
    for binary in binaries() {
        let (_, f) = function(&binary);
        assert_eq!(
            f["Properties"]["FunctionName"],
            format!("{}-{binary}", config.prefix()),
            "the invoker finds functions as <prefix>-<name>"
        );
    }
}

#[test]
fn tables_and_stream_survive_the_stack_and_keep_ttl_streams_and_indexes() {
    for id in [
        "SessionsTable",
        "ChannelsTable",
        "HistoryTable",
        "EventsStream",
    ] {
        let retained = resource(id);
        assert_eq!(retained["DeletionPolicy"], "Retain", "{id}");
        assert_eq!(retained["UpdateReplacePolicy"], "Retain", "{id}");
    }
    let sessions = &resource("SessionsTable")["Properties"];
    let history = &resource("HistoryTable")["Properties"];
    let channels = &resource("ChannelsTable")["Properties"];
    for table in [sessions, history, channels] {
        assert_eq!(
            table["TimeToLiveSpecification"],
            json!({ "AttributeName": "ttl", "Enabled": true })
        );
    }
    assert_eq!(
        sessions["StreamSpecification"]["StreamViewType"],
        "NEW_AND_OLD_IMAGES"
    );
    assert_eq!(
        sessions["GlobalSecondaryIndexes"][0]["IndexName"],
        sqs_push_aws::sessions::ACCOUNT_INDEX
    );
    assert_eq!(
        history["LocalSecondaryIndexes"][0]["KeySchema"][1]["AttributeName"],
        "created"
    );
    let hours = resource("EventsStream")["Properties"]["RetentionPeriodHours"]
        .as_i64()
        .expect("the stream's retention is set");
    assert!((24..=8760).contains(&hours));
}

#[test]
fn the_account_index_projects_routing_attributes_and_no_credentials() {
    let index = &resource("SessionsTable")["Properties"]["GlobalSecondaryIndexes"][0];
    let projection = &index["Projection"];
    assert_eq!(projection["ProjectionType"], "INCLUDE", "{projection}");
    let projected = strings(&projection["NonKeyAttributes"]);
    for needed in ["sqsUrl", "aesKey", "ttl"] {
        assert!(
            projected.contains(&needed.to_string()),
            "{needed} is routed on: {projection}"
        );
    }
    for secret in ["accessKey", "secretKey", "sessionToken", "identityId"] {
        assert!(
            !projected.contains(&secret.to_string()),
            "{secret} must not be in the index"
        );
    }
}

#[test]
fn identities_read_only_their_own_tagged_queues_for_up_to_the_longest_credential_lifetime() {
    let role = resource("IdentitiesRole");
    let allowed = allowed_actions(role);
    let mut expected = set(&QUEUE_READER_ACTIONS);
    expected.insert(UPSTREAM_ACTION.to_string());
    assert_eq!(
        allowed, expected,
        "the reader actions and the upstream send exactly"
    );
    let upstream: Vec<_> = statements(role)
        .into_iter()
        .filter(|statement| strings(&statement["Action"]).contains(&UPSTREAM_ACTION.to_string()))
        .collect();
    assert_eq!(upstream.len(), 1);
    assert_eq!(upstream[0]["Sid"], UPSTREAM_SID);
    assert_eq!(
        strings(&upstream[0]["Action"]),
        [UPSTREAM_ACTION],
        "nothing else on the upstream queue"
    );
    assert_eq!(
        upstream[0]["Resource"],
        json!({ "Fn::GetAtt": ["UpstreamQueue", "Arn"] })
    );
    let statement = statements(role)[0];
    let resource_arn = statement["Resource"]["Fn::Sub"].as_str().unwrap();
    assert_eq!(
        resource_arn,
        format!(
            "arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:{}_*",
            prefix()
        )
    );
    let owner = &statement["Condition"]["StringEquals"]["aws:ResourceTag/owner"];
    let joined: String = strings(&owner["Fn::Join"][1]).concat();
    assert_eq!(joined, "${cognito-identity.amazonaws.com:sub}");

    let trust = &role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0];
    assert_eq!(trust["Action"], "sts:AssumeRoleWithWebIdentity");
    assert_eq!(
        trust["Condition"]["StringEquals"]["cognito-identity.amazonaws.com:aud"],
        json!({ "Ref": "IdentityPool" })
    );
    assert_eq!(
        trust["Condition"]["ForAnyValue:StringLike"]["cognito-identity.amazonaws.com:amr"],
        "authenticated"
    );

    // STS refuses a DurationSeconds above the role's maximum: it must cover every value
    // SQS_PUSH_CREDENTIAL_SECONDS accepts.
    let accepts = |seconds: u64| {
        let seconds = seconds.to_string();
        config_from(&minimal_environment(&[(
            "SQS_PUSH_CREDENTIAL_SECONDS",
            &seconds,
        )]))
        .is_ok()
    };
    let longest = (3600..=86_400).rev().find(|s| accepts(*s)).unwrap();
    assert_eq!(role["Properties"]["MaxSessionDuration"], longest);
    let role_name = role["Properties"]["RoleName"]["Fn::Sub"].as_str().unwrap();
    assert!(role_name.contains("${AWS::Region}"), "{role_name}");
    assert!(role_name.len() - "${AWS::Region}".len() + "ap-southeast-2".len() <= 64);

    let pool = &resource("IdentityPool")["Properties"];
    assert_eq!(pool["AllowUnauthenticatedIdentities"], false);
    assert_eq!(
        pool["DeveloperProviderName"],
        format!("sqs-push.{}", stage())
    );
    assert_eq!(pool["AllowClassicFlow"], true);
    let attachment = of_type("AWS::Cognito::IdentityPoolRoleAttachment");
    assert_eq!(attachment.len(), 1);
    assert_eq!(
        attachment[0].1["Properties"]["Roles"],
        json!({ "authenticated": { "Fn::GetAtt": ["IdentitiesRole", "Arn"] } })
    );
}

/// Does API Gateway's resource tree route `path` to a method? Literal parts, `{param}` for one
/// segment and `{proxy+}` for the rest, as API Gateway matches them.
fn api_gateway_routes(path: &str) -> Option<&'static Value> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let api_resources = of_type("AWS::ApiGateway::Resource");
    let methods = of_type("AWS::ApiGateway::Method");
    let children = |parent: &Value| -> Vec<(&'static str, &'static Value)> {
        api_resources
            .iter()
            .filter(|(_, r)| &r["Properties"]["ParentId"] == parent)
            .copied()
            .collect()
    };
    let method_on = |id: &str| {
        methods
            .iter()
            .map(|(_, m)| *m)
            .find(|m| m["Properties"]["ResourceId"] == json!({ "Ref": id }))
    };
    let mut parent = json!({ "Fn::GetAtt": ["ApiGatewayRestApi", "RootResourceId"] });
    for (index, segment) in segments.iter().enumerate() {
        let candidates = children(&parent);
        let literal = candidates
            .iter()
            .find(|(_, r)| r["Properties"]["PathPart"] == *segment);
        let param = candidates.iter().find(|(_, r)| {
            let part = r["Properties"]["PathPart"].as_str().unwrap();
            part.starts_with('{') && !part.ends_with("+}")
        });
        let greedy = candidates.iter().find(|(_, r)| {
            r["Properties"]["PathPart"]
                .as_str()
                .unwrap()
                .ends_with("+}")
        });
        match (literal.or(param), greedy) {
            (Some((id, _)), _) => {
                if index == segments.len() - 1 {
                    return method_on(id);
                }
                parent = json!({ "Ref": id });
            }
            (None, Some((id, _))) => return method_on(id),
            (None, None) => return None,
        }
    }
    None
}

#[test]
fn api_gateway_hands_every_route_of_the_router_to_the_api_function_with_iam_auth() {
    // One request per route of crates/functions/src/api/mod.rs.
    for path in [
        "/create/100/200/s1",
        "/renew/100/200/s1",
        "/destroy/100/200/s1",
        "/status/100/200/s1",
        "/status",
        "/cleanup",
        "/notify",
        "/notify/account/100",
        "/notify/user/200",
        "/notify/user/200/session/s1",
        "/messages/user/200",
        "/messages/set-read/user/200",
        "/messages/set-read/user/200/message/m1",
        "/messages/set-read/user/200/asof/1795410732",
    ] {
        let method = api_gateway_routes(path)
            .unwrap_or_else(|| panic!("API Gateway does not route {path}"))["Properties"]
            .clone();
        assert_eq!(method["HttpMethod"], "ANY", "{path}");
        assert_eq!(method["AuthorizationType"], "AWS_IAM", "{path}");
        assert_eq!(method["Integration"]["Type"], "AWS_PROXY", "{path}");
        let uri = method["Integration"]["Uri"].to_string();
        let (api_id, _) = function("api");
        assert!(uri.contains(api_id), "{path} goes to {uri}");
    }
}

#[test]
fn alarms_watch_dead_letters_errors_and_iterator_age_and_a_dashboard_shows_them() {
    let alarms: Vec<&Value> = of_type("AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(_, alarm)| &alarm["Properties"])
        .collect();
    let watches = |metric: &str, dimension: &Value| {
        alarms.iter().any(|alarm| {
            alarm["MetricName"] == metric
                && alarm["Dimensions"][0]["Value"] == *dimension
                && !alarm["AlarmActions"].as_array().unwrap().is_empty()
        })
    };
    assert!(watches(
        "ApproximateNumberOfMessagesVisible",
        &json!({ "Fn::GetAtt": ["DeadLetterQueue", "QueueName"] })
    ));
    for name in binaries() {
        let (_, f) = function(&name);
        let function_name = &f["Properties"]["FunctionName"];
        assert!(
            watches("Errors", function_name),
            "an Errors alarm on {name}"
        );
    }
    for name in ["dispatcher", "cleanup"] {
        let (_, f) = function(name);
        assert!(
            watches("IteratorAge", &f["Properties"]["FunctionName"]),
            "an IteratorAge alarm on {name}"
        );
    }
    assert_eq!(of_type("AWS::CloudWatch::Dashboard").len(), 1);
}

#[test]
fn the_outputs_name_what_clients_and_operators_need() {
    let outputs = template()["Outputs"].as_object().unwrap();
    for output in [
        "ServiceEndpoint",
        "EventsStreamName",
        "IdentityPoolId",
        "DeadLetterQueueUrl",
    ] {
        assert!(outputs.contains_key(output), "output {output}");
    }
    assert_eq!(
        outputs["DeadLetterQueueUrl"]["Value"],
        json!({ "Ref": "DeadLetterQueue" })
    );
}

// ---- Production on AWS, day one (issue 23) ----

fn parameter(name: &str) -> &'static Value {
    template()["Parameters"]
        .get(name)
        .unwrap_or_else(|| panic!("the template has no parameter {name}"))
}

fn condition(name: &str) -> &'static Value {
    template()["Conditions"]
        .get(name)
        .unwrap_or_else(|| panic!("the template has no condition {name}"))
}

/// Whether CloudFormation accepts `value` for parameter `name` (its AllowedPattern, anchored as
/// CloudFormation anchors it).
fn parameter_accepts(name: &str, value: &str) -> bool {
    let pattern = parameter(name)["AllowedPattern"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} has an AllowedPattern"));
    regex::Regex::new(&format!("^(?:{pattern})$"))
        .unwrap()
        .is_match(value)
}

/// `!Not [!Equals [!Ref <parameter>, none]]`: on unless the parameter is `none`.
fn on_unless_none(parameter: &str) -> Value {
    json!({ "Fn::Not": [{ "Fn::Equals": [{ "Ref": parameter }, "none"] }] })
}

/// IAM's wildcard match: `*` any run of characters, `?` one.
fn iam_matches(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((b'*', rest)) => (0..=t.len()).any(|skip| go(rest, &t[skip..])),
            Some((b'?', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

fn alarms() -> Vec<(&'static str, &'static Value)> {
    of_type("AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(id, alarm)| (id, &alarm["Properties"]))
        .collect()
}

/// The alarms on `metric` in `namespace` whose first dimension is `dimension`.
fn alarms_on(namespace: &str, metric: &str, dimension: &Value) -> Vec<&'static Value> {
    alarms()
        .into_iter()
        .map(|(_, alarm)| alarm)
        .filter(|alarm| {
            alarm["Namespace"] == namespace
                && alarm["MetricName"] == metric
                && alarm["Dimensions"][0]["Value"] == *dimension
        })
        .collect()
}

fn function_name(name: &str) -> Value {
    function(name).1["Properties"]["FunctionName"].clone()
}

#[test]
fn no_function_reserves_concurrency_unless_a_parameter_asks() {
    for (name, parameter_name, condition_name) in [
        ("sender", "SenderConcurrency", "SenderConcurrencyReserved"),
        (
            "history",
            "HistoryConcurrency",
            "HistoryConcurrencyReserved",
        ),
    ] {
        let (_, f) = function(name);
        assert_eq!(
            f["Properties"]["ReservedConcurrentExecutions"],
            json!({ "Fn::If": [condition_name, { "Ref": parameter_name }, { "Ref": "AWS::NoValue" }] }),
            "{name} reserves only what the parameter asks"
        );
        assert_eq!(condition(condition_name), &on_unless_none(parameter_name));
        // Packaged with the defaults: nothing reserved, so a new account (quota 10) deploys.
        assert_eq!(parameter(parameter_name)["Default"], "none", "{name}");
        assert!(parameter_accepts(parameter_name, "none"));
        assert!(parameter_accepts(parameter_name, "5"));
        for refused in ["0", "-1", "five", ""] {
            assert!(
                !parameter_accepts(parameter_name, refused),
                "{parameter_name} accepts {refused:?} (0 would stop the function)"
            );
        }
    }
    for name in ["api", "dispatcher", "cleanup"] {
        let (_, f) = function(name);
        assert!(
            f["Properties"]
                .get("ReservedConcurrentExecutions")
                .is_none(),
            "{name} reserves concurrency"
        );
    }
}

#[test]
fn the_alarm_topic_is_unencrypted_or_on_a_customer_key_never_an_aws_managed_one() {
    let topic = &resource("AlarmTopic")["Properties"];
    match topic.get("KmsMasterKeyId") {
        None => {}
        Some(Value::String(key)) => panic!(
            "the alarm topic is encrypted with the fixed key {key}: an AWS-managed key \
             (alias/aws/*) does not let CloudWatch publish, so no alarm would notify"
        ),
        Some(key) => {
            assert_eq!(
                key,
                &json!({ "Fn::If": ["AlarmTopicEncrypted", { "Ref": "AlarmTopicKmsKey" }, { "Ref": "AWS::NoValue" }] })
            );
            assert_eq!(
                condition("AlarmTopicEncrypted"),
                &on_unless_none("AlarmTopicKmsKey")
            );
            assert_eq!(parameter("AlarmTopicKmsKey")["Default"], "none");
            assert!(parameter_accepts(
                "AlarmTopicKmsKey",
                "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
            ));
            for managed in [
                "alias/aws/sns",
                "arn:aws:kms:eu-west-1:123456789012:alias/aws/sns",
                "alias/my-key",
            ] {
                assert!(
                    !parameter_accepts("AlarmTopicKmsKey", managed),
                    "the alarm topic would accept {managed}"
                );
            }
        }
    }
}

#[test]
fn an_optional_subscription_delivers_the_alarm_topic() {
    let subscription = resource("AlarmSubscription");
    assert_eq!(subscription["Type"], "AWS::SNS::Subscription");
    assert_eq!(subscription["Condition"], "AlarmSubscribed");
    assert_eq!(
        condition("AlarmSubscribed"),
        &on_unless_none("AlarmEndpoint")
    );
    assert_eq!(parameter("AlarmEndpoint")["Default"], "none");
    let properties = &subscription["Properties"];
    assert_eq!(properties["TopicArn"], json!({ "Ref": "AlarmTopic" }));
    assert_eq!(properties["Endpoint"], json!({ "Ref": "AlarmEndpoint" }));
    assert_eq!(properties["Protocol"], "email");
}

#[test]
fn every_alarm_notifies_the_topic_when_it_fires_and_clears() {
    let topic = json!([{ "Ref": "AlarmTopic" }]);
    let all = alarms();
    assert!(all.len() >= 27, "{} alarms", all.len());
    let mut names = BTreeSet::new();
    for (id, alarm) in all {
        assert_eq!(alarm["AlarmActions"], topic, "{id}");
        assert_eq!(alarm["OKActions"], topic, "{id}");
        assert_eq!(alarm["TreatMissingData"], "notBreaching", "{id}");
        let name = alarm["AlarmName"].as_str().unwrap();
        assert!(name.starts_with(&format!("{}-", prefix())), "{id}: {name}");
        assert!(names.insert(name.to_string()), "{id}: {name} twice");
    }
}

#[test]
fn throttles_of_every_function_alarm() {
    for name in binaries() {
        let found = alarms_on("AWS/Lambda", "Throttles", &function_name(&name));
        assert_eq!(found.len(), 1, "a Throttles alarm on {name}");
        assert_eq!(found[0]["Statistic"], "Sum");
        assert_eq!(found[0]["ComparisonOperator"], "GreaterThanThreshold");
    }
}

#[test]
fn async_events_dropped_or_aging_alarm_for_every_async_invoked_function() {
    for name in ["sender", "history", "dispatcher"] {
        let dropped = alarms_on("AWS/Lambda", "AsyncEventsDropped", &function_name(name));
        assert_eq!(dropped.len(), 1, "an AsyncEventsDropped alarm on {name}");
        assert_eq!(dropped[0]["Threshold"], 0);
        let age = alarms_on("AWS/Lambda", "AsyncEventAge", &function_name(name));
        assert_eq!(age.len(), 1, "an AsyncEventAge alarm on {name}");
        let threshold = age[0]["Threshold"].as_i64().unwrap();
        // Before Lambda's maximumEventAge drops the event (3600 s for sender and dispatcher).
        assert!(
            (60_000..3_600_000).contains(&threshold),
            "{name}: {threshold} ms"
        );
    }
}

#[test]
fn api_5xx_and_p99_latency_alarm_on_the_api_that_exists() {
    let api_name = &resource("ApiGatewayRestApi")["Properties"]["Name"];
    assert_eq!(api_name, &json!(prefix()));
    let errors = alarms_on("AWS/ApiGateway", "5XXError", api_name);
    assert_eq!(errors.len(), 1, "a 5XX alarm on {api_name}");
    assert_eq!(errors[0]["Dimensions"][0]["Name"], "ApiName");
    let latency = alarms_on("AWS/ApiGateway", "Latency", api_name);
    assert_eq!(latency.len(), 1, "a latency alarm on {api_name}");
    assert_eq!(latency[0]["ExtendedStatistic"], "p99");
    assert!(
        latency[0]["Threshold"].as_i64().unwrap() < 29_000,
        "under the API timeout"
    );
}

#[test]
fn dynamodb_throttled_requests_alarm_for_every_table_and_the_account_index() {
    for table in ["SessionsTable", "ChannelsTable", "HistoryTable"] {
        let reference = json!({ "Ref": table });
        let alarm = alarms()
            .into_iter()
            .map(|(_, alarm)| alarm)
            .find(|alarm| {
                alarm["Metrics"].as_array().is_some_and(|metrics| {
                    metrics
                        .iter()
                        .any(|m| m["MetricStat"]["Metric"]["Dimensions"][0]["Value"] == reference)
                })
            })
            .unwrap_or_else(|| panic!("a throttle alarm on {table}"));
        let metrics = alarm["Metrics"].as_array().unwrap();
        let watched: BTreeSet<String> = metrics
            .iter()
            .filter_map(|m| m["MetricStat"]["Metric"]["MetricName"].as_str())
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            watched,
            set(&["ReadThrottleEvents", "WriteThrottleEvents"]),
            "{table}"
        );
        let returned: Vec<&Value> = metrics.iter().filter(|m| m["ReturnData"] == true).collect();
        assert_eq!(returned.len(), 1, "{table}: one expression alarms");
        let expression = returned[0]["Expression"].as_str().unwrap();
        for m in metrics.iter().filter(|m| m["ReturnData"] == false) {
            let id = m["Id"].as_str().unwrap();
            assert!(
                expression.contains(id),
                "{table}: {expression} leaves out {id}"
            );
        }
        if table == "SessionsTable" {
            assert!(
                metrics.iter().any(|m| {
                    m["MetricStat"]["Metric"]["Dimensions"][1]
                        == json!({ "Name": "GlobalSecondaryIndexName", "Value": sqs_push_aws::sessions::ACCOUNT_INDEX })
                }),
                "the account index's throttles count too"
            );
        }
    }
}

#[test]
fn failed_and_dead_lettered_deliveries_and_poison_records_alarm_on_the_functions_own_metrics() {
    use sqs_push_functions::metrics::{DIMENSION, Metric, NAMESPACE};
    let stage = json!(stage());
    for metric in [
        Metric::DeliveriesFailed,
        Metric::DeliveriesDeadLettered,
        Metric::RecordsRejected,
    ] {
        let found = alarms_on(NAMESPACE, metric.name(), &stage);
        assert_eq!(found.len(), 1, "an alarm on {}", metric.name());
        assert_eq!(found[0]["Dimensions"][0]["Name"], DIMENSION);
        assert_eq!(found[0]["Statistic"], "Sum");
        assert_eq!(found[0]["Threshold"], 0);
    }
}

/// The dashboard body with its `${Name}` substitutions made, as CloudWatch would read it.
fn dashboard() -> Value {
    let body = &resource("Dashboard")["Properties"]["DashboardBody"]["Fn::Sub"];
    let mut text = body[0].as_str().unwrap().to_string();
    for (name, value) in body[1].as_object().unwrap() {
        text = text.replace(&format!("${{{name}}}"), value.as_str().unwrap());
    }
    text = text.replace("${AWS::Region}", "us-east-1");
    text = text.replace("${DeadLetterQueue.QueueName}", "dlq");
    serde_json::from_str(&text).expect("the dashboard body is JSON")
}

#[test]
fn the_dashboard_names_the_api_that_exists_and_shows_the_functions_metrics() {
    let widgets = dashboard()["widgets"].as_array().unwrap().clone();
    let metric_rows: Vec<Value> = widgets
        .iter()
        .filter_map(|w| w["properties"]["metrics"].as_array())
        .flatten()
        .cloned()
        .collect();
    let api_name = resource("ApiGatewayRestApi")["Properties"]["Name"].clone();
    let api_rows: Vec<&Value> = metric_rows
        .iter()
        .filter(|row| row[0] == "AWS/ApiGateway")
        .collect();
    assert!(!api_rows.is_empty(), "an API widget");
    for row in api_rows {
        assert_eq!(row[2], "ApiName");
        assert_eq!(row[3], api_name, "the widget asks for an API that exists");
    }
    use sqs_push_functions::metrics::{DIMENSION, Metric, NAMESPACE};
    // Rows use CloudWatch's "." shorthand for "as the row above".
    let mut shown = BTreeSet::new();
    let mut namespace = String::new();
    for row in &metric_rows {
        if row[0] != "." {
            namespace = row[0].as_str().unwrap_or_default().to_string();
        }
        if namespace == NAMESPACE {
            shown.insert(row[1].as_str().unwrap().to_string());
            if row[2] != "." {
                assert_eq!(row[2], DIMENSION);
                assert_eq!(row[3], stage());
            }
        }
    }
    for metric in [
        Metric::DeliveriesSent,
        Metric::DeliveriesFailed,
        Metric::DeliveriesHandedOn,
        Metric::DeliveriesDeadLettered,
        Metric::SessionsEnded,
        Metric::SessionsCreated,
        Metric::SessionsRenewed,
        Metric::SessionsDestroyed,
        Metric::DispatchLatency,
    ] {
        assert!(
            shown.contains(metric.name()),
            "the dashboard shows {metric:?}"
        );
    }
    let known: BTreeSet<String> = Metric::ALL.iter().map(|m| m.name().to_string()).collect();
    assert!(
        shown.is_subset(&known),
        "the dashboard shows metrics nothing emits: {:?}",
        shown.difference(&known).collect::<Vec<_>>()
    );
}

/// Every SQS resource pattern in every role of the template, with the packaged stage's name
/// replaced by `stage`.
fn queue_patterns_for(stage_name: &str) -> Vec<(String, String)> {
    let packaged = format!(":{}", prefix());
    let mut patterns = Vec::new();
    for (id, role) in of_type("AWS::IAM::Role") {
        for statement in statements(role) {
            let targets = match &statement["Resource"] {
                Value::Array(items) => items.clone(),
                single => vec![single.clone()],
            };
            for target in targets {
                let Some(sub) = target.get("Fn::Sub").and_then(Value::as_str) else {
                    continue;
                };
                if !sub.contains(":sqs:") {
                    continue;
                }
                let arn = sub
                    .replace("${AWS::Partition}", "aws")
                    .replace("${AWS::Region}", "eu-west-1")
                    .replace("${AWS::AccountId}", "123456789012")
                    .replace(&packaged, &format!(":sqs-push-{stage_name}"));
                patterns.push((id.to_string(), arn));
            }
        }
    }
    patterns
}

#[test]
fn stages_prod_and_prod_eu_cannot_reach_each_others_queues() {
    let queue_of = |stage_name: &str| {
        let mut environment = minimal_environment(&[]);
        environment.insert("SQS_PUSH_STAGE".into(), stage_name.into());
        let config = config_from(&environment).unwrap();
        let name = config.queue_names().unwrap().generate();
        format!("arn:aws:sqs:eu-west-1:123456789012:{name}")
    };
    for (own, other) in [("prod", "prod-eu"), ("prod-eu", "prod")] {
        let patterns = queue_patterns_for(own);
        assert!(patterns.len() >= 6, "{patterns:?}");
        for _ in 0..20 {
            let (mine, theirs) = (queue_of(own), queue_of(other));
            for (role, pattern) in &patterns {
                assert!(
                    !iam_matches(pattern, &theirs),
                    "{role} of stage {own} reaches {theirs} of stage {other} through {pattern}"
                );
            }
            let reaching_mine = patterns
                .iter()
                .filter(|(_, pattern)| iam_matches(pattern, &mine))
                .count();
            assert!(reaching_mine >= 5, "{own}'s roles reach its own queues");
        }
    }
}

#[test]
fn every_resource_that_takes_tags_carries_the_stack_tags() {
    let expected = json!([
        { "Key": "service", "Value": "sqs-push" },
        { "Key": "stage", "Value": stage() },
        { "Key": "cost-center", "Value": "sqs-push" },
    ]);
    // Types CloudFormation cannot tag (they have no Tags property).
    let untaggable = set(&[
        "AWS::S3::BucketPolicy",
        "AWS::Lambda::EventInvokeConfig",
        "AWS::Lambda::Permission",
        "AWS::ApiGateway::Resource",
        "AWS::ApiGateway::Method",
        "AWS::ApiGateway::Deployment",
        "AWS::SQS::QueuePolicy",
        "AWS::Cognito::IdentityPoolRoleAttachment",
        "AWS::SNS::Subscription",
        "AWS::CloudWatch::Dashboard",
    ]);
    for (id, resource) in resources() {
        let kind = resource["Type"].as_str().unwrap();
        if untaggable.contains(kind) {
            continue;
        }
        let properties = &resource["Properties"];
        let tags = properties
            .get("Tags")
            .or_else(|| properties.get("IdentityPoolTags"))
            .unwrap_or_else(|| panic!("{id} ({kind}) has no tags"));
        let tags = if kind == "AWS::Lambda::Function" || kind == "AWS::ApiGateway::RestApi" {
            // The framework writes provider.tags; order is its own.
            let mut sorted = tags.as_array().unwrap().clone();
            sorted.sort_by_key(|tag| tag["Key"].as_str().unwrap().to_string());
            let mut wanted = expected.as_array().unwrap().clone();
            wanted.sort_by_key(|tag| tag["Key"].as_str().unwrap().to_string());
            assert_eq!(sorted, wanted, "{id}");
            continue;
        } else {
            tags
        };
        assert_eq!(tags, &expected, "{id} ({kind})");
    }
}

#[test]
fn every_table_keeps_point_in_time_recovery_and_refuses_deletion() {
    for id in ["SessionsTable", "ChannelsTable", "HistoryTable"] {
        let table = &resource(id)["Properties"];
        assert_eq!(
            table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true,
            "{id}"
        );
        assert_eq!(table["DeletionProtectionEnabled"], true, "{id}");
    }
}

#[test]
fn a_schedule_calls_get_cleanup_through_iam_with_a_role_that_may_call_only_that() {
    let rule = &resource("CleanupSchedule")["Properties"];
    assert_eq!(rule["State"], "ENABLED");
    let schedule = rule["ScheduleExpression"].as_str().unwrap();
    assert!(
        schedule.starts_with("rate(") || schedule.starts_with("cron("),
        "{schedule}"
    );
    let targets = rule["Targets"].as_array().unwrap();
    assert_eq!(targets.len(), 1);
    let target = &targets[0];
    let arn = target["Arn"]["Fn::Sub"].as_str().unwrap();
    assert_eq!(
        arn,
        format!(
            "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{ApiGatewayRestApi}}/{}/GET/*",
            stage()
        )
    );
    assert_eq!(
        target["HttpParameters"]["PathParameterValues"],
        json!(["cleanup"])
    );
    assert!(
        api_gateway_routes("/cleanup").is_some(),
        "API Gateway routes /cleanup"
    );
    let role_id = referenced_id(&target["RoleArn"]).unwrap();
    let role = resource(&role_id);
    assert_eq!(
        role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"],
        json!({ "Service": "events.amazonaws.com" })
    );
    let granted = statements(role);
    assert_eq!(granted.len(), 1);
    assert_eq!(granted[0]["Action"], "execute-api:Invoke");
    assert_eq!(
        granted[0]["Resource"]["Fn::Sub"],
        format!(
            "arn:${{AWS::Partition}}:execute-api:${{AWS::Region}}:${{AWS::AccountId}}:${{ApiGatewayRestApi}}/{}/GET/cleanup",
            stage()
        )
    );
    assert_eq!(
        alarms_on(
            "AWS/Events",
            "FailedInvocations",
            &json!({ "Ref": "CleanupSchedule" })
        )
        .len(),
        1,
        "a failed schedule alarms"
    );
}

#[test]
fn tracing_is_on_for_every_function_and_its_role_may_write_traces() {
    for name in binaries() {
        let (_, f) = function(&name);
        assert_eq!(
            f["Properties"]["TracingConfig"],
            json!({ "Mode": "Active" }),
            "{name}"
        );
        let (id, role) = role_of(&name);
        assert!(
            statements(role).iter().any(|s| s["Effect"] == "Allow"
                && strings(&s["Action"]) == ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]),
            "{id} may write traces"
        );
    }
}

/// The SQS resource patterns a role reaches with `parameters`, as ARNs in one account.
fn sqs_patterns(role: &Value, parameters: &HashMap<&str, &str>) -> Vec<(BTreeSet<String>, String)> {
    let mut found = Vec::new();
    for statement in statements_with(role, parameters) {
        let targets = match &statement["Resource"] {
            Value::Array(items) => items.clone(),
            single => vec![single.clone()],
        };
        for target in targets {
            let Some(sub) = target.get("Fn::Sub").and_then(Value::as_str) else {
                continue;
            };
            if sub.contains(":sqs:") {
                let arn = sub
                    .replace("${AWS::Partition}", "aws")
                    .replace("${AWS::Region}", "eu-west-1")
                    .replace("${AWS::AccountId}", "123456789012");
                let actions = strings(&statement["Action"]).into_iter().collect();
                found.push((actions, arn));
            }
        }
    }
    found
}

#[test]
fn legacy_queue_names_are_reachable_only_while_the_parameter_is_true_and_only_the_stages_own() {
    let legacy = parameter("LegacyQueueNames");
    assert_eq!(legacy["Default"], "false", "off unless an upgrade asks");
    assert_eq!(legacy["AllowedValues"], json!(["true", "false"]));
    assert_eq!(
        condition("LegacyQueueNamesReachable"),
        &json!({ "Fn::Equals": [{ "Ref": "LegacyQueueNames" }, "true"] })
    );
    let arn = |name: String| format!("arn:aws:sqs:eu-west-1:123456789012:{name}");
    let random = "A".repeat(43);
    let old_own = arn(format!("{}-{random}", prefix()));
    let new_own = arn(config_from(&minimal_environment(&[]))
        .unwrap()
        .queue_names()
        .unwrap()
        .generate());
    // Another stage whose name starts with ours: its old and new names.
    let foreign = [
        arn(format!("{}-eu-{random}", prefix())),
        arn(format!("{}-eu_{random}", prefix())),
        arn(format!("{}-upstream", prefix())),
    ];
    let on = HashMap::from([("LegacyQueueNames", "true")]);
    let off = HashMap::from([("LegacyQueueNames", "false")]);
    let mut reaching_old = 0;
    for (id, role) in of_type("AWS::IAM::Role") {
        let actions_on = |parameters: &HashMap<&str, &str>, queue: &str| -> BTreeSet<String> {
            sqs_patterns(role, parameters)
                .into_iter()
                .filter(|(_, pattern)| iam_matches(pattern, queue))
                .flat_map(|(actions, _)| actions)
                .collect()
        };
        assert!(
            actions_on(&off, &old_own).is_empty(),
            "{id} reaches {old_own} with the parameter off"
        );
        assert_eq!(
            statements(role).len(),
            statements_with(role, &off).len(),
            "{id}: off by default"
        );
        let old_actions = actions_on(&on, &old_own);
        let new_actions = actions_on(&on, &new_own);
        // The same actions on an old-named queue as on a new one, less making queues.
        let expected: BTreeSet<String> = new_actions
            .iter()
            .filter(|a| !["sqs:CreateQueue", "sqs:TagQueue"].contains(&a.as_str()))
            .cloned()
            .collect();
        assert_eq!(
            old_actions, expected,
            "{id}: old-named queues with the parameter on"
        );
        reaching_old += usize::from(!old_actions.is_empty());
        for queue in &foreign {
            assert!(actions_on(&on, queue).is_empty(), "{id} reaches {queue}");
        }
    }
    assert_eq!(
        reaching_old, 7,
        "the six functions' roles and the identities' role"
    );
    for name in binaries() {
        let (_, f) = function(&name);
        assert_eq!(
            f["Properties"]["Environment"]["Variables"]["SQS_PUSH_LEGACY_QUEUE_NAMES"],
            json!({ "Ref": "LegacyQueueNames" }),
            "{name}: /cleanup sweeps old names exactly while they are reachable"
        );
    }
    let with = |value: &str| {
        config_from(&minimal_environment(&[(
            "SQS_PUSH_LEGACY_QUEUE_NAMES",
            value,
        )]))
        .unwrap()
        .legacy_queue_names
    };
    assert!(with("true") && !with("false"));
}
