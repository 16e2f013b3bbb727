// Starts a real worker (services and models from scripts/setup) on queues of
// its own, reads the address it bound from its JSON log ("bound"), waits for
// /readyz 200, and returns the text of /metrics and its log so far. Stops it
// with SIGTERM and expects exit 0. Or runs one until its log shows a line
// (firstMatchingLine).
import { spawn, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { binaryPath } from "./common.js";

const DEFAULT_ENV = {
  DATABASE_URL: "postgres://postgres@127.0.0.1:5432/ml_workers_test",
  CELERY_BROKER_URL: "amqp://guest:guest@127.0.0.1:5672/%2f",
  REDIS_URL: "redis://127.0.0.1:6379/0",
};

// Each worker's queue settings and default queues: the check gives every one
// a `.test-<hex>` twin (which scripts/test also sweeps), so it never takes
// messages meant for anything else.
const QUEUES = {
  "vector-worker": { EMBED_QUEUE: ["ml.embed"] },
  "llm-worker": {
    SUMMARIZE_QUEUE: ["ml.summarize"],
    SUMMARIZE_LOCAL_QUEUE: ["ml.summarize_local"],
    SUMMARIZE_VIDEO_COMBINED_QUEUE: ["ml.summarize_video_combined"],
  },
  "whisper-worker": { TRANSCRIBE_QUEUES: ["ml.transcribe", "ml.transcribe_local"] },
};

/**
 * Starts `worker` on `.test-<hex>` twins of its queues with `env` added to
 * its environment (after the defaults: `env` may set LOG_LEVEL/LOG_FORMAT).
 * Returns {child, log(), bound(), exitInfo(), stop()}; stop() sends SIGTERM,
 * waits (SIGKILL after 30 s), deletes the queues and returns {code, signal}.
 */
function startWorker(worker, extraEnv) {
  const bin = binaryPath(worker);
  if (!existsSync(bin)) throw new Error(`${bin} is missing: build it first (cargo build --bins, or run scripts/test)`);
  const suffix = `.test-${randomBytes(6).toString("hex")}`;
  const queueEnv = Object.fromEntries(
    Object.entries(QUEUES[worker]).map(([name, queues]) => [name, queues.map((q) => q + suffix).join(",")]),
  );
  const queues = Object.values(queueEnv).flatMap((v) => v.split(","));
  const env = {
    ...DEFAULT_ENV,
    ...process.env,
    PROMETHEUS_METRICS_PORT: "0",
    METRICS_HOST: "127.0.0.1",
    LOG_FORMAT: "json",
    LOG_LEVEL: "info",
    ...queueEnv,
    ...extraEnv,
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
  const stop = async () => {
    if (!exitInfo) child.kill("SIGTERM");
    let timer;
    const result = await Promise.race([
      exited,
      new Promise((r) => {
        timer = setTimeout(() => { child.kill("SIGKILL"); r({ code: null, signal: "SIGKILL (stop timeout)" }); }, 30_000);
      }),
    ]);
    clearTimeout(timer);
    for (const queue of queues.flatMap((q) => [q, `${q}.dead`]))
      try {
        execFileSync("rabbitmqctl", ["-q", "delete_queue", queue], { stdio: "ignore", timeout: 20_000 });
      } catch { /* best effort; scripts/test sweeps .test-<hex> queues */ }
    return result;
  };
  return { child, log: () => log, bound: () => bound, exitInfo: () => exitInfo, stop };
}

/** Runs `worker` until ready; `env` is added to its environment. */
export async function scrapeWorker(worker, { env: extraEnv = {}, timeoutMs = 180_000 } = {}) {
  const w = startWorker(worker, extraEnv);
  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !w.exitInfo()) {
      if (w.bound()) {
        const base = `http://${w.bound().replace(/^0\.0\.0\.0:/, "127.0.0.1:")}`;
        const ready = await fetch(`${base}/readyz`).then((r) => r.status, () => 0);
        if (ready === 200) {
          const res = await fetch(`${base}/metrics`);
          if (res.status !== 200) throw new Error(`GET ${base}/metrics answered ${res.status}`);
          return { text: await res.text(), base, log: w.log() };
        }
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(
      w.exitInfo()
        ? `${worker} exited early (${JSON.stringify(w.exitInfo())}); its log:\n${w.log().slice(-4000)}`
        : `${worker} not ready within ${timeoutMs / 1000}s (bound: ${w.bound()}); its log:\n${w.log().slice(-4000)}`,
    );
  } finally {
    const { code, signal } = await w.stop();
    if (code !== 0) console.log(`NOTE: ${worker} stopped with code ${code} signal ${signal}`);
  }
}

/**
 * Runs `worker` with `env` until a line of its output satisfies `match`
 * (the line, a string, to a boolean), as `kubectl logs ... | grep` would see
 * it. Returns {line, log}; line is null when none came within timeoutMs or
 * before it exited.
 */
export async function firstMatchingLine(worker, match, { env: extraEnv = {}, timeoutMs = 180_000 } = {}) {
  const w = startWorker(worker, extraEnv);
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = w.log().split("\n").find((l) => match(l));
      if (line !== undefined) return { line, log: w.log() };
      if (Date.now() >= deadline || w.exitInfo()) return { line: null, log: w.log() };
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await w.stop();
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
