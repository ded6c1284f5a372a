//! CloudWatch metrics in the embedded metric format (EMF): one JSON line on stdout per
//! invocation, which CloudWatch Logs turns into metrics in namespace [`NAMESPACE`] with the one
//! dimension `Stage`, so that an alarm can watch a count ("failed deliveries > 0") that
//! otherwise lives only in a log field.
//!
//! Counts come from the reports the core already returns (send, stream, history, cleanup) and
//! from the api's answers; this module only writes them. Why not a crate: the maintained EMF
//! crate (metrics_cloudwatch_embedded) is a global `metrics` recorder flushed by its own Lambda
//! run loop; the api runs through lambda_http with an axum Router and the local stack runs all
//! five functions in one process, so a global recorder would need two integrations and would
//! mix the functions' counts. One serde_json line per invocation needs neither.
//!
//! Not for: logs (tracing) or traces (X-Ray, set on the functions by serverless.yml).

use std::io::Write;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Map, Value, json};
use sqs_push_core::dispatch::send::SendOutcome;

/// The CloudWatch namespace of every metric here (serverless.yml's alarms and dashboard read it).
pub const NAMESPACE: &str = "sqs-push";
/// The one dimension: the stage, so that an alarm of one stage sums every function's counts.
pub const DIMENSION: &str = "Stage";

/// A metric the functions emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Messages SQS accepted from the sender.
    DeliveriesSent,
    /// Deliveries the sender could neither send nor settle: its hand-on or dead-lettering
    /// failed, so Lambda retries the whole job. Failures it handed on or dead-lettered are
    /// counted under those metrics, not here.
    DeliveriesFailed,
    /// Deliveries the sender handed on to a fresh invocation (deadline or transient failure).
    DeliveriesHandedOn,
    /// Deliveries of a sender job given up after its last hand-on: Lambda retries the job,
    /// then writes it to the dead-letter queue.
    DeliveriesDeadLettered,
    /// Deliveries to queues that no longer exist (sessions that ended meanwhile).
    DeliveriesToEndedSessions,
    /// Sessions removed from the table (destroy or TTL) that cleanup handled.
    SessionsEnded,
    /// Successful `/create` calls.
    SessionsCreated,
    /// Successful `/renew` calls.
    SessionsRenewed,
    /// Successful `/destroy` calls.
    SessionsDestroyed,
    /// Kinesis records the dispatcher dispatched.
    RecordsDispatched,
    /// Kinesis records the dispatcher skipped for good (malformed or poison), each put in the
    /// dead-letter queue as the record; the `poison-records` alarm watches it.
    RecordsRejected,
    /// History rows written.
    HistoryWritten,
    /// History rows not written (the job fails and Lambda retries it).
    HistoryFailed,
    /// How long one dispatch took: a `/notify` request, or one Kinesis batch.
    DispatchLatency,
    /// Upstream messages the consumer routed or handled.
    UpstreamAccepted,
    /// Upstream messages skipped as replays or SQS redeliveries.
    UpstreamDuplicates,
    /// Upstream messages not sent by a browser session (another principal): dropped.
    UpstreamNotBrowser,
    /// Upstream messages that were not a valid envelope (JSON, fields, size): dropped.
    UpstreamMalformed,
    /// Upstream messages naming a session not the sender's: dropped, a strike.
    UpstreamWrongSession,
    /// Upstream messages whose timestamp was too far from now: dropped.
    UpstreamStale,
    /// Upstream messages over a session's or account's rate: dropped, a strike.
    UpstreamOverLimit,
    /// Upstream messages whose routing failed: SQS redelivers them, then dead-letters them.
    UpstreamFailed,
}

