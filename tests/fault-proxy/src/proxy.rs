//! The listener, the per-request decision, and forwarding.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Bytes, Incoming};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::errors::{ErrorClass, error_response, request_id};
use crate::operation::{Operation, Protocol, identify};
use crate::rewrite::{self, Split};
use crate::rules::{Fault, FaultKind, Rule, RuleSet};
use crate::stats::{Counters, Stats};

type Body = Either<Incoming, Full<Bytes>>;

/// Options for [`FaultProxy`]; from [`FaultProxy::builder`].
#[derive(Clone, Debug)]
pub struct Builder {
    upstream: String,
    seed: u64,
    bind: SocketAddr,
}

impl Builder {
    /// Seed of the rules' RNGs (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Address to listen on (default `127.0.0.1:0`, a free port).
    pub fn bind(mut self, address: SocketAddr) -> Self {
        self.bind = address;
        self
    }

    /// Binds the listener and starts serving on the current tokio runtime.
    pub async fn start(self) -> io::Result<FaultProxy> {
        let upstream: Uri = self
            .upstream
            .parse()
            .map_err(|e| invalid(format!("upstream {:?}: {e}", self.upstream)))?;
        if upstream.scheme() != Some(&Scheme::HTTP) {
            return Err(invalid(format!(
                "upstream {:?}: only http:// is supported",
                self.upstream
            )));
        }
        let authority = upstream
            .authority()
            .cloned()
            .ok_or_else(|| invalid(format!("upstream {:?} has no host", self.upstream)))?;
        let listener = TcpListener::bind(self.bind).await?;
        let address = listener.local_addr()?;
        let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        let shared = Arc::new(Shared {
            upstream: authority,
            client,
            rules: Mutex::new(RuleSet::new(self.seed)),
            counters: Mutex::new(Counters::default()),
        });
        let task = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(FaultProxy {
            address,
            upstream: self.upstream,
            shared,
            task,
        })
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// A running proxy; it stops (and drops its connections) when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    address: SocketAddr,
    upstream: String,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

struct Shared {
    upstream: Authority,
    client: Client<HttpConnector, Full<Bytes>>,
    rules: Mutex<RuleSet>,
    counters: Mutex<Counters>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FaultProxy {
    /// Starts a proxy to `upstream` (e.g. `http://127.0.0.1:4566`) on a free loopback port,
    /// seed 0, no rules.
    pub async fn start(upstream: &str) -> io::Result<Self> {
        Self::builder(upstream).start().await
    }

    /// Options before starting: seed, listen address.
    pub fn builder(upstream: &str) -> Builder {
        Builder {
            upstream: upstream.to_string(),
            seed: 0,
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        }
    }

    /// The endpoint URL to give the SDK clients, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The address the proxy listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The upstream URL as given.
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// Replaces the rules; each starts a fresh RNG from the seed and its position in `rules`.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        lock(&self.shared.rules).set(rules);
    }

    /// Appends a rule (all rules restart their RNGs and counters).
    pub fn add_rule(&self, rule: Rule) {
        lock(&self.shared.rules).push(rule);
    }

    /// The current rules.
    pub fn rules(&self) -> Vec<Rule> {
        lock(&self.shared.rules).rules()
    }

    /// Removes every rule: everything is forwarded untouched.
    pub fn clear(&self) {
        lock(&self.shared.rules).set(Vec::new());
    }

    /// Sets the seed and restarts the current rules' RNGs and counters from it.
    pub fn set_seed(&self, seed: u64) {
        lock(&self.shared.rules).reseed(seed);
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        lock(&self.shared.counters).0.clone()
    }

    /// Zeroes the counters.
    pub fn reset_stats(&self) {
        *lock(&self.shared.counters) = Counters::default();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    // Connections live in the set, so aborting this task closes them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve_connection(stream, shared.clone()));
                }
                // E.g. out of file descriptors: wait a little rather than spin.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let reset = Arc::new(AtomicBool::new(false));
    let io = ResettableIo {
        inner: TokioIo::new(stream),
        reset: reset.clone(),
    };
    let service = service_fn(move |request| handle(shared.clone(), reset.clone(), request));
    // An error here is a broken or reset connection; there is nobody to tell.
    let _ = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service)
        .await;
}

/// Why a request got no answer.
#[derive(Debug)]
enum NoAnswer {
    /// A `ConnectionReset` fault.
    Reset,
    /// The client's request body broke off.
    Body(hyper::Error),
}

impl fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoAnswer::Reset => f.write_str("connection reset by fault injection"),
            NoAnswer::Body(e) => write!(f, "reading the request body: {e}"),
        }
    }
}

