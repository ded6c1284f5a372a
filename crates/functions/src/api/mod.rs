//! The HTTP API: one axum Router, served by lambda_http on AWS and by axum::serve locally.
//!
//! Authentication is not here: API Gateway's IAM auth checks SigV4 on AWS, and the local stack
//! wraps this Router in its own SigV4 check.

mod cleanup;
mod error;
mod notify;
mod session;

mod history;
mod receipts;

pub use error::ApiError;

use axum::Router;
use axum::routing::get;
use sqs_push_core::dispatch::Dispatcher;
use sqs_push_core::orphans::OrphanSweeper;
use sqs_push_core::session::SessionService;

use sqs_push_core::history_page::HistoryReader;
use sqs_push_core::receipts::ReceiptService;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// Creates and renews sessions.
    pub sessions: SessionService,
    /// Routes messages.
    pub dispatcher: Dispatcher,
    /// Sweeps orphan queues (`/cleanup`).
    pub orphans: OrphanSweeper,
    /// Reads user history.
    pub history: HistoryReader,
    /// Applies read receipts.
    pub receipts: ReceiptService,
}

/// Every route of the api function.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route(
            "/create/{accountId}/{userId}/{sessionId}",
            get(session::create),
        )
        .route(
            "/renew/{accountId}/{userId}/{sessionId}",
            get(session::renew),
        )
        .route(
            "/destroy/{accountId}/{userId}/{sessionId}",
            get(session::destroy),
        )
        .route(
            "/status/{accountId}/{userId}/{sessionId}",
            get(session::status),
        )
        .route("/status", get(session::list))
        .route("/cleanup", get(cleanup::orphans))
        .route("/notify", get(notify::everyone).post(notify::everyone))
        .route(
            "/notify/account/{accountId}",
            get(notify::account).post(notify::account),
        )
        .route(
            "/notify/user/{userId}",
            get(notify::user).post(notify::user),
        )
        .route(
            "/notify/user/{userId}/session/{sessionId}",
            get(notify::session).post(notify::session),
        )
        .route("/messages/user/{userId}", get(history::messages))
        .route(
            "/messages/set-read/user/{userId}",
            axum::routing::post(receipts::listed),
        )
        .route(
            "/messages/set-read/user/{userId}/message/{messageId}",
            get(receipts::named),
        )
        .route(
            "/messages/set-read/user/{userId}/asof/{timestamp}",
            get(receipts::as_of),
        )
        .fallback(error::not_found)
        .with_state(state)
}