impl Metric {
    /// Every metric, for the template tests (dashboard and alarms name only these).
    pub const ALL: [Metric; 22] = [
        Metric::DeliveriesSent,
        Metric::DeliveriesFailed,
        Metric::DeliveriesHandedOn,
        Metric::DeliveriesDeadLettered,
        Metric::DeliveriesToEndedSessions,
        Metric::SessionsEnded,
        Metric::SessionsCreated,
        Metric::SessionsRenewed,
        Metric::SessionsDestroyed,
        Metric::RecordsDispatched,
        Metric::RecordsRejected,
        Metric::HistoryWritten,
        Metric::HistoryFailed,
        Metric::DispatchLatency,
        Metric::UpstreamAccepted,
        Metric::UpstreamDuplicates,
        Metric::UpstreamNotBrowser,
        Metric::UpstreamMalformed,
        Metric::UpstreamWrongSession,
        Metric::UpstreamStale,
        Metric::UpstreamOverLimit,
        Metric::UpstreamFailed,
    ];

    /// The CloudWatch metric name.
    pub fn name(self) -> &'static str {
        match self {
            Metric::DeliveriesSent => "DeliveriesSent",
            Metric::DeliveriesFailed => "DeliveriesFailed",
            Metric::DeliveriesHandedOn => "DeliveriesHandedOn",
            Metric::DeliveriesDeadLettered => "DeliveriesDeadLettered",
            Metric::DeliveriesToEndedSessions => "DeliveriesToEndedSessions",
            Metric::SessionsEnded => "SessionsEnded",
            Metric::SessionsCreated => "SessionsCreated",
            Metric::SessionsRenewed => "SessionsRenewed",
            Metric::SessionsDestroyed => "SessionsDestroyed",
            Metric::RecordsDispatched => "RecordsDispatched",
            Metric::RecordsRejected => "RecordsRejected",
            Metric::HistoryWritten => "HistoryWritten",
            Metric::HistoryFailed => "HistoryFailed",
            Metric::DispatchLatency => "DispatchLatency",
            Metric::UpstreamAccepted => "UpstreamAccepted",
            Metric::UpstreamDuplicates => "UpstreamDuplicates",
            Metric::UpstreamNotBrowser => "UpstreamNotBrowser",
            Metric::UpstreamMalformed => "UpstreamMalformed",
            Metric::UpstreamWrongSession => "UpstreamWrongSession",
            Metric::UpstreamStale => "UpstreamStale",
            Metric::UpstreamOverLimit => "UpstreamOverLimit",
            Metric::UpstreamFailed => "UpstreamFailed",
        }
    }

    /// The CloudWatch unit.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::DispatchLatency => "Milliseconds",
            _ => "Count",
        }
    }
}

/// The counts of one `sender` invocation that settled what it left. A delivery that failed
/// here but was handed on or dead-lettered counts under those, not as failed: only what is
/// left unsettled is (none, when the settling succeeded).
pub fn send_metrics(outcome: &SendOutcome) -> [(Metric, f64); 5] {
    let report = &outcome.report;
    let unsettled =
        (report.failed + report.unsent).saturating_sub(outcome.handed_on + outcome.dead_lettered);
    [
        (Metric::DeliveriesSent, report.sent as f64),
        (Metric::DeliveriesFailed, unsettled as f64),
        (Metric::DeliveriesToEndedSessions, report.queues_gone as f64),
        (Metric::DeliveriesHandedOn, outcome.handed_on as f64),
        (Metric::DeliveriesDeadLettered, outcome.dead_lettered as f64),
    ]
}

/// Where documents go: stdout on Lambda; a test's buffer.
type Sink = Arc<dyn Fn(&str) + Send + Sync>;

/// Writes EMF documents for one function of one stage.
#[derive(Clone)]
pub struct Emf {
    stage: String,
    function: &'static str,
    sink: Sink,
}

impl std::fmt::Debug for Emf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emf")
            .field("stage", &self.stage)
            .field("function", &self.function)
            .finish_non_exhaustive()
    }
}

/// One write of a whole line, so a concurrent log line cannot split it.
fn stdout_line(line: &str) {
    let _ = std::io::stdout().lock().write_all(line.as_bytes());
}

