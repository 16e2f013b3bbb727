// Every metric named in a KEDA prometheus trigger, a PrometheusRule (k8s and
// docker/prometheus), and a Grafana dashboard (docker/grafana/dashboards) is
// exported by a running worker's /metrics: all three workers are started
// (real services and models) and their expositions together are the list.
// Histograms must be queried as _bucket/_sum/_count.
//
// The candle workers are started with CANDLE_NUM_THREADS/RAYON_NUM_THREADS
// set, as the manifests set them, and must report that thread count: the
// env-name checks count on those names being read.
//
// Metrics that come from elsewhere cannot be scraped here: RabbitMQ's
// prometheus plugin (rabbitmq_*), kube-state-metrics (kube_*), KEDA's
// operator (keda_*) and Prometheus's own `up`. They are checked against the
// allow-list below, names verified against those projects' sources.
//
// k8s/README.md's promises that need running workers are checked here too:
// `sum(celery_worker_busy) by (worker_type)` gives one series per worker
// type (each worker's celery_worker_busy has one series, with a worker_type
// of its own), and each `kubectl logs deployment/<worker> | grep <text>` of
// the README finds a line when the worker runs with the prod overlay's
// LOG_LEVEL and LOG_FORMAT (and the README's PromQL blocks name exported
// metrics, like the triggers and alerts).
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { before, test } from "node:test";
import { CANDLE_THREAD_ENV, DOCKER_DIR, OTHER_KUSTOMIZATIONS, WORKERS, envValue, render, renderAll, id, readYamlFile } from "./lib/common.js";
import { metricNames } from "./lib/promql.js";
import { blocks, commands } from "./lib/readme.js";
import { exposition, firstMatchingLine, scrapeWorker } from "./lib/worker.js";

export const EXTERNAL_METRICS = new Set([
  // rabbitmq_prometheus, /metrics/detailed?family=queue_coarse_metrics&family=queue_consumer_count
  "rabbitmq_detailed_queue_messages_ready",
  "rabbitmq_detailed_queue_messages_unacked",
  "rabbitmq_detailed_queue_messages",
  "rabbitmq_detailed_queue_consumers",
  // rabbitmq_prometheus, /metrics/per-object (or /metrics with return_per_object_metrics)
  "rabbitmq_queue_messages_ready",
  "rabbitmq_queue_messages_unacked",
  "rabbitmq_queue_messages",
  "rabbitmq_queue_consumers",
  // kube-state-metrics
  "kube_deployment_status_replicas_unavailable",
  "kube_deployment_status_replicas_available",
  "kube_deployment_spec_replicas",
  // KEDA 2.13's operator (pkg/metricscollector/prommetrics.go; the Go
  // client adds no _total, so the labelled counter is keda_scaler_errors)
  "keda_scaler_errors",
  "keda_scaler_errors_total",
  "keda_scaler_metrics_value",
  "keda_scaler_metrics_latency",
  "keda_scaler_active",
  "keda_scaled_object_errors",
  "keda_build_info",
  // Prometheus itself
  "up",
]);