impl std::error::Error for NoAnswer {}

async fn handle(
    shared: Arc<Shared>,
    reset: Arc<AtomicBool>,
    request: Request<Incoming>,
) -> Result<Response<Body>, NoAnswer> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(NoAnswer::Body)?.to_bytes();
    let path = parts.uri.path_and_query().map_or("/", PathAndQuery::as_str);
    let (operation, protocol) = identify(&parts.method, path, &parts.headers, &body);
    let batch = rewrite::batch_of(&operation, protocol, &body);
    let decision = lock(&shared.rules).decide(&operation, batch);
    lock(&shared.counters).entry(&operation).seen += 1;
    let Some(decision) = decision else {
        return Ok(forward(&shared, &operation, &parts, body).await);
    };
    let count_fault = |kind: FaultKind| {
        *lock(&shared.counters)
            .entry(&operation)
            .faults
            .entry(kind)
            .or_default() += 1;
    };
    let kind = decision.fault.kind();
    let class = match &decision.fault {
        Fault::ServerError => ErrorClass::Server,
        Fault::Throttling => ErrorClass::Throttling,
        Fault::Error { status, code } => ErrorClass::Custom {
            status: *status,
            code,
        },
        Fault::ConnectionReset => {
            count_fault(kind);
            reset.store(true, Ordering::SeqCst);
            return Err(NoAnswer::Reset);
        }
        Fault::ResetAfterForward => {
            count_fault(kind);
            let response = forward(&shared, &operation, &parts, body).await;
            // Let the emulator finish its answer, then drop it.
            let _ = response.into_body().collect().await;
            reset.store(true, Ordering::SeqCst);
            return Err(NoAnswer::Reset);
        }
        Fault::Delay(duration) => {
            count_fault(kind);
            tokio::time::sleep(*duration).await;
            return Ok(forward(&shared, &operation, &parts, body).await);
        }
        Fault::DelayAnswer(duration) => {
            count_fault(kind);
            let response = forward(&shared, &operation, &parts, body).await;
            tokio::time::sleep(*duration).await;
            return Ok(response);
        }
        Fault::UnprocessedItems(_) | Fault::FailedEntries(_) | Fault::UnprocessedIdentityIds(_) => {
            let split = rewrite::split(kind, &body, &decision.withheld)
                .filter(|split| split.withheld_count > 0);
            let Some(split) = split else {
                return Ok(forward(&shared, &operation, &parts, body).await);
            };
            count_fault(kind);
            lock(&shared.counters).entry(&operation).withheld_entries +=
                split.withheld_count as u64;
            return Ok(partial(&shared, &operation, protocol, &parts, &split).await);
        }
    };
    count_fault(kind);
    Ok(error_response(class, &operation, protocol).map(full))
}

fn full(bytes: Bytes) -> Body {
    Either::Right(Full::new(bytes))
}

