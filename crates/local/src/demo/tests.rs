//! The demo page's tests: its files, its unsigned routes and their guards (the demo header,
//! loopback only), against a stub of every api route.

use super::*;
use axum::body::{Body, to_bytes};
use axum::http::Request;
use tower::ServiceExt;

/// Every route of the real api Router (crates/functions/src/api), each answering
/// `api <route>`, so a 404 under the demo prefix is the demo's doing, not a missing stub.
fn stub_api() -> Router {
    fn reached(name: &'static str) -> axum::routing::MethodRouter {
        get(move || async move { format!("api {name}") })
            .post(move || async move { format!("api {name}") })
    }
    Router::new()
        .route(
            "/create/{accountId}/{userId}/{sessionId}",
            reached("create"),
        )
        .route("/renew/{accountId}/{userId}/{sessionId}", reached("renew"))
        .route(
            "/destroy/{accountId}/{userId}/{sessionId}",
            reached("destroy"),
        )
        .route(
            "/status/{accountId}/{userId}/{sessionId}",
            reached("status"),
        )
        .route("/status", reached("status list"))
        .route("/cleanup", reached("cleanup"))
        .route("/notify", reached("notify everyone"))
        .route("/notify/account/{accountId}", reached("notify account"))
        .route("/notify/user/{userId}", reached("notify user"))
        .route(
            "/notify/user/{userId}/session/{sessionId}",
            reached("notify session"),
        )
        .route("/messages/user/{userId}", reached("messages"))
        .route("/messages/set-read/user/{userId}", reached("set-read"))
        .route(
            "/messages/set-read/user/{userId}/message/{messageId}",
            reached("set-read message"),
        )
        .route(
            "/messages/set-read/user/{userId}/asof/{timestamp}",
            reached("set-read as of"),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "api fallback") })
}

/// A throwaway `client-js/` with the demo files (and the bundle when asked), removed on drop.
struct TempClientJs(PathBuf);

impl TempClientJs {
    fn new(with_bundle: bool) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sqs-push-demo-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(dir.join("demo")).unwrap();
        std::fs::write(
            dir.join("demo/index.html"),
            "<!doctype html><title>demo</title>",
        )
        .unwrap();
        std::fs::write(dir.join("demo/demo.js"), "// demo").unwrap();
        std::fs::write(dir.join("demo/demo.css"), "/* demo */").unwrap();
        if with_bundle {
            std::fs::create_dir_all(dir.join("dist")).unwrap();
            std::fs::write(dir.join("dist/sqs-push-client.js"), "export {};").unwrap();
        }
        Self(dir)
    }

    fn app(&self) -> Router {
        router(stub_api(), self.0.clone())
    }
}

