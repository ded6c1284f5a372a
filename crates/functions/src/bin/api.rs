//! The api Lambda: the Router behind API Gateway (IAM auth).

use sqs_push_functions::config::StackConfig;
use sqs_push_functions::metrics::Emf;
use sqs_push_functions::wiring::{Adapters, api_state};
use sqs_push_functions::{api, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init_lambda();
    let config = StackConfig::from_env()?;
    let state = api_state(&config, &Adapters::aws(&config).await)?;
    let router = Emf::new(&config.stage, "api").track_api(api::router(state));
    lambda_http::run(router).await
}
