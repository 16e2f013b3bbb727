//! Embedding throughput of the candle embedder (`ml_embedding::Embedder`)
//! against sentence-transformers on PyTorch (CPU, 2 threads), measured in the
//! same run, on the same texts, with the same model folder
//! (`$MODELS_DIR/all-MiniLM-L6-v2`).
//!
//! Two deterministic text sets: short captions (10-15 words) and long
//! paragraphs (150-200 words). For each set and batch size (1, 8, 32, 128)
//! the peer warms up with one batch, then embeds batches until at least
//! `MIN_SECONDS` have passed; it reports how many texts that was, and ours
//! then embeds exactly the same texts, batch by batch, after the same warm-up,
//! each batch in the length-sorted passes the vector-worker runs.
//! Tokens are word pieces without special tokens, capped at the model window.
//! Both sides' arithmetic rate (GFLOP/s) is the model's useful arithmetic
//! for those texts (no padding) over each side's time: how close each runs
//! to the CPU's peak. Then both processes' peak RSS, and, when the release
//! vector-worker is built, end-to-end tasks/s through RabbitMQ into pgvector.
//!
//! Run: `scripts/bench embedding_throughput` (creates the peer's venv
//! `~/.cache/ml-workers/venv-bench`, builds the release binaries, then
//! `cargo bench --bench embedding_throughput`). Needs scripts/setup.
//! `BENCH_PYTHON` overrides the peer's Python.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ml_embedding::{Embedder, EmbedderConfig, PassLimits};
use ml_testkit::{TestBroker, WorkerProcess, env};
use serde_json::{Value, json};

const MODEL: &str = "all-MiniLM-L6-v2";
const BATCHES: [usize; 4] = [1, 8, 32, 128];
const MIN_SECONDS: f64 = 3.0;
const THREADS: usize = 2;
const E2E_TASKS: usize = 1_000;

/// One measured cell of one side.
#[derive(Debug, Clone, Copy)]
struct Cell {
    n: usize,
    seconds: f64,
    tokens: usize,
}

impl Cell {
    #[allow(clippy::cast_precision_loss)]
    fn sentences_per_s(&self) -> f64 {
        self.n as f64 / self.seconds
    }
    #[allow(clippy::cast_precision_loss)]
    fn tokens_per_s(&self) -> f64 {
        self.tokens as f64 / self.seconds
    }
}

/// A small deterministic generator (splitmix64): the same texts every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// A number in `low..=high`.
    fn range(&mut self, low: usize, high: usize) -> usize {
        let span = u64::try_from(high - low + 1).unwrap_or(1);
        low + usize::try_from(self.next() % span).unwrap_or(0)
    }
    /// One word of a space-separated list.
    fn pick<'a>(&mut self, words: &'a str) -> &'a str {
        let count = words.split_whitespace().count();
        let index = self.range(0, count - 1);
        words.split_whitespace().nth(index).unwrap_or_default()
    }
}

const NOUNS: &str = "\
    recipe bread sourdough garden tomatoes coffee morning city river mountain trail camera \
    photo video tutorial guitar song album concert festival market kitchen dinner pasta \
    salad workout run marathon bike road trip beach sunset ocean boat island forest dog cat \
    puppy kitten family friends weekend holiday book novel chapter author library school \
    lesson teacher student project code program computer phone app design painting artist \
    museum history science experiment planet star telescope rain snow winter summer spring \
    autumn flower tree house room wall window street car train station ticket price budget \
    money business company team game match score player coach season league movie scene \
    actor story interview podcast episode news report market policy energy battery solar \
    climate water health sleep habit routine idea";
const VERBS: &str = "\
    makes shows explains finds builds tries loves shares changes brings takes keeps starts \
    finishes teaches learns cooks bakes paints plays writes reads visits watches follows \
    improves fixes compares tests measures grows cleans opens closes remembers";
const ADJECTIVES: &str = "\
    quick simple easy new old small big beautiful quiet loud bright dark fresh warm cold \
    cheap expensive local famous strange useful perfect favourite homemade healthy long \
    short early late happy tired honest careful modern classic wild";
const LINKS: &str = "the a this my our every another that your one";
const JOINS: &str =
    "with for after before during near without about under over and because while when so";