impl Drop for TempClientJs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn get_from(app: Router, request: Request<Body>) -> (StatusCode, String, String) {
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (
        status,
        content_type,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

fn request(path: &str, host: &str, demo_header: bool) -> Request<Body> {
    let mut builder = Request::get(path).header(header::HOST, host);
    if demo_header {
        builder = builder.header(DEMO_HEADER, "1");
    }
    builder.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn the_page_and_its_files_are_served_from_client_js() {
    let dir = TempClientJs::new(true);
    let app = dir.app();
    for (path, kind, body) in [
        ("/", "text/html", "<title>demo</title>"),
        ("/local-demo/demo.js", "text/javascript", "// demo"),
        ("/local-demo/demo.css", "text/css", "/* demo */"),
        (
            "/local-demo/sqs-push-client.js",
            "text/javascript",
            "export {};",
        ),
    ] {
        let (status, content_type, text) =
            get_from(app.clone(), request(path, "127.0.0.1:3000", false)).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        assert!(text.contains(body), "{path}");
    }
}

#[tokio::test]
async fn a_missing_bundle_is_answered_with_how_to_build_it() {
    let dir = TempClientJs::new(false);
    let app = dir.app();
    for path in ["/", "/local-demo/sqs-push-client.js"] {
        let (status, _, text) = get_from(app.clone(), request(path, "127.0.0.1:3000", false)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(text.contains("npm run build"), "{path}: {text}");
    }
}

#[tokio::test]
async fn the_unsigned_api_answers_the_page() {
    let dir = TempClientJs::new(true);
    let app = dir.app();
    for host in [
        "127.0.0.1:3000",
        "localhost:3000",
        "[::1]:3000",
        "127.0.0.1",
    ] {
        let (status, _, text) =
            get_from(app.clone(), request("/local-demo/api/notify", host, true)).await;
        assert_eq!(
            (status, text.as_str()),
            (StatusCode::OK, "api notify everyone"),
            "{host}"
        );
    }
}

fn request_with(method: &str, path: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "127.0.0.1:3000")
        .header(DEMO_HEADER, "1")
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn create_and_notify_reach_the_api() {
    let dir = TempClientJs::new(true);
    let app = dir.app();
    for (method, path, reached) in [
        ("GET", "/local-demo/api/create/100/200/s-1", "api create"),
        ("GET", "/local-demo/api/create/100/200/a%2Fb", "api create"),
        (
            "GET",
            "/local-demo/api/notify?message=x",
            "api notify everyone",
        ),
        ("POST", "/local-demo/api/notify", "api notify everyone"),
        (
            "POST",
            "/local-demo/api/notify/account/100",
            "api notify account",
        ),
        ("POST", "/local-demo/api/notify/user/200", "api notify user"),
        (
            "POST",
            "/local-demo/api/notify/user/200/session/s-1",
            "api notify session",
        ),
    ] {
        let (status, _, text) = get_from(app.clone(), request_with(method, path)).await;
        assert_eq!(
            (status, text.as_str()),
            (StatusCode::OK, reached),
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn every_other_api_route_is_404_under_the_demo_prefix() {
    let dir = TempClientJs::new(true);
    // Through `mount` too, as the stack does it.
    let mounted = mount(
        Router::new(),
        stub_api(),
        SocketAddr::from(([127, 0, 0, 1], 3000)),
    );
    for app in [dir.app(), mounted] {
        for path in [
            "/local-demo/api/status/1/2/s",
            "/local-demo/api/status",
            "/local-demo/api/destroy/1/2/s",
            "/local-demo/api/renew/1/2/s",
            "/local-demo/api/cleanup",
            "/local-demo/api/messages/user/2",
            "/local-demo/api/messages/set-read/user/2",
            "/local-demo/api/messages/set-read/user/2/message/m",
            "/local-demo/api/messages/set-read/user/2/asof/1",
            "/local-demo/api/create/1/2",
            "/local-demo/api/create/1/2/s/x",
            "/local-demo/api/notify/",
            "/local-demo/api/notify/user/2/session/s/x",
            "/local-demo/api/notify//user/2",
            "/local-demo/api",
            "/local-demo/api/",
        ] {
            for method in ["GET", "POST"] {
                let (status, _, text) = get_from(app.clone(), request_with(method, path)).await;
                assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {text}");
                assert!(
                    !text.starts_with("api "),
                    "{method} {path} reached the api: {text}"
                );
                // The bare prefix matches no nested route: the outer router's plain 404.
                if !path.ends_with("/api") && !path.ends_with("/api/") {
                    assert!(text.contains("not a demo route"), "{method} {path}: {text}");
                }
            }
        }
    }
}

#[test]
fn demo_routes_are_matched_by_their_shape() {
    for path in [
        "/create/1/2/s",
        "/notify",
        "/notify/account/1",
        "/notify/user/2",
        "/notify/user/2/session/s",
        "/subscribe/1/2/s/room:7",
        "/notify/channel/room:7",
        "/channels/room:7/presence",
    ] {
        assert!(is_demo_route(path), "{path}");
    }
    for path in [
        "",
        "/",
        "create/1/2/s",
        "/create/1/2/",
        "/create//2/s",
        "/Create/1/2/s",
        "/%63reate/1/2/s",
        "/notify/",
        "/notify/session/s",
        "/notify/account/1/user/2",
        "/status/1/2/s",
        "/renew/1/2/s",
        "/subscribe/1/2/s",
        "/unsubscribe/1/2/s/room",
        "/channels/room",
        "/channels/room:7",
        "/channels/room/presence/x",
        "/channels//presence",
        "/notify/channel/a/b",
    ] {
        assert!(!is_demo_route(path), "{path}");
    }
}

#[tokio::test]
async fn the_unsigned_api_refuses_requests_without_the_demo_header() {
    let dir = TempClientJs::new(true);
    let app = dir.app();
    let (status, _, text) = get_from(
        app,
        request("/local-demo/api/notify", "127.0.0.1:3000", false),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(text.contains(DEMO_HEADER), "{text}");
}

#[tokio::test]
async fn the_unsigned_api_refuses_a_foreign_host_name() {
    let dir = TempClientJs::new(true);
    let app = dir.app();
    for host in [
        "evil.example:3000",
        "127.0.0.1.evil.example",
        "10.0.0.5:3000",
        "",
    ] {
        let (status, _, _) =
            get_from(app.clone(), request("/local-demo/api/notify", host, true)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{host}");
    }
}

#[tokio::test]
async fn nothing_is_mounted_on_a_non_loopback_address() {
    let app = mount(
        Router::new(),
        stub_api(),
        SocketAddr::from(([0, 0, 0, 0], 3000)),
    );
    let (status, _, _) = get_from(app, request("/", "127.0.0.1:3000", false)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_signed_routes_keep_their_own_paths() {
    let signed = Router::new().route("/notify", get(|| async { "signed" }));
    let app = mount(signed, stub_api(), SocketAddr::from(([127, 0, 0, 1], 3000)));
    let (status, _, text) = get_from(app, request("/notify", "127.0.0.1:3000", false)).await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "signed"));
}
