// What Prometheus scrapes and where the metrics go.
//
// - KEDA's own metrics are scraped: a ServiceMonitor selects the Service
//   KEDA 2.13 creates for its operator (`keda-operator` in namespace keda,
//   label app.kubernetes.io/name=keda-operator, port `metrics` 8080: KEDA's
//   config/manager/service.yaml and the Helm chart's
//   templates/manager/service.yaml), and an alert reads them.
// - Every worker Service is selected by a ServiceMonitor endpoint on a port
//   the Service has.
// - Regional overlays (REGIONS): every endpoint of every ServiceMonitor
//   labels its targets region=<region>; a Prometheus has that region as
//   external label, selects every ServiceMonitor rendered, and
//   remote-writes over https to a receiver's /api/v1/write; the workers'
//   broker Secret and KEDA's TriggerAuthentication Secret are the region's
//   own (<name>-<region>).
// - The global receiver (global-metrics) accepts remote-write, and its rules
//   keep regions apart (every aggregation is `by (region, ...)`).
import assert from "node:assert/strict";
import { test } from "node:test";
import { NAMESPACE, REGIONS, WORKERS, renderAll, render, id, selects } from "./lib/common.js";

// KEDA 2.13's operator Service (see above).
const KEDA_OPERATOR_SERVICE = { namespace: "keda", labels: { "app.kubernetes.io/name": "keda-operator" }, port: "metrics" };

/** Whether ServiceMonitor `sm` (in namespace `smNamespace`) selects a Service in `ns` with `labels`. */
function monitors(sm, ns, labels) {
  const nsSel = sm.spec.namespaceSelector ?? {};
  const inNs = nsSel.any === true || (nsSel.matchNames ? nsSel.matchNames.includes(ns) : ns === sm.metadata.namespace);
  return inNs && selects(sm.spec.selector ?? {}, labels);
}

