// What Prometheus scrapes.
//
// - KEDA's own metrics are scraped: a ServiceMonitor selects the Service
//   KEDA 2.13 creates for its operator (`keda-operator` in namespace keda,
//   label app.kubernetes.io/name=keda-operator, port `metrics` 8080: KEDA's
//   config/manager/service.yaml and the Helm chart's
//   templates/manager/service.yaml), and an alert reads them.
// - Every worker Service is selected by a ServiceMonitor endpoint on a port
//   the Service has.
import assert from "node:assert/strict";
import { test } from "node:test";
import { WORKERS, renderAll, id, selects } from "./lib/common.js";

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

}
