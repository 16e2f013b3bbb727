//! The axum server for `/metrics`, `/healthz` and `/readyz` (CONTRACT section 7).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
pub use axum::Router as HttpRouter;
use axum::error_handling::HandleErrorLayer;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::timeout::TimeoutLayer;

use crate::connections;
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

/// How long the registered checks' outcome answers probes: a probe storm
/// (every kubelet, load balancer and script polling `/readyz`) queries the
/// dependencies once per this, not once per probe.
pub const CHECKS_CACHED_FOR: Duration = Duration::from_secs(2);

/// What `/readyz` reports: broker channel open, model loaded, and every
/// registered check passing (run at most once per [`CHECKS_CACHED_FOR`],
/// by one probe while the others wait for its answer). Cheap to clone.
#[derive(Clone, Default)]
pub struct Readiness {
    broker: Arc<AtomicBool>,
    model: Arc<AtomicBool>,
    checks: Arc<Vec<Arc<dyn ReadinessCheck>>>,
    /// The checks' last outcome.
    checked: Arc<Mutex<Option<Checked>>>,
}

/// When the registered checks last ran, and the problems they found.
struct Checked {
    at: Instant,
    problems: Vec<String>,
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
        problems.extend(self.check_dependencies().await);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The registered checks' problems, from the cache while it is fresh.
    async fn check_dependencies(&self) -> Vec<String> {
        let mut checked = self.checked.lock().await;
        if let Some(last) = checked.as_ref()
            && last.at.elapsed() < CHECKS_CACHED_FOR
        {
            return last.problems.clone();
        }
        let mut problems = Vec::new();
        for check in self.checks.iter() {
            if let Err(reason) = check.check().await {
                problems.push(format!("{}: {reason}", check.name()));
            }
        }
        *checked = Some(Checked {
            at: Instant::now(),
            problems: problems.clone(),
        });
        problems
    }
}

#[derive(Clone)]
struct HealthState {
    metrics: Arc<Metrics>,
    readiness: Readiness,
}

/// How much the HTTP server takes on.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// A request still unanswered after this is answered 408.
    pub request_timeout: Duration,
    /// Requests served at once; one more is answered 503 at once.
    pub max_concurrent_requests: usize,
    /// Connections open at once; more wait to be accepted.
    pub max_connections: usize,
}

/// Binds `host:port` and serves the endpoints, plus the worker's own
/// `routes` (e.g. an inference API; `HttpRouter::new()` for none), within
/// `limits`, until `shutdown` fires. Returns once bound, with the server
/// running in the background and the address it bound (port 0 picks a
/// free port).
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(
    host: &str,
    port: u16,
    limits: HttpLimits,
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
    let routes = HttpRouter::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz_handler))
        .with_state(HealthState { metrics, readiness })
        .merge(routes);
    // Around the whole router, not `Router::layer` (which gives every route
    // a limit of its own).
    let app = ServiceBuilder::new()
        // The only error below is load shedding's "overloaded".
        .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
            (StatusCode::SERVICE_UNAVAILABLE, "too many requests at once")
        }))
        .load_shed()
        .concurrency_limit(limits.max_concurrent_requests)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .service(routes);
    tokio::spawn(connections::serve(listener, app, limits, shutdown));
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A check that counts its runs and fails while `down`.
    #[derive(Default)]
    struct Counted {
        runs: AtomicUsize,
        down: AtomicBool,
    }

    #[async_trait]
    impl ReadinessCheck for Arc<Counted> {
        fn name(&self) -> &'static str {
            "counted"
        }

        async fn check(&self) -> Result<(), String> {
            self.runs.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                Err("down".into())
            } else {
                Ok(())
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn probes_share_one_check_per_cache_period() {
        let counted = Arc::new(Counted::default());
        let readiness = Readiness::new(vec![Arc::new(counted.clone())]);
        readiness.set_broker(true);
        readiness.set_model_loaded();
        let probes = (0..50).map(|_| readiness.evaluate());
        let answers = futures::future::join_all(probes).await;
        assert!(answers.iter().all(Result::is_ok));
        assert_eq!(counted.runs.load(Ordering::SeqCst), 1);

        counted.down.store(true, Ordering::SeqCst);
        assert!(
            readiness.evaluate().await.is_ok(),
            "cached within the period"
        );
        tokio::time::advance(CHECKS_CACHED_FOR).await;
        assert_eq!(
            readiness.evaluate().await,
            Err(vec!["counted: down".to_owned()])
        );
        assert_eq!(counted.runs.load(Ordering::SeqCst), 2);

        // The broker and the model are read live, never cached.
        counted.down.store(false, Ordering::SeqCst);
        tokio::time::advance(CHECKS_CACHED_FOR).await;
        readiness.set_broker(false);
        assert_eq!(
            readiness.evaluate().await,
            Err(vec!["broker: channel not open".to_owned()])
        );
    }
}
