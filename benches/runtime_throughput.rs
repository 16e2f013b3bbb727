//! Per-task overhead of the runtime against a stock Python Celery 5 worker,
//! measured in the same run on the same broker, queue type and Redis.
//!
//! Both drain the same N no-op tasks (decode, Redis result write, late ack)
//! from a pre-loaded quorum queue with concurrency 2; the drain rate is taken
//! from the first to the last result's `date_done`, so start-up and
//! publishing are excluded for both. Then the vector-worker binary is timed
//! from process start to `/readyz` = 200, and its peak RSS read after it
//! embedded a few tasks.
//!
//! Run: `scripts/bench` (builds the release binary, then
//! `cargo bench --bench runtime_throughput`). Needs scripts/setup.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use async_trait::async_trait;
use clap::Parser;
use ml_runtime::{
    Handler, Metrics, Readiness, Request, ResultBackend, Router, RuntimeArgs, ShareId, Task,
    TaskError, Worker, WorkerSpec,
};
use ml_testkit::{TestBroker, WorkerProcess, env};
use serde_json::{Value, json};

const TASKS: usize = 10_000;
const NOOP: &str = "bench.noop";

struct Noop;

/// The no-op task's one argument.
#[derive(serde::Deserialize)]
struct NoopRequest {
    share_id: ShareId,
}

impl Request for NoopRequest {
    fn share_ids(&self) -> Vec<uuid::Uuid> {
        vec![self.share_id.0]
    }
}

#[async_trait]
impl Handler for Noop {
    type Request = NoopRequest;

    async fn handle(&self, _task: &Task, request: &NoopRequest) -> Result<Value, TaskError> {
        Ok(json!({"status": "completed", "share_id": request.share_id.0}))
    }
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeArgs,
}

/// Publishes `TASKS` no-op tasks in Celery protocol 2 to a fresh queue.
async fn load_queue(broker: &TestBroker, queue: &str) -> Result<Vec<String>> {
    broker.declare_queue(queue).await?;
    let mut ids = Vec::with_capacity(TASKS);
    for _ in 0..TASKS {
        let id = uuid::Uuid::new_v4().to_string();
        broker
            .publish_celery_task(queue, &id, NOOP, json!({"share_id": uuid::Uuid::new_v4()}))
            .await?;
        ids.push(id);
    }
    Ok(ids)
}

async fn bench_runtime(broker: &TestBroker, concurrency: usize, multiplier: u16) -> Result<f64> {
    let queue = TestBroker::unique_queue("bench.runtime");
    let ids = load_queue(broker, &queue).await?;
    let concurrency = concurrency.to_string();
    let multiplier = multiplier.to_string();
    let cli = Cli::parse_from([
        "bench",
        "--concurrency",
        &concurrency,
        "--prefetch-multiplier",
        &multiplier,
    ]);
    let results = ResultBackend::connect(&env::redis_url(), Duration::from_secs(600)).await?;
    let metrics = Arc::new(Metrics::new("bench")?);
    let shutdown = ml_runtime::shutdown::CancellationToken::new();
    let spec = WorkerSpec {
        name: "bench".into(),
        queues: vec![queue.clone()],
        router: Router::new().route(NOOP, Arc::new(Noop)),
    };
    let worker = Worker::new(
        cli.runtime,
        spec,
        results,
        metrics,
        Readiness::default(),
        shutdown.clone(),
    );
    let running = tokio::spawn(worker.run());
    let rate = ml_testkit::celery::drain_rate(&ids, Duration::from_secs(300)).await;
    shutdown.cancel();
    running.await??;
    broker.delete(&queue).await;
    rate
}

async fn bench_celery(broker: &TestBroker) -> Result<f64> {
    let queue = TestBroker::unique_queue("bench.celery");
    let ids = load_queue(broker, &queue).await?;
    let peers = env::repo_root().join("benches/peers");
    let celery = env::python().with_file_name("celery");
    let mut child: Child = Command::new(&celery)
        .args([
            "-A",
            "celery_noop_worker",
            "worker",
            "-P",
            "prefork",
            "-c",
            "2",
            "-Q",
            &queue,
        ])
        .args([
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-l",
            "WARNING",
        ])
        .current_dir(&peers)
        .env("BENCH_QUEUE", &queue)
        .env("CELERY_BROKER_URL", env::broker_url())
        .env("REDIS_URL", env::redis_url())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {} (run scripts/setup)", celery.display()))?;
    let rate = ml_testkit::celery::drain_rate(&ids, Duration::from_secs(600)).await;
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    broker.delete(&queue).await;
    rate
}

/// Start-up time to `/readyz` and peak RSS of the release vector-worker.
async fn bench_vector_worker(broker: &TestBroker) -> Result<(Duration, u64)> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| env::repo_root().join("target"), std::path::PathBuf::from);
    let binary = target.join("release/vector-worker");
    anyhow::ensure!(
        binary.exists(),
        "{} missing: cargo build --release --bin vector-worker",
        binary.display()
    );
    let queue = TestBroker::unique_queue("bench.embed");
    let started = Instant::now();
    let mut worker = WorkerProcess::spawn(
        &binary,
        &queue,
        &[("LOG_LEVEL", "warn,ml_runtime::health=info")],
    )?;
    worker.wait_ready(Duration::from_secs(60)).await?;
    let to_ready = started.elapsed();
    let mut ids = Vec::new();
    for i in 0..20 {
        let id = uuid::Uuid::new_v4().to_string();
        let text = format!("Benchmark caption number {i} about sourdough, rust and rabbits.");
        broker
            .publish_celery_task(
                &queue,
                &id,
                "vector_service.tasks.generate_embeddings",
                json!({"share_id": uuid::Uuid::new_v4(), "content": {"text": text}}),
            )
            .await?;
        ids.push(id);
    }
    ml_testkit::celery::drain_rate(&ids, Duration::from_secs(120)).await?;
    let peak = ml_testkit::process::peak_rss(Some(worker.pid()))?;
    broker.delete(&queue).await;
    Ok((to_ready, peak))
}

#[tokio::main]
async fn main() -> Result<()> {
    if !std::env::args().any(|a| a == "--bench") {
        println!("runtime_throughput: run with `cargo bench` (skipped under cargo test)");
        return Ok(());
    }
    let broker = TestBroker::connect().await?;
    println!(
        "draining {TASKS} no-op tasks from a pre-loaded quorum queue (Redis results, late ack)"
    );
    let celery = bench_celery(&broker).await?;
    println!("  python celery 5 (prefork), concurrency  2, prefetch   8: {celery:>9.1} tasks/s");
    // Same settings as the Celery peer first, then with a deeper prefetch:
    // with quorum queues each settle is a Raft command, so a prefetch of 8
    // caps any consumer at 8 deliveries per broker round trip.
    for (concurrency, multiplier) in [(2, 4), (2, 64), (16, 8)] {
        let ours = bench_runtime(&broker, concurrency, multiplier).await?;
        let prefetch = concurrency * usize::from(multiplier);
        println!(
            "  ml-runtime (rust), concurrency {concurrency:>2}, prefetch {prefetch:>3}: {ours:>9.1} tasks/s  ratio {:>5.1}x  (goal >= 20x)",
            ours / celery
        );
    }
    let (to_ready, peak) = bench_vector_worker(&broker).await?;
    println!(
        "vector-worker (release): start to /readyz = 200 in {:.2} s (goal < 2 s)",
        to_ready.as_secs_f64()
    );
    println!(
        "vector-worker (release): peak RSS {:.1} MiB after 20 embed tasks",
        peak as f64 / 1048576.0
    );
    Ok(())
}
