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
// prometheus plugin (rabbitmq_*), kube-state-metrics (kube_*) and
// Prometheus's own `up`. They are checked against the allow-list below,
// names verified against those projects' sources.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { before, test } from "node:test";
import { CANDLE_THREAD_ENV, DOCKER_DIR, WORKERS, renderAll, id, readYamlFile } from "./lib/common.js";
import { metricNames } from "./lib/promql.js";
import { exposition, scrapeWorker } from "./lib/worker.js";

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
  // Prometheus itself
  "up",
]);

/** [{where, expr}] of every PromQL expression the deployment relies on. */
function expressions() {
  const out = [];
  for (const { rel, objects } of renderAll()) {
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
before(async () => {
  exported = { samples: new Set(), types: new Map() };
  for (const worker of Object.keys(WORKERS)) {
    const env = WORKERS[worker].candle ? Object.fromEntries(CANDLE_THREAD_ENV.map((n) => [n, String(THREADS)])) : {};
    const { text, log } = await scrapeWorker(worker, { env });
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
      if (/^(rabbitmq|kube)_/.test(name) || name === "up") {
        problems.push(`${where}: ${name} is not in the allow-list of RabbitMQ/kube-state-metrics names (tests/deploy/metrics.test.js)`);
      } else if (exported.types.get(name) === "histogram") {
        problems.push(`${where}: ${name} is a histogram; query ${name}_bucket, _sum or _count`);
      } else if (!exported.samples.has(name)) {
        problems.push(`${where}: ${name} is not exported by the worker's /metrics`);
      }
    }
  }
  assert.deepEqual(problems, [], `metrics referenced but not exported:\n  ${problems.join("\n  ")}`);
});
