//! A real HTTP server (axum on a loopback port) with the behaviours the
//! fetcher must cope with, counting every request it receives.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Result;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::stream;

/// Bytes served by `/big` and `/big-chunked`.
pub const BIG: usize = 3 * 1024 * 1024;

struct Shared {
    requests: AtomicUsize,
    file: Vec<u8>,
}

/// The running server; stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// Serves `file` at `/media/speech.wav` (and the routes below) on 127.0.0.1.
    pub async fn start(file: Vec<u8>) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            requests: AtomicUsize::new(0),
            file,
        });
        let app = Router::new()
            .fallback(route)
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }
}

fn redirect(to: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, to.to_owned())]).into_response()
}

async fn route(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let path = uri.path();
    match path {
        "/media/speech.wav" => shared.file.clone().into_response(),
        "/big" => vec![0u8; BIG].into_response(),
        // No Content-Length: the cap must hold while streaming.
        "/big-chunked" => Body::from_stream(stream::iter(
            (0..BIG / 65_536).map(|_| Ok::<_, Infallible>(Bytes::from(vec![0u8; 65_536]))),
        ))
        .into_response(),
        // Headers and a first chunk, then silence.
        "/slow" => Body::from_stream(stream::unfold(0, |n| async move {
            if n > 0 {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
            Some((Ok::<_, Infallible>(Bytes::from_static(b"RIFF")), n + 1))
        }))
        .into_response(),
        // A byte every half second, for ever: never a stalled read.
        "/drip" => Body::from_stream(stream::unfold((), |()| async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            Some((Ok::<_, Infallible>(Bytes::from_static(b"x")), ()))
        }))
        .into_response(),
        "/redirect-to-file" => redirect("/media/speech.wav"),
        "/redirect-metadata" => redirect("http://169.254.169.254/latest/meta-data/"),
        "/redirect-private" => redirect("http://10.0.0.1/internal.mp4"),
        "/redirect-scheme" => redirect("file:///etc/passwd"),
        "/loop-a" => redirect("/loop-b"),
        "/loop-b" => redirect("/loop-a"),
        _ => {
            // An S3 endpoint (path prefix) that is overloaded.
            if path.starts_with("/s3-unavailable/") {
                return (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code>\
                     <Message>Please reduce your request rate.</Message></Error>",
                )
                    .into_response();
            }
            if let Some(n) = path
                .strip_prefix("/chain/")
                .and_then(|n| n.parse::<u32>().ok())
            {
                return if n == 0 {
                    redirect("/media/speech.wav")
                } else {
                    redirect(&format!("/chain/{}", n - 1))
                };
            }
            if let Some(code) = path
                .strip_prefix("/status/")
                .and_then(|c| c.parse::<u16>().ok())
            {
                return StatusCode::from_u16(code)
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                    .into_response();
            }
            StatusCode::NOT_FOUND.into_response()
        }
    }
}