/** [{where, expr}] of every PromQL expression the deployment relies on. */
function expressions() {
  const out = [];
  const everything = [...renderAll(), ...OTHER_KUSTOMIZATIONS.map((rel) => ({ rel, objects: render(rel) }))];
  for (const { rel, objects } of everything) {
    for (const o of objects) {
      if (o.kind === "ScaledObject")
        (o.spec.triggers ?? []).forEach((t, i) => {
          if (t.type === "prometheus") out.push({ where: `${rel} ${id(o)} spec.triggers[${i}].metadata.query`, expr: t.metadata.query });
        });
      if (o.kind === "PrometheusRule")
        (o.spec.groups ?? []).forEach((g, gi) =>
          (g.rules ?? []).forEach((r, ri) =>
            out.push({ where: `${rel} ${id(o)} spec.groups[${gi}].rules[${ri}] (${r.alert ?? r.record})`, expr: r.expr })));
    }
  }
  for (const b of blocks().filter((x) => x.lang === "promql"))
    b.body.split("\n").forEach((line, i) => {
      if (line.trim() && !line.trim().startsWith("#")) out.push({ where: `k8s/README.md:${b.line + 1 + i}`, expr: line });
    });
  const dashDir = path.join(DOCKER_DIR, "grafana/dashboards");
  if (existsSync(dashDir)) {
    for (const f of readdirSync(dashDir).filter((n) => n.endsWith(".json"))) {
      const walk = (node, p) => {
        if (Array.isArray(node)) node.forEach((x, i) => walk(x, `${p}[${i}]`));
        else if (node && typeof node === "object")
          for (const [k, v] of Object.entries(node)) {
            if (k === "expr" && typeof v === "string" && v.trim()) out.push({ where: `docker/grafana/dashboards/${f} ${p}.expr`, expr: v });
            else if (k === "query" && typeof v === "string" && /^(label_values|query_result)\(/.test(v))
              out.push({ where: `docker/grafana/dashboards/${f} ${p}.query`, expr: v.replace(/^label_values\(\s*([^,)]*).*$/s, "$1").replace(/^query_result\((.*)\)$/s, "$1") });
            else walk(v, `${p}.${k}`);
          }
      };
      walk(JSON.parse(readFileSync(path.join(dashDir, f), "utf8")), "");
    }
  }
  const promDir = path.join(DOCKER_DIR, "prometheus");
  if (existsSync(promDir)) {
    for (const f of readdirSync(promDir).filter((n) => /\.ya?ml$/.test(n))) {
      const doc = readYamlFile(path.join(promDir, f));
      (doc?.groups ?? []).forEach((g, gi) =>
        (g.rules ?? []).forEach((r, ri) =>
          out.push({ where: `docker/prometheus/${f} groups[${gi}].rules[${ri}] (${r.alert ?? r.record})`, expr: r.expr })));
    }
  }
  return out;
}

const THREADS = 1;
let exported;
const logs = {};
const texts = {};
before(async () => {
  exported = { samples: new Set(), types: new Map() };
  for (const worker of Object.keys(WORKERS)) {
    const env = WORKERS[worker].candle ? Object.fromEntries(CANDLE_THREAD_ENV.map((n) => [n, String(THREADS)])) : {};
    const { text, log } = await scrapeWorker(worker, { env });
    texts[worker] = text;
    const { samples, types } = exposition(text);
    samples.forEach((n) => exported.samples.add(n));
    types.forEach((t, n) => exported.types.set(n, t));
    logs[worker] = log;
  }
});

test("the candle workers compute with the thread count the manifests give them", () => {
  for (const [worker, { candle }] of Object.entries(WORKERS)) {
    if (!candle) continue;
    const line = logs[worker].split("\n").find((l) => l.includes('"compute threads"') || l.includes("more compute threads than CPUs"));
    assert.ok(line, `${worker} logged no compute threads line:\n${logs[worker].slice(-2000)}`);
    assert.equal(JSON.parse(line).threads, THREADS, `${worker}: ${line}`);
  }
});

test("every metric in triggers, alerts and dashboards is exported", () => {
  const problems = [];
  const exprs = expressions();
  assert.ok(exprs.length > 0, "found no PromQL expressions at all");
  for (const { where, expr } of exprs) {
    for (const name of metricNames(expr)) {
      if (EXTERNAL_METRICS.has(name)) continue;
      if (/^(rabbitmq|kube|keda)_/.test(name) || name === "up") {
        problems.push(`${where}: ${name} is not in the allow-list of RabbitMQ/kube-state-metrics/KEDA names (tests/deploy/metrics.test.js)`);
      } else if (exported.types.get(name) === "histogram") {
        problems.push(`${where}: ${name} is a histogram; query ${name}_bucket, _sum or _count`);
      } else if (!exported.samples.has(name)) {
        problems.push(`${where}: ${name} is not exported by the worker's /metrics`);
      }
    }
  }
  assert.deepEqual(problems, [], `metrics referenced but not exported:\n  ${problems.join("\n  ")}`);
});

test("sum(celery_worker_busy) by (worker_type) gives one series per worker type", () => {
  const problems = [];
  const types = {};
  for (const [worker, text] of Object.entries(texts)) {
    const series = text.split("\n").filter((l) => /^celery_worker_busy[{\s]/.test(l));
    const labels = series.map((l) => l.match(/worker_type="([^"]*)"/)?.[1]);
    if (series.length !== 1 || !labels[0]) problems.push(`${worker}: celery_worker_busy series ${JSON.stringify(series)}; want one, with a worker_type label`);
    else types[worker] = labels[0];
  }
  const values = Object.values(types);
  if (new Set(values).size !== values.length) problems.push(`worker types repeat across workers: ${JSON.stringify(types)}`);
  assert.deepEqual(problems, [], problems.join("\n"));
});

// `kubectl logs ... deployment/<worker> | grep [-i] <pattern>` lines of k8s/README.md.
const GREPS = commands()
  .filter((c) => c.stages[0][0] === "kubectl" && c.stages[0].includes("logs") && c.stages.length === 2 && c.stages[1][0] === "grep")
  .map((c) => {
    const deploy = c.stages[0].map((a) => a.match(/^(?:deployment|deploy)\/([\w-]+)$/)?.[1]).find(Boolean);
    const args = c.stages[1].slice(1);
    const ignoreCase = args.includes("-i");
    const pattern = args.filter((a) => !a.startsWith("-")).at(-1);
    return { text: c.text, line: c.line, deploy, pattern, ignoreCase };
  });

test("k8s/README.md has a `kubectl logs deployment/... | grep` line to check", () => {
  assert.ok(GREPS.length > 0, "no `kubectl logs deployment/<worker> | grep` line in k8s/README.md");
  for (const g of GREPS) assert.ok(WORKERS[g.deploy] && g.pattern, `k8s/README.md:${g.line}: cannot read \`${g.text}\``);
});

for (const g of GREPS.filter((x) => WORKERS[x.deploy])) {
  test(`k8s/README.md:${g.line} \`${g.text}\` finds a line under prod's log settings`, async () => {
    const prod = render("overlays/prod");
    const deploy = prod.find((o) => o.kind === "Deployment" && o.metadata.name === g.deploy);
    const env = Object.fromEntries(["LOG_LEVEL", "LOG_FORMAT"].map((n) => [n, envValue(prod, deploy, n)]).filter(([, v]) => v !== undefined));
    // grep's basic regular expressions: a plain word in the README, read as a JS regex.
    const re = new RegExp(g.pattern, g.ignoreCase ? "i" : "");
    const { line, log } = await firstMatchingLine(g.deploy, (l) => re.test(l), { env });
    assert.ok(line, `${g.deploy} with ${JSON.stringify(env)} logged no line matching ${g.pattern}; its log:\n${log.slice(-3000)}`);
  });
}