impl Emf {
    /// Metrics of `function` (a property of each document, not a dimension) in `stage`.
    pub fn new(stage: &str, function: &'static str) -> Self {
        Self::with_sink(stage, function, Arc::new(stdout_line))
    }

    /// The same, writing each line (with its newline) to `sink` instead of stdout.
    pub fn with_sink(stage: &str, function: &'static str, sink: Sink) -> Self {
        Self {
            stage: stage.to_string(),
            function,
            sink,
        }
    }

    /// The EMF document for `values` at `timestamp_ms`; `None` when there is nothing to say.
    /// Metrics named twice are summed (counts) — latency is only ever named once.
    pub fn document(&self, values: &[(Metric, f64)], timestamp_ms: u64) -> Option<Value> {
        let mut fields = Map::new();
        let mut definitions = Vec::new();
        for (metric, value) in values {
            match fields.get_mut(metric.name()) {
                Some(Value::Number(previous)) => {
                    let sum = previous.as_f64().unwrap_or(0.0) + value;
                    fields.insert(metric.name().to_string(), json!(sum));
                }
                _ => {
                    fields.insert(metric.name().to_string(), json!(value));
                    definitions.push(json!({ "Name": metric.name(), "Unit": metric.unit() }));
                }
            }
        }
        if definitions.is_empty() {
            return None;
        }
        fields.insert(DIMENSION.to_string(), json!(self.stage));
        fields.insert("function".to_string(), json!(self.function));
        fields.insert(
            "_aws".to_string(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": [[DIMENSION]],
                    "Metrics": definitions,
                }],
            }),
        );
        Some(Value::Object(fields))
    }

    /// Writes the document for `values` as one line on stdout (where Lambda's log stream and
    /// CloudWatch's EMF extraction read it). Zero counts are left out.
    pub fn emit(&self, values: &[(Metric, f64)]) {
        let nonzero: Vec<(Metric, f64)> = values
            .iter()
            .copied()
            .filter(|(metric, value)| *value != 0.0 || *metric == Metric::DispatchLatency)
            .collect();
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_millis() as u64)
            .unwrap_or(0);
        if let Some(document) = self.document(&nonzero, now_ms) {
            let mut line = document.to_string();
            line.push('\n');
            (self.sink)(&line);
        }
    }

    /// Counts the api's session calls and times its `/notify` calls: a layer on the Router.
    pub fn track_api(self, router: Router) -> Router {
        router.layer(axum::middleware::from_fn_with_state(
            Arc::new(self),
            track_request,
        ))
    }
}

/// What one api request counts as, by the Router's first path segment, when it succeeded.
fn api_metric(path: &str) -> Option<Metric> {
    match path.trim_start_matches('/').split('/').next()? {
        "create" => Some(Metric::SessionsCreated),
        "renew" => Some(Metric::SessionsRenewed),
        "destroy" => Some(Metric::SessionsDestroyed),
        "notify" => Some(Metric::DispatchLatency),
        _ => None,
    }
}