/// Forwards part of a batch and answers with the withheld part added.
async fn partial(
    shared: &Shared,
    operation: &Operation,
    protocol: Protocol,
    parts: &http::request::Parts,
    split: &Split,
) -> Response<Body> {
    let Some(forward_body) = &split.forward else {
        let content_type = if protocol == Protocol::AwsJson11 {
            "application/x-amz-json-1.1"
        } else {
            "application/x-amz-json-1.0"
        };
        let mut response = Response::new(full(Bytes::from(split.alone())));
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Ok(id) = HeaderValue::from_str(&request_id()) {
            headers.insert("x-amzn-requestid", id);
        }
        return response;
    };
    let mut forward_parts = parts.clone();
    // An answer we have to parse must not come compressed.
    forward_parts.headers.remove(header::ACCEPT_ENCODING);
    let upstream = match send(
        shared,
        operation,
        &forward_parts,
        Bytes::from(forward_body.clone()),
    )
    .await
    {
        Ok(response) => response,
        Err(response) => return response,
    };
    let (mut head, body) = upstream.into_parts();
    let Ok(collected) = body.collect().await else {
        return error_response(ErrorClass::Server, operation, protocol).map(full);
    };
    let bytes = collected.to_bytes();
    if !head.status.is_success() {
        // The emulator refused the forwarded part: pass its answer on as it is.
        return Response::from_parts(head, full(bytes));
    }
    match split.merge(&bytes) {
        Some(merged) => {
            head.headers.remove(header::CONTENT_LENGTH);
            head.headers.remove("x-amz-crc32");
            Response::from_parts(head, full(Bytes::from(merged)))
        }
        // The forwarded part went through but we cannot say which entries did: a 500 makes the
        // caller retry the whole batch (duplicates possible, nothing lost).
        None => error_response(ErrorClass::Server, operation, protocol).map(full),
    }
}

/// Forwards the request untouched and relays the answer (streamed).
async fn forward(
    shared: &Shared,
    operation: &Operation,
    parts: &http::request::Parts,
    body: Bytes,
) -> Response<Body> {
    match send(shared, operation, parts, body).await {
        Ok(response) => response.map(Either::Left),
        Err(response) => response,
    }
}

/// Headers that belong to one hop, not to the request or response.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers named in Connection are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

/// Sends to the emulator; a failure to reach it becomes a 502 answer.
async fn send(
    shared: &Shared,
    operation: &Operation,
    parts: &http::request::Parts,
    body: Bytes,
) -> Result<Response<Incoming>, Response<Body>> {
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    let uri = Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(shared.upstream.clone())
        .path_and_query(path)
        .build();
    let Ok(uri) = uri else {
        return Err(bad_gateway("cannot build the upstream URI"));
    };
    let mut headers = parts.headers.clone();
    strip_hop_by_hop(&mut headers);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = uri;
    *request.version_mut() = Version::HTTP_11;
    *request.headers_mut() = headers;
    lock(&shared.counters).entry(operation).forwarded += 1;
    match shared.client.request(request).await {
        Ok(mut response) => {
            strip_hop_by_hop(response.headers_mut());
            Ok(response)
        }
        Err(e) => Err(bad_gateway(&format!("upstream: {e}"))),
    }
}

fn bad_gateway(message: &str) -> Response<Body> {
    let mut response = Response::new(full(Bytes::from(format!(
        "sqs-push-fault-proxy: {message}\n"
    ))));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

/// The client connection; once a reset is asked for, it fails every operation and closes
/// with RST (zero linger) instead of FIN.
struct ResettableIo {
    inner: TokioIo<TcpStream>,
    reset: Arc<AtomicBool>,
}

impl ResettableIo {
    fn check(&self) -> io::Result<()> {
        if self.reset.load(Ordering::SeqCst) {
            let _ = self.inner.inner().set_zero_linger();
            Err(io::ErrorKind::ConnectionReset.into())
        } else {
            Ok(())
        }
    }
}

impl Drop for ResettableIo {
    fn drop(&mut self) {
        let _ = self.check();
    }
}

impl Read for ResettableIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl Write for ResettableIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check()?;
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }
}