for (const { rel, objects } of renderAll()) {
  const sms = objects.filter((o) => o.kind === "ServiceMonitor");
  test(`KEDA's and the workers' metrics are scraped: ${rel}`, () => {
    const problems = [];
    const keda = sms.filter((sm) => monitors(sm, KEDA_OPERATOR_SERVICE.namespace, KEDA_OPERATOR_SERVICE.labels));
    if (!keda.some((sm) => (sm.spec.endpoints ?? []).some((e) => e.port === KEDA_OPERATOR_SERVICE.port)))
      problems.push(`no ServiceMonitor scrapes port ${KEDA_OPERATOR_SERVICE.port} of KEDA's operator Service (namespace keda, app.kubernetes.io/name=keda-operator)`);
    const rules = objects.filter((o) => o.kind === "PrometheusRule").flatMap((o) => (o.spec.groups ?? []).flatMap((g) => g.rules ?? []));
    if (!rules.some((r) => r.alert && /\bkeda_\w+/.test(r.expr)))
      problems.push("no alert reads KEDA's metrics (keda_*): a trigger that cannot read its source would go unnoticed");
    for (const w of Object.keys(WORKERS)) {
      const svc = objects.find((o) => o.kind === "Service" && o.metadata.name === w);
      if (!svc) continue;
      const ports = new Set((svc.spec.ports ?? []).map((p) => p.name));
      const ok = sms.some((sm) => monitors(sm, svc.metadata.namespace, svc.metadata.labels ?? {}) && (sm.spec.endpoints ?? []).some((e) => ports.has(e.port)));
      if (!ok) problems.push(`${id(svc)}: no ServiceMonitor endpoint scrapes it`);
    }
    assert.deepEqual(problems, [], `${rel}:\n  ${problems.join("\n  ")}`);
  });

  const region = REGIONS[rel];
  if (!region) continue;
  test(`region ${region}: labels, external labels, remote-write, regional Secrets: ${rel}`, () => {
    const problems = [];
    for (const sm of sms)
      (sm.spec.endpoints ?? []).forEach((e, i) => {
        const r = (e.relabelings ?? []).find((x) => x.targetLabel === "region");
        if (!r || (r.action ?? "replace") !== "replace" || r.replacement !== region || r.sourceLabels?.length)
          problems.push(`${id(sm)} spec.endpoints[${i}]: does not set label region=${region} on its targets (relabelings)`);
      });
    const proms = objects.filter((o) => o.kind === "Prometheus");
    const prom = proms.find((p) => p.spec.externalLabels?.region === region);
    if (!prom) problems.push(`no Prometheus with externalLabels.region ${region} (found: ${proms.map(id).join(", ") || "none"})`);
    else {
      for (const sm of sms) {
        const nsLabels = { "kubernetes.io/metadata.name": sm.metadata.namespace };
        const nsSel = prom.spec.serviceMonitorNamespaceSelector;
        const inNs = nsSel ? selects(nsSel, nsLabels) : sm.metadata.namespace === prom.metadata.namespace;
        if (!inNs || !selects(prom.spec.serviceMonitorSelector, sm.metadata.labels ?? {}))
          problems.push(`${id(prom)}: does not select ${id(sm)} (serviceMonitorSelector / serviceMonitorNamespaceSelector)`);
      }
      const writes = prom.spec.remoteWrite ?? [];
      if (!writes.length) problems.push(`${id(prom)}: no remoteWrite to the global receiver`);
      for (const [i, w] of writes.entries())
        if (!/^https:\/\/[^/\s]+\/.*api\/v1\/write$/.test(w.url ?? "") || /REMOTE_WRITE|example\.invalid/.test(w.url))
          problems.push(`${id(prom)} spec.remoteWrite[${i}].url ${w.url} is not an https URL of a receiver's /api/v1/write`);
    }
    for (const d of objects.filter((o) => o.kind === "Deployment" && WORKERS[o.metadata.name])) {
      const secrets = (d.spec.template.spec.containers[0].envFrom ?? []).map((s) => s.secretRef?.name).filter(Boolean);
      if (!secrets.includes(`ml-workers-credentials-${region}`))
        problems.push(`${id(d)}: reads Secrets ${secrets.join(", ")}; the broker URL must come from the region's ml-workers-credentials-${region}`);
    }
    for (const ta of objects.filter((o) => o.kind === "TriggerAuthentication"))
      for (const ref of ta.spec.secretTargetRef ?? [])
        if (ref.name !== `keda-rabbitmq-management-${region}`)
          problems.push(`${id(ta)}: reads Secret ${ref.name}; KEDA must read the region's keda-rabbitmq-management-${region}`);
    assert.deepEqual(problems, [], `${rel}:\n  ${problems.join("\n  ")}`);
  });
}

test("regions are distinct, each with the workers' namespace", () => {
  const names = Object.values(REGIONS);
  assert.equal(new Set(names).size, names.length, `region names repeat: ${names.join(", ")}`);
  for (const rel of Object.keys(REGIONS))
    assert.ok(render(rel).some((o) => o.kind === "Namespace" && o.metadata.name === NAMESPACE), `${rel}: no Namespace ${NAMESPACE}`);
});

test("the global receiver takes remote-write and keeps regions apart", () => {
  const objects = render("global-metrics");
  const problems = [];
  const receivers = objects.filter((o) => o.kind === "Prometheus" && o.spec.enableRemoteWriteReceiver === true);
  if (!receivers.length) problems.push("no Prometheus with enableRemoteWriteReceiver: true");
  for (const p of receivers) {
    const rules = objects.filter((o) => o.kind === "PrometheusRule" && o.metadata.namespace === p.metadata.namespace);
    if (!rules.some((r) => selects(p.spec.ruleSelector, r.metadata.labels ?? {}))) problems.push(`${id(p)}: selects none of the global rules`);
  }
  for (const r of objects.filter((o) => o.kind === "PrometheusRule"))
    (r.spec.groups ?? []).forEach((g) =>
      (g.rules ?? []).forEach((rule) => {
        const groupings = [...rule.expr.matchAll(/\bby\s*\(([^)]*)\)/g)].map((m) => m[1].split(",").map((x) => x.trim()));
        if (!groupings.length || groupings.some((labels) => !labels.includes("region")))
          problems.push(`${id(r)} ${rule.record ?? rule.alert}: aggregates without \`by (region, ...)\`, mixing regions: ${rule.expr.trim()}`);
      }));
  assert.deepEqual(problems, [], problems.join("\n"));
});