async fn track_request(State(emf): State<Arc<Emf>>, request: Request, next: Next) -> Response {
    let metric = api_metric(request.uri().path());
    let started = Instant::now();
    let response = next.run(request).await;
    if let Some(metric) = metric
        && response.status().is_success()
    {
        let value = match metric {
            Metric::DispatchLatency => started.elapsed().as_secs_f64() * 1000.0,
            _ => 1.0,
        };
        emf.emit(&[(metric, value)]);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_declares_each_metric_once_under_the_stage_dimension() {
        let emf = Emf::new("prod", "sender");
        let document = emf
            .document(
                &[
                    (Metric::DeliveriesSent, 7.0),
                    (Metric::DeliveriesFailed, 1.0),
                    (Metric::DeliveriesSent, 3.0),
                ],
                1_700_000_000_000,
            )
            .unwrap();
        assert_eq!(document["DeliveriesSent"], 10.0);
        assert_eq!(document["DeliveriesFailed"], 1.0);
        assert_eq!(document["Stage"], "prod");
        assert_eq!(document["function"], "sender");
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "sqs-push");
        assert_eq!(directive["Dimensions"], json!([["Stage"]]));
        assert_eq!(
            directive["Metrics"],
            json!([
                { "Name": "DeliveriesSent", "Unit": "Count" },
                { "Name": "DeliveriesFailed", "Unit": "Count" },
            ])
        );
        assert_eq!(document["_aws"]["Timestamp"], 1_700_000_000_000u64);
    }

    #[test]
    fn failures_handed_on_or_dead_lettered_are_not_counted_failed() {
        use sqs_push_core::dispatch::send::SendReport;
        let outcome = SendOutcome {
            report: SendReport {
                sent: 5,
                failed: 3,
                unsent: 2,
                ..SendReport::default()
            },
            handed_on: 4,
            dead_lettered: 1,
        };
        let counts = send_metrics(&outcome);
        assert!(
            counts.contains(&(Metric::DeliveriesFailed, 0.0)),
            "{counts:?}"
        );
        assert!(counts.contains(&(Metric::DeliveriesHandedOn, 4.0)));
        assert!(counts.contains(&(Metric::DeliveriesDeadLettered, 1.0)));
    }

    #[test]
    fn nothing_to_say_is_no_document() {
        assert!(Emf::new("prod", "api").document(&[], 0).is_none());
    }

    #[test]
    fn latency_is_in_milliseconds_and_counts_are_counts() {
        assert_eq!(Metric::DispatchLatency.unit(), "Milliseconds");
        for metric in Metric::ALL {
            if metric != Metric::DispatchLatency {
                assert_eq!(metric.unit(), "Count", "{metric:?}");
            }
        }
        let names: std::collections::HashSet<_> = Metric::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names.len(), Metric::ALL.len(), "names are unique");
    }

    /// The api's layer on a Router whose `/create/...` answers 200 and `/renew/...` 404.
    async fn lines_after(path: &str) -> Vec<Value> {
        use axum::routing::get;
        use tower::ServiceExt;
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        let emf = Emf::with_sink(
            "prod",
            "api",
            Arc::new(move |line: &str| sink.lock().unwrap().push(line.to_string())),
        );
        let router = emf.track_api(
            Router::new()
                .route("/create/{a}/{u}/{s}", get(|| async { "{}" }))
                .route(
                    "/renew/{a}/{u}/{s}",
                    get(|| async { (http::StatusCode::NOT_FOUND, "{}") }),
                ),
        );
        let request = http::Request::get(path)
            .body(axum::body::Body::empty())
            .unwrap();
        router.oneshot(request).await.unwrap();
        let lines = lines.lock().unwrap();
        lines
            .iter()
            .map(|line| {
                assert!(line.ends_with('\n'), "one line each");
                serde_json::from_str(line).unwrap()
            })
            .collect()
    }

    #[tokio::test]
    async fn the_api_layer_counts_successful_session_calls_only() {
        let lines = lines_after("/create/1/2/s").await;
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["SessionsCreated"], 1.0);
        assert_eq!(lines[0]["Stage"], "prod");
        assert!(
            lines_after("/renew/1/2/s").await.is_empty(),
            "a 404 counts nothing"
        );
        assert!(lines_after("/status").await.is_empty());
    }

    #[test]
    fn api_calls_count_by_their_route() {
        assert_eq!(api_metric("/create/1/2/s"), Some(Metric::SessionsCreated));
        assert_eq!(api_metric("/renew/1/2/s"), Some(Metric::SessionsRenewed));
        assert_eq!(
            api_metric("/destroy/1/2/s"),
            Some(Metric::SessionsDestroyed)
        );
        assert_eq!(
            api_metric("/notify/account/1"),
            Some(Metric::DispatchLatency)
        );
        assert_eq!(api_metric("/status"), None);
        assert_eq!(api_metric("/"), None);
    }
}
