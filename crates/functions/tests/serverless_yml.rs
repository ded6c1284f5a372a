//! serverless.yml is written by hand; these checks keep it in step with the code it deploys.

use sqs_push_core::session::policy::QUEUE_READER_ACTIONS;

fn serverless_yml() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../serverless.yml"))
        .expect("serverless.yml exists at the repository root")
}

#[test]
fn every_lambda_binary_is_deployed_from_its_own_artifact() {
    let yml = serverless_yml();
    let bins = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src/bin")).unwrap();
    for entry in bins {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let function = name.trim_end_matches(".rs");
        assert!(
            yml.contains(&format!("artifact: target/lambda/{function}/bootstrap.zip")),
            "serverless.yml does not deploy {function}"
        );
    }
}

#[test]
fn the_identities_role_allows_only_reading_queues_tagged_with_the_callers_identity() {
    let yml = serverless_yml();
    let role = &yml[yml.find("IdentityRole:").expect("the role is declared")..];
    let role = &role[..role.find("IdentityPoolRoles:").unwrap_or(role.len())];
    for action in QUEUE_READER_ACTIONS {
        assert!(role.contains(action), "the role lacks {action}");
    }
    for forbidden in [
        "sqs:SendMessage",
        "sqs:PurgeQueue",
        "sqs:DeleteQueue",
        "sqs:*,",
        "sqs:*]",
    ] {
        assert!(!role.contains(forbidden), "the role allows {forbidden}");
    }
    assert!(role.contains("\"aws:ResourceTag/owner\""));
    assert!(role.contains("{cognito-identity.amazonaws.com:sub}"));
    assert!(role.contains("amr\": authenticated }"));
    assert!(!role.contains("unauthenticated"));
}

#[test]
fn the_identity_pool_keeps_the_classic_flow_and_tables_keep_their_ttl_and_stream() {
    let yml = serverless_yml();
    assert!(yml.contains("AllowClassicFlow: true"));
    assert!(yml.contains("AllowUnauthenticatedIdentities: false"));
    assert!(yml.contains("DeveloperProviderName: sqs-push.${self:provider.stage}"));
    assert!(!yml.contains("cognito-identity:GetId,"));
    assert!(yml.contains("StreamViewType: NEW_AND_OLD_IMAGES"));
    assert_eq!(
        yml.matches("TimeToLiveSpecification: { AttributeName: ttl, Enabled: true }")
            .count(),
        2
    );
    assert!(yml.contains("IndexName: accountId-index") && yml.contains("IndexName: created-index"));
    assert!(yml.contains("functionResponseType: ReportBatchItemFailures"));
}