/// One sentence of roughly `words` words.
fn sentence(rng: &mut Rng, words: usize) -> String {
    let mut out: Vec<&str> = Vec::with_capacity(words + 4);
    while out.len() < words {
        if !out.is_empty() {
            out.push(rng.pick(JOINS));
        }
        out.push(rng.pick(LINKS));
        if rng.range(0, 2) == 0 {
            out.push(rng.pick(ADJECTIVES));
        }
        out.push(rng.pick(NOUNS));
        out.push(rng.pick(VERBS));
        out.push(rng.pick(LINKS));
        out.push(rng.pick(NOUNS));
    }
    out.truncate(words);
    let mut text = out.join(" ");
    if let Some(first) = text.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    text.push('.');
    text
}

/// `count` captions of 10-15 words.
fn short_texts(count: usize) -> Vec<String> {
    let mut rng = Rng(0x5EED_0001);
    (0..count)
        .map(|_| {
            let words = rng.range(10, 15);
            sentence(&mut rng, words)
        })
        .collect()
}

/// `count` paragraphs of 150-200 words, in sentences of 8-20 words.
fn long_texts(count: usize) -> Vec<String> {
    let mut rng = Rng(0x5EED_0002);
    (0..count)
        .map(|_| {
            let target = rng.range(150, 200);
            let mut sentences = Vec::new();
            let mut words = 0;
            while words < target {
                let n = rng.range(8, 20).min(target - words).max(1);
                sentences.push(sentence(&mut rng, n));
                words += n;
            }
            sentences.join(" ")
        })
        .collect()
}

/// The `batch` texts starting at `start`, cycling through `texts` (as the peer does).
fn take(texts: &[String], start: usize, batch: usize) -> Vec<&str> {
    (0..batch)
        .map(|k| texts[(start + k) % texts.len()].as_str())
        .collect()
}

/// Word pieces without special tokens, capped at the model's window.
fn token_counts(embedder: &Embedder, texts: &[String]) -> Result<Vec<usize>> {
    texts
        .iter()
        .map(|t| Ok(embedder.count_tokens(t)?.min(embedder.max_content_tokens())))
        .collect()
}

/// Embeds the same `n` texts as the peer, `batch` at a time, after one
/// warm-up batch; each batch as the vector-worker embeds what it gathers:
/// in the length-sorted passes of its default limits (the peer, too, sorts
/// each call's texts by length).
fn bench_ours(
    embedder: &Embedder,
    texts: &[String],
    counts: &[usize],
    batch: usize,
    n: usize,
) -> Result<Cell> {
    let limits = PassLimits::default();
    let embed = |texts: &[&str]| embedder.embed_in_passes(texts, &limits, |_, _| {});
    embed(&take(texts, 0, batch))?;
    let started = Instant::now();
    let mut done = 0;
    while done < n {
        let vectors = embed(&take(texts, done, batch))?;
        anyhow::ensure!(
            vectors.len() == batch,
            "{} vectors for {batch} texts",
            vectors.len()
        );
        done += batch;
    }
    let seconds = started.elapsed().as_secs_f64();
    let tokens = (0..done).map(|i| counts[i % texts.len()]).sum();
    Ok(Cell {
        n: done,
        seconds,
        tokens,
    })
}

/// The sizes that set a BERT encoder's arithmetic, from its `config.json`.
struct Arithmetic {
    hidden: f64,
    intermediate: f64,
    layers: f64,
}

impl Arithmetic {
    fn read(model_dir: &std::path::Path) -> Result<Self> {
        let path = model_dir.join("config.json");
        let config: Value = serde_json::from_str(
            &std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?,
        )?;
        let size = |key: &str| {
            config[key]
                .as_u64()
                .map(|v| v as f64)
                .with_context(|| format!("{key} in {}", path.display()))
        };
        Ok(Self {
            hidden: size("hidden_size")?,
            intermediate: size("intermediate_size")?,
            layers: size("num_hidden_layers")?,
        })
    }

