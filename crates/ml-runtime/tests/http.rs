//! The HTTP server's limits, on a real socket: a request that takes too
//! long is answered 408, and one over the concurrency limit 503 at once
//! (not queued), while the probes keep answering once load is gone; a
//! connection that does not send its request headers in time is closed, so
//! silent or dripping clients cannot hold the connection limit.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use axum::routing::get;
use ml_runtime::health::{self, HttpLimits, HttpRouter};
use ml_runtime::{Metrics, Readiness};
use ml_testkit::process::http_request;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The server with `routes` within `limits` on a free port; its address.
async fn start(
    limits: HttpLimits,
    routes: HttpRouter,
    shutdown: &CancellationToken,
) -> Result<String> {
    let bound = health::serve(
        "127.0.0.1",
        0,
        limits,
        Arc::new(Metrics::new("test")?),
        Readiness::default(),
        routes,
        shutdown.clone(),
    )
    .await?;
    Ok(bound.to_string())
}

/// `GET path` on `address`, off the async threads.
async fn status_of(address: String, path: &'static str) -> Result<u16> {
    let answer =
        tokio::task::spawn_blocking(move || http_request(&address, "GET", path, None, &[]));
    Ok(answer.await??.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_requests_time_out_and_excess_ones_are_shed() -> Result<()> {
    let gate = Arc::new(Semaphore::new(0));
    let held = gate.clone();
    let routes = HttpRouter::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route(
            "/held",
            get(move || async move {
                let _permit = held.acquire().await;
                "released"
            }),
        );
    let limits = HttpLimits {
        request_timeout: Duration::from_secs(2),
        max_concurrent_requests: 1,
        max_connections: 64,
    };
    let shutdown = CancellationToken::new();
    let address = start(limits, routes, &shutdown).await?;

    let started = Instant::now();
    ensure!(status_of(address.clone(), "/slow").await? == 408);
    ensure!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // One request in flight fills the server: the next is refused at once.
    let in_flight = tokio::spawn(status_of(address.clone(), "/held"));
    let mut shed = 0;
    for _ in 0..100 {
        if status_of(address.clone(), "/healthz").await? == 503 {
            shed += 1;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    ensure!(shed == 1, "no request was shed while one was in flight");
    gate.add_permits(1);
    ensure!(in_flight.await?? == 200);
    ensure!(status_of(address.clone(), "/healthz").await? == 200);
    shutdown.cancel();
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_and_dripping_connections_are_closed_so_others_get_in() -> Result<()> {
    let limits = HttpLimits {
        request_timeout: Duration::from_secs(2),
        max_concurrent_requests: 8,
        max_connections: 2,
    };
    let shutdown = CancellationToken::new();
    let address = start(limits, HttpRouter::new(), &shutdown).await?;

    // Two clients take both connections: one sends nothing, one drips its
    // request headers, a line every half second, for up to a minute.
    let mut silent = TcpStream::connect(&address)?;
    let mut dripping = TcpStream::connect(&address)?;
    let drip = std::thread::spawn(move || -> std::io::Result<()> {
        dripping.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n")?;
        for _ in 0..120 {
            std::thread::sleep(Duration::from_millis(500));
            dripping.write_all(b"X-Drip: 1\r\n")?;
        }
        Ok(())
    });
    // A third client is served once the header deadline has closed them.
    ensure!(status_of(address.clone(), "/healthz").await? == 200);
    silent.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut byte = [0u8; 1];
    ensure!(
        matches!(silent.read(&mut byte), Ok(0)),
        "the silent connection is still open"
    );
    let dripped = drip
        .join()
        .map_err(|_| anyhow::anyhow!("the dripping client panicked"))?;
    ensure!(
        dripped.is_err(),
        "the dripping client sent headers for a minute without being cut off"
    );
    shutdown.cancel();
    Ok(())
}
