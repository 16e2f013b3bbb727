//! The axum server for `/metrics`, `/healthz` and `/readyz` (CONTRACT section 7).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
pub use axum::Router as HttpRouter;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::error::RuntimeError;
use crate::metrics::Metrics;

/// A dependency `/readyz` checks on every probe (e.g. the database).
#[async_trait]
pub trait ReadinessCheck: Send + Sync + 'static {
    /// Name shown in the `/readyz` body.
    fn name(&self) -> &'static str;
    /// Ok when the dependency answers.
    ///
    /// # Errors
    /// A short reason shown in the `/readyz` body.
    async fn check(&self) -> Result<(), String>;
}

/// What `/readyz` reports: broker channel open, model loaded, and every
/// registered check passing. Cheap to clone.
#[derive(Clone, Default)]
pub struct Readiness {
    broker: Arc<AtomicBool>,
    model: Arc<AtomicBool>,
    checks: Arc<Vec<Arc<dyn ReadinessCheck>>>,
}

impl Readiness {
    /// Readiness with extra dependency `checks`.
    pub fn new(checks: Vec<Arc<dyn ReadinessCheck>>) -> Self {
        Self {
            checks: Arc::new(checks),
            ..Self::default()
        }
    }

    /// Records whether the consuming channel is open.
    pub fn set_broker(&self, open: bool) {
        self.broker.store(open, Ordering::SeqCst);
    }

    /// Records that the model is loaded and warmed up.
    pub fn set_model_loaded(&self) {
        self.model.store(true, Ordering::SeqCst);
    }

    /// Runs every check; Ok when ready, otherwise the failing reasons.
    ///
    /// # Errors
    /// The list of reasons the worker is not ready.
    pub async fn evaluate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        if !self.broker.load(Ordering::SeqCst) {
            problems.push("broker: channel not open".to_owned());
        }
        if !self.model.load(Ordering::SeqCst) {
            problems.push("model: not loaded".to_owned());
        }
        for check in self.checks.iter() {
            if let Err(reason) = check.check().await {
                problems.push(format!("{}: {reason}", check.name()));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

#[derive(Clone)]
struct HealthState {
    metrics: Arc<Metrics>,
    readiness: Readiness,
}

/// Binds `host:port` and serves the endpoints, plus the worker's own
/// `routes` (e.g. an inference API; `HttpRouter::new()` for none), until
/// `shutdown` fires. Returns once bound, with the server running in the
/// background and the address it bound (port 0 picks a free port).
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(
    host: &str,
    port: u16,
    metrics: Arc<Metrics>,
    readiness: Readiness,
    routes: HttpRouter,
    shutdown: CancellationToken,
) -> Result<SocketAddr, RuntimeError> {
    let address = format!("{host}:{port}");
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .map_err(|source| RuntimeError::HealthServer {
            address: address.clone(),
            source,
        })?;
    let bound = listener
        .local_addr()
        .map_err(|source| RuntimeError::HealthServer { address, source })?;
    let app = HttpRouter::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz_handler))
        .with_state(HealthState { metrics, readiness })
        .merge(routes);
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await;
        if let Err(error) = served {
            tracing::error!(%error, "health server stopped");
        }
    });
    tracing::info!(%bound, "serving /metrics, /healthz and /readyz");
    Ok(bound)
}

async fn metrics_handler(State(state): State<HealthState>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

async fn readyz_handler(State(state): State<HealthState>) -> impl IntoResponse {
    match state.readiness.evaluate().await {
        Ok(()) => (StatusCode::OK, "ready".to_owned()),
        Err(problems) => (StatusCode::SERVICE_UNAVAILABLE, problems.join("\n")),
    }
}