    /// Floating-point operations to encode one text of `tokens` tokens:
    /// per layer the four projections, `2·L·(4h² + 2h·i)`, and attention's
    /// two products, `4·L²·h` (the embeddings, norms and activations are
    /// a rounding error next to them).
    #[allow(clippy::cast_precision_loss)]
    fn flops(&self, tokens: usize) -> f64 {
        let (l, h, i) = (tokens as f64, self.hidden, self.intermediate);
        self.layers * (2.0 * l * (4.0 * h * h + 2.0 * h * i) + 4.0 * l * l * h)
    }
}

/// The peer's Python: `BENCH_PYTHON`, else the bench venv scripts/bench creates.
fn peer_python() -> PathBuf {
    std::env::var_os("BENCH_PYTHON").map_or_else(
        || env::cache_dir().join("venv-bench/bin/python"),
        PathBuf::from,
    )
}

struct PeerRun {
    cells: Vec<(String, usize, Cell)>,
    peak_rss: u64,
    versions: Value,
}

/// Runs the sentence-transformers peer on `spec` and reads its JSON lines.
fn run_peer(spec: &Value) -> Result<PeerRun> {
    let file = tempfile_path("embedding-bench-texts.json");
    std::fs::File::create(&file)
        .and_then(|mut f| f.write_all(spec.to_string().as_bytes()))
        .with_context(|| format!("writing {}", file.display()))?;
    let python = peer_python();
    let script = env::repo_root().join("benches/peers/sentence_transformers_peer.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(&file)
        .env("HF_HUB_OFFLINE", "1")
        .env("TRANSFORMERS_OFFLINE", "1")
        .env("OMP_NUM_THREADS", THREADS.to_string())
        .env("MKL_NUM_THREADS", THREADS.to_string())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| {
            format!(
                "starting {} (run scripts/bench to create the venv)",
                python.display()
            )
        })?;
    let _ = std::fs::remove_file(&file);
    anyhow::ensure!(
        output.status.success(),
        "the peer failed: {}",
        output.status
    );
    let mut run = PeerRun {
        cells: Vec::new(),
        peak_rss: 0,
        versions: Value::Null,
    };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(value) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if let Some(peak) = value["peak_rss_bytes"].as_u64() {
            run.peak_rss = peak;
            run.versions = value["versions"].clone();
            continue;
        }
        let set = value["set"].as_str().context("set")?.to_owned();
        let batch = usize::try_from(value["batch"].as_u64().context("batch")?)?;
        let n = usize::try_from(value["n"].as_u64().context("n")?)?;
        let seconds = value["seconds"].as_f64().context("seconds")?;
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let tokens =
            (value["tokens_per_s"].as_f64().context("tokens_per_s")? * seconds).round() as usize;
        run.cells.push((set, batch, Cell { n, seconds, tokens }));
    }
    anyhow::ensure!(
        run.cells.len() == 2 * BATCHES.len(),
        "the peer printed {} cells",
        run.cells.len()
    );
    Ok(run)
}

fn tempfile_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("{}-{name}", std::process::id()))
}

/// End-to-end: `E2E_TASKS` caption tasks pre-loaded into a quorum queue,
/// drained by the release vector-worker into pgvector (rows + Redis results).
async fn bench_end_to_end(captions: &[String]) -> Result<Option<(f64, u64)>> {
    let Some(binary) = env::release_binary("vector-worker") else {
        println!("end-to-end: skipped");
        return Ok(None);
    };
    let broker = TestBroker::connect().await?;
    let queue = TestBroker::unique_queue("bench.embed.e2e");
    broker.declare_queue(&queue).await?;
    let mut ids = Vec::with_capacity(E2E_TASKS);
    for i in 0..E2E_TASKS {
        let id = uuid::Uuid::new_v4().to_string();
        broker
            .publish_celery_task(
                &queue,
                &id,
                "vector_service.tasks.generate_embeddings",
                json!({
                    "share_id": uuid::Uuid::new_v4(),
                    "content": {"text": captions[i % captions.len()], "type": "caption"},
                }),
            )
            .await?;
        ids.push(id);
    }
    let mut worker = WorkerProcess::spawn(&binary, &queue, &[("LOG_LEVEL", "warn")])?;
    let rate = ml_testkit::celery::drain_rate(&ids, Duration::from_secs(600)).await;
    let peak = ml_testkit::process::peak_rss(Some(worker.pid()))?;
    let _ = worker.terminate();
    let _ = worker.wait_exit(Duration::from_secs(30)).await;
    broker.delete(&queue).await;
    Ok(Some((rate?, peak)))
}

