// Starts the real vector-worker (services from scripts/setup), reads the
// address it bound from its JSON log ("bound"), waits for /readyz 200, and
// returns the text of /metrics. Stops it with SIGTERM and expects exit 0.
import { spawn, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { binaryPath } from "./common.js";

const DEFAULT_ENV = {
  DATABASE_URL: "postgres://postgres@127.0.0.1:5432/ml_workers_test",
  CELERY_BROKER_URL: "amqp://guest:guest@127.0.0.1:5672/%2f",
  REDIS_URL: "redis://127.0.0.1:6379/0",
};

export async function scrapeVectorWorker({ timeoutMs = 90_000 } = {}) {
  const bin = binaryPath("vector-worker");
  if (!existsSync(bin)) throw new Error(`${bin} is missing: build it first (cargo build --bin vector-worker, or run scripts/test)`);
  // A queue of its own (`.test-<hex>`, which scripts/test also sweeps) so the
  // check never takes messages meant for anything else.
  const queue = `ml.embed.test-${randomBytes(6).toString("hex")}`;
  const env = {
    ...DEFAULT_ENV,
    ...process.env,
    PROMETHEUS_METRICS_PORT: "0",
    METRICS_HOST: "127.0.0.1",
    LOG_FORMAT: "json",
    LOG_LEVEL: "info",
    EMBED_QUEUE: queue,
  };
  const child = spawn(bin, [], { env, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  let bound = null;
  const onData = (chunk) => {
    log += chunk;
    for (const line of String(chunk).split("\n")) {
      if (bound || !line.startsWith("{")) continue;
      try {
        const j = JSON.parse(line);
        if (j.bound) bound = j.bound;
      } catch { /* not a JSON line */ }
    }
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  let exitInfo = null;
  exited.then((x) => (exitInfo = x));

  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !exitInfo) {
      if (bound) {
        const base = `http://${bound.replace(/^0\.0\.0\.0:/, "127.0.0.1:")}`;
        const ready = await fetch(`${base}/readyz`).then((r) => r.status, () => 0);
        if (ready === 200) {
          const res = await fetch(`${base}/metrics`);
          if (res.status !== 200) throw new Error(`GET ${base}/metrics answered ${res.status}`);
          return { text: await res.text(), base };
        }
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(
      exitInfo
        ? `vector-worker exited early (${JSON.stringify(exitInfo)}); its log:\n${log.slice(-4000)}`
        : `vector-worker not ready within ${timeoutMs / 1000}s (bound: ${bound}); its log:\n${log.slice(-4000)}`,
    );
  } finally {
    if (!exitInfo) child.kill("SIGTERM");
    let timer;
    const { code, signal } = await Promise.race([
      exited,
      new Promise((r) => {
        timer = setTimeout(() => { child.kill("SIGKILL"); r({ code: null, signal: "SIGKILL (stop timeout)" }); }, 30_000);
      }),
    ]);
    clearTimeout(timer);
    if (code !== 0) console.log(`NOTE: vector-worker stopped with code ${code} signal ${signal}`);
    try {
      execFileSync("rabbitmqctl", ["-q", "delete_queue", queue], { stdio: "ignore", timeout: 20_000 });
      execFileSync("rabbitmqctl", ["-q", "delete_queue", `${queue}.dead`], { stdio: "ignore", timeout: 20_000 });
    } catch { /* best effort; scripts/test sweeps .test-<hex> queues */ }
  }
}

/** Metric names in a Prometheus text exposition, and which are histograms. */
export function exposition(text) {
  const samples = new Set();
  const types = new Map();
  for (const line of text.split("\n")) {
    const t = line.match(/^# TYPE (\S+) (\S+)/);
    if (t) types.set(t[1], t[2]);
    else if (line && !line.startsWith("#")) samples.add(line.match(/^[^{\s]+/)[0]);
  }
  return { samples, types };
}
