//! `call-gw ENV REGION PATH`: the Reuters demo's signed API call.

use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use sqs_push_local::stack::{DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY};

/// Arguments of call-gw.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The stage: `local` for the local stack, otherwise the deployed stack `sqs-push-<ENV>`.
    env: String,
    /// The region to sign for.
    region: String,
    /// The API path with its query, e.g. `/notify/user/200?message=Hello+User`.
    path: String,
    /// The API's base URL; scripts/call_gw finds it for deployed stacks.
    #[arg(long, env = "SQS_PUSH_API_URL")]
    url: Option<String>,
    /// HTTP method.
    #[arg(long, short = 'X', default_value = "GET")]
    method: String,
    /// A JSON body to send (with POST).
    #[arg(long, short = 'd')]
    data: Option<String>,
}

async fn credentials(env: &str, region: &str) -> Result<Credentials, String> {
    if env == "local" {
        let access_key = std::env::var("SQS_PUSH_LOCAL_ACCESS_KEY")
            .unwrap_or_else(|_| DEFAULT_ACCESS_KEY.to_string());
        let secret_key = std::env::var("SQS_PUSH_LOCAL_SECRET_KEY")
            .unwrap_or_else(|_| DEFAULT_SECRET_KEY.to_string());
        return Ok(Credentials::new(
            access_key, secret_key, None, None, "local",
        ));
    }
    let config = sqs_push_aws::load_sdk_config(&sqs_push_aws::Endpoint {
        region: region.to_string(),
        ..sqs_push_aws::Endpoint::default()
    })
    .await;
    let provider = config
        .credentials_provider()
        .ok_or("no AWS credentials found in the environment")?;
    provider
        .provide_credentials()
        .await
        .map_err(|error| format!("cannot load AWS credentials: {error}"))
}

/// Signs and sends one request; returns the status and body.
pub async fn call(
    url: &str,
    method: &str,
    region: &str,
    credentials: &Credentials,
    body: &[u8],
) -> Result<(u16, String), String> {
    let parsed = reqwest::Url::parse(url).map_err(|error| format!("bad URL {url}: {error}"))?;
    let host = match parsed.port() {
        Some(port) => format!("{}:{port}", parsed.host_str().unwrap_or("")),
        None => parsed.host_str().unwrap_or("").to_string(),
    };
    let mut headers = vec![("host".to_string(), host)];
    if !body.is_empty() {
        headers.push(("content-type".to_string(), "application/json".to_string()));
    }
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("execute-api")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|error| error.to_string())?
        .into();
    let signable = SignableRequest::new(
        method,
        parsed.as_str(),
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|error| format!("cannot sign: {error}"))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|error| format!("cannot sign: {error}"))?
        .into_parts();
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("bad HTTP method {method}"))?;
    let mut request = reqwest::Client::new().request(method, parsed.clone());
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    for (name, value) in instructions.headers() {
        request = request.header(name, value);
    }
    let response = request
        .body(body.to_vec())
        .send()
        .await
        .map_err(|error| format!("request to {url} failed: {error}"))?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|error| error.to_string())?;
    Ok((status, text))
}

/// Runs call-gw.
pub async fn run(args: Args) -> ExitCode {
    let base = match (&args.url, args.env.as_str()) {
        (Some(url), _) => url.clone(),
        (None, "local") => std::env::var("SQS_PUSH_LOCAL_API_URL")
            .unwrap_or_else(|_| "http://127.0.0.1:3000".to_string()),
        (None, env) => {
            eprintln!(
                "call-gw: no API URL for stage {env:?}: pass --url or run scripts/call_gw, which reads it from stack sqs-push-{env}"
            );
            return ExitCode::from(2);
        }
    };
    if !args.path.starts_with('/') {
        eprintln!("call-gw: PATH must start with '/', e.g. /create/100/200/my-session");
        return ExitCode::from(2);
    }
    let url = format!("{}{}", base.trim_end_matches('/'), args.path);
    let result = async {
        let credentials = credentials(&args.env, &args.region).await?;
        let body = args.data.unwrap_or_default();
        call(
            &url,
            &args.method,
            &args.region,
            &credentials,
            body.as_bytes(),
        )
        .await
    }
    .await;
    match result {
        Ok((status, text)) => {
            let shown = match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(json) => serde_json::to_string_pretty(&json).unwrap_or(text),
                Err(_) => text,
            };
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = writeln!(std::io::stdout(), "{shown}");
            if (200..300).contains(&status) {
                ExitCode::SUCCESS
            } else {
                eprintln!("call-gw: HTTP {status}");
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("call-gw: {error}");
            ExitCode::FAILURE
        }
    }
}
