//! The demo page of the local stack and its unsigned routes, mounted next to the signed API.
//!
//! - `GET /` — the page (`client-js/demo/index.html`), plus `/local-demo/demo.js`,
//!   `/local-demo/demo.css` and the built client bundle `/local-demo/sqs-push-client.js`
//!   (`client-js/dist/sqs-push-client.js`).
//! - `/local-demo/api/…` — the routes of the api Router the page calls, without the SigV4 check, so
//!   the page can create a session and notify without holding keys:
//!   `/local-demo/api/create/{a}/{u}/{s}`, `/local-demo/api/subscribe/{a}/{u}/{s}/{channel}`,
//!   `/local-demo/api/channels/{channel}/presence` (who is online: ids and times, no keys) and
//!   `/local-demo/api/notify[/account/{a}|/user/{u}[/session/{s}]|/channel/{channel}]`, same
//!   answers as the signed routes. Nothing else of the api is reachable here (status, renew, destroy, cleanup, messages
//!   are a 404): the page renews by repeating create, which hands out fresh credentials for the
//!   same queue and key (docs/http-api.md).
//!
//! The files are read from the repository at request time, so editing the page needs no rebuild
//! and a missing bundle is a clear answer instead of a build failure.
//!
//! Unsigned routes are guarded so that only the page can use them: the request must carry the
//! header `x-sqs-push-demo: 1` (a cross-site page cannot send it without a CORS preflight, which
//! is never answered) and name a loopback `Host` (a DNS-rebound name is refused). The routes are
//! mounted only when the stack listens on a loopback address.
//!
//! Not for: anything outside the local stack. Nothing here exists on AWS.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

/// Prefix of every demo-only route: visibly not part of the API.
pub const PREFIX: &str = "/local-demo";
/// Header the page sends on every unsigned API call.
pub const DEMO_HEADER: &str = "x-sqs-push-demo";
/// The api routes the page calls (`client-js/demo/demo.js`), under `/local-demo/api`; every other
/// path there is a 404.
pub const DEMO_ROUTES: [&str; 8] = [
    "/create/{accountId}/{userId}/{sessionId}",
    "/subscribe/{accountId}/{userId}/{sessionId}/{channel}",
    "/channels/{channel}/presence",
    "/notify",
    "/notify/channel/{channel}",
    "/notify/account/{accountId}",
    "/notify/user/{userId}",
    "/notify/user/{userId}/session/{sessionId}",
];

/// `client-js/` of the checkout this binary was built from.
fn client_js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../client-js")
}

/// Adds the demo page and the unsigned demo routes to `app` when `address` is a loopback address.
///
/// `api` is the api Router without the SigV4 layer; only its [`DEMO_ROUTES`] are served, under
/// `/local-demo/api`.
pub fn mount(app: Router, api: Router, address: SocketAddr) -> Router {
    if !address.ip().is_loopback() {
        tracing::warn!(%address, "not a loopback address: demo page and unsigned demo routes disabled");
        return app;
    }
    app.merge(router(api, client_js_dir()))
}

/// The demo routes, with files read from `client_js` (a `client-js/` directory).
fn router(api: Router, client_js: PathBuf) -> Router {
    let api = api
        .layer(axum::middleware::from_fn(only_from_the_page))
        .layer(axum::middleware::from_fn(only_what_the_page_calls));
    Router::new()
        .route("/", get(page))
        .route(&format!("{PREFIX}/demo.js"), get(script))
        .route(&format!("{PREFIX}/demo.css"), get(style))
        .route(&format!("{PREFIX}/sqs-push-client.js"), get(bundle))
        .with_state(client_js)
        .nest(&format!("{PREFIX}/api"), api)
}

