//! The HTTP server: the combined feed and health endpoints (axum).

pub mod cache;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::error;

use crate::emit::{self, OutputInfo};
use crate::store::Store;

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub output: Arc<OutputInfo>,
    pub max_entries: usize,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/feed.atom", get(feed_atom))
        .route("/healthz", get(healthz))
        .with_state(state)
}

/// Serves until `shutdown` is cancelled; requests in progress are finished first.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn feed_atom(State(state): State<AppState>) -> Response {
    match state.store.newest_entries(state.max_entries).await {
        Ok(entries) => (
            [(header::CONTENT_TYPE, emit::atom::CONTENT_TYPE)],
            emit::atom::render(&state.output, &entries),
        )
            .into_response(),
        Err(e) => {
            error!("cannot render /feed.atom: {e}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the feed is unavailable: the database did not answer\n",
            )
                .into_response()
        }
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}