#[allow(clippy::cast_precision_loss)]
fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1_048_576.0
}

#[allow(unsafe_code)]
fn main() -> Result<()> {
    // SAFETY: the first statement of `main`: no other thread runs yet.
    unsafe { common::compute_with_threads(THREADS) };
    if !std::env::args().any(|a| a == "--bench") {
        println!("embedding_throughput: run with `cargo bench` (skipped under cargo test)");
        return Ok(());
    }
    let model_dir = env::models_dir().join(MODEL);
    let sets = [("short", short_texts(512)), ("long", long_texts(256))];
    let spec = json!({
        "model_dir": model_dir,
        "batches": BATCHES,
        "min_seconds": MIN_SECONDS,
        "threads": THREADS,
        "sets": {"short": sets[0].1, "long": sets[1].1},
    });

    println!(
        "embedding {MODEL}: sentence-transformers (PyTorch CPU, {THREADS} threads) first, then ours (candle), same texts"
    );
    let peer = run_peer(&spec)?;
    println!("peer: {}", peer.versions);

    let embedder = Embedder::load(&model_dir, EmbedderConfig::default())
        .with_context(|| format!("loading {} (run scripts/setup)", model_dir.display()))?;
    let arithmetic = Arithmetic::read(&model_dir)?;
    let special_tokens = embedder.max_tokens() - embedder.max_content_tokens();
    println!(
        "\n{:<6} {:>5} {:>6} | {:>12} {:>12} {:>7} | {:>12} {:>12} | {:>7} {:>7}",
        "set",
        "batch",
        "n",
        "ours sent/s",
        "peer sent/s",
        "ratio",
        "ours tok/s",
        "peer tok/s",
        "ours GF",
        "peer GF"
    );
    println!("{}", "-".repeat(104));
    let mut worst = f64::INFINITY;
    for (name, texts) in &sets {
        let counts = token_counts(&embedder, texts)?;
        for (set, batch, theirs) in peer.cells.iter().filter(|(s, _, _)| s == name) {
            let ours = bench_ours(&embedder, texts, &counts, *batch, theirs.n)?;
            let ratio = ours.sentences_per_s() / theirs.sentences_per_s();
            worst = worst.min(ratio);
            let gigaflops: f64 = (0..theirs.n)
                .map(|i| arithmetic.flops(counts[i % texts.len()] + special_tokens))
                .sum::<f64>()
                / 1e9;
            println!(
                "{set:<6} {batch:>5} {:>6} | {:>12.1} {:>12.1} {:>6.2}x | {:>12.0} {:>12.0} | {:>7.1} {:>7.1}",
                theirs.n,
                ours.sentences_per_s(),
                theirs.sentences_per_s(),
                ratio,
                ours.tokens_per_s(),
                theirs.tokens_per_s(),
                gigaflops / ours.seconds,
                gigaflops / theirs.seconds,
            );
        }
    }
    println!("{}", "-".repeat(104));
    println!(
        "GF: GFLOP/s of the model's arithmetic for these texts, unpadded (both sides the same count)"
    );
    println!("lowest ratio {worst:.2}x (goal >= 1.5x at every batch size)");
    let ours_rss = ml_testkit::process::peak_rss(None)?;
    println!(
        "peak RSS: ours {:.1} MiB (this bench process, model + all cells; goal < 300 MB), peer {:.1} MiB (python, ru_maxrss)",
        mib(ours_rss),
        mib(peer.peak_rss)
    );
    drop(embedder);

    let runtime = tokio::runtime::Runtime::new()?;
    let captions = &sets[0].1;
    if let Some((rate, peak)) = runtime.block_on(bench_end_to_end(captions))? {
        println!(
            "end-to-end: {E2E_TASKS} caption tasks pre-loaded in a quorum queue -> release vector-worker -> pgvector + Redis: {rate:.1} tasks/s, worker peak RSS {:.1} MiB",
            mib(peak)
        );
    }
    Ok(())
}