async fn page(State(dir): State<PathBuf>) -> Response {
    if !bundle_path(&dir).is_file() {
        let body = format!(
            "<!doctype html><meta charset=utf-8><title>sqs-push demo: bundle missing</title>\
             <p>{}</p>",
            bundle_missing(&dir)
        );
        return file_answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/html; charset=utf-8",
            body,
        );
    }
    serve(&dir.join("demo/index.html"), "text/html; charset=utf-8").await
}

async fn script(State(dir): State<PathBuf>) -> Response {
    serve(&dir.join("demo/demo.js"), "text/javascript; charset=utf-8").await
}

async fn style(State(dir): State<PathBuf>) -> Response {
    serve(&dir.join("demo/demo.css"), "text/css; charset=utf-8").await
}

async fn bundle(State(dir): State<PathBuf>) -> Response {
    let path = bundle_path(&dir);
    match tokio::fs::read(&path).await {
        Ok(bytes) => file_answer(StatusCode::OK, "text/javascript; charset=utf-8", bytes),
        Err(_) => file_answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            bundle_missing(&dir),
        ),
    }
}

fn bundle_path(dir: &Path) -> PathBuf {
    dir.join("dist/sqs-push-client.js")
}

fn bundle_missing(dir: &Path) -> String {
    format!(
        "The client bundle {} is missing: run `npm ci && npm run build` in {} (scripts/dev does it), then reload.",
        bundle_path(dir).display(),
        dir.display()
    )
}

async fn serve(path: &Path, content_type: &'static str) -> Response {
    match tokio::fs::read(path).await {
        Ok(bytes) => file_answer(StatusCode::OK, content_type, bytes),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "demo file unreadable");
            file_answer(
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                format!("demo file {} is unreadable: {error}", path.display()),
            )
        }
    }
}

fn file_answer(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<axum::body::Body>,
) -> Response {
    let mut response = (status, body.into()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Edits to the page show on reload.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Whether `path` (below `/local-demo/api`) has the shape of one of [`DEMO_ROUTES`]. The api Router
/// matches the same raw (percent-encoded) path, so a path that passes here reaches one of those
/// routes or the api's own 404.
fn is_demo_route(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    if segments.iter().any(|segment| segment.is_empty()) {
        return false;
    }
    matches!(
        segments.as_slice(),
        ["create", _, _, _]
            | ["subscribe", _, _, _, _]
            | ["channels", _, "presence"]
            | ["notify"]
            | ["notify", "account" | "user" | "channel", _]
            | ["notify", "user", _, "session", _]
    )
}

/// Answers 404 for every path under `/local-demo/api` but [`DEMO_ROUTES`], before the api
/// Router (or anything else) sees the request.
async fn only_what_the_page_calls(request: Request, next: Next) -> Response {
    if is_demo_route(request.uri().path()) {
        return next.run(request).await;
    }
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({
            "success": false,
            "error": format!(
                "not a demo route: {PREFIX}/api serves only create, subscribe, channel presence and notify; \
                 every other route is signed (scripts/call_gw)"
            ),
        })),
    )
        .into_response()
}

/// Lets a request through to the unsigned API only when it comes from the demo page.
async fn only_from_the_page(request: Request, next: Next) -> Response {
    let headers = request.headers();
    if headers.get(DEMO_HEADER).map(HeaderValue::as_bytes) != Some(b"1") {
        return refuse(format!(
            "demo routes need the header `{DEMO_HEADER}: 1` (sent by the demo page); \
             other clients use the signed API (scripts/call_gw)"
        ));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !is_loopback_host(host) {
        return refuse(
            "demo routes answer only to a loopback Host (127.0.0.1, [::1] or localhost)"
                .to_string(),
        );
    }
    next.run(request).await
}

fn refuse(message: String) -> Response {
    (
        StatusCode::FORBIDDEN,
        axum::Json(json!({"success": false, "error": message})),
    )
        .into_response()
}

/// `127.0.0.1:3000`, `[::1]:3000`, `localhost:3000` (port optional).
fn is_loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(name, _port)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests;
