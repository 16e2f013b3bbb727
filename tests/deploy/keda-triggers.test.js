// Every ScaledObject trigger is one KEDA 2.13 accepts and reads as meant.
// Trigger metadata is a free map of strings in the CRD schema, so a misspelt
// key (`useRegexp`) or a value KEDA cannot parse passes schema validation and
// fails, or is ignored, only when KEDA builds the scaler. The rules below
// restate what KEDA v2.13.1 does (file names under github.com/kedacore/keda):
//
// - pkg/scalers/rabbitmq_scaler.go (parseRabbitMQMetadata): the keys read;
//   protocol amqp | http | auto; useRegex and excludeUnacknowledged only with
//   http; operation sum | avg | max (how several regex-matched queues
//   combine; default sum); mode QueueLength | MessageRate with value, a float;
//   the host from TriggerAuthentication parameter `host`, or metadata host /
//   hostFromEnv.
// - pkg/scalers/prometheus_scaler.go (parsePrometheusMetadata): serverAddress,
//   query and threshold required; threshold and activationThreshold floats;
//   ignoreNullValues and unsafeSsl booleans.
// - pkg/scalers/cpu_memory_scaler.go (parseResourceMetadata): exactly one of
//   trigger.metricType and metadata.type; Utilization (value an int32) or
//   AverageValue (value a Kubernetes quantity: resource.MustParse, which
//   panics the operator on anything else); and apis/keda/v1alpha1/scaledobject_webhook.go
//   (verifyCPUMemoryScalers): every container the trigger looks at has a
//   request for that resource.
// - pkg/scalers/scaler.go (GetMetricTargetType): a rabbitmq/prometheus
//   trigger's metricType is AverageValue (the default) or Value, never
//   Utilization.
// - apis/keda/v1alpha1/scaletriggers_types.go (ValidateTriggers): trigger
//   names unique; no useCachedMetrics on cpu/memory triggers.
// Booleans parse like Go's strconv.ParseBool; numbers like ParseFloat/ParseInt.
import assert from "node:assert/strict";
import { test } from "node:test";
import { findSecret, keysOf, renderAll, id } from "./lib/common.js";

const GO_BOOL = /^(1|t|T|TRUE|true|True|0|f|F|FALSE|false|False)$/;
const GO_FLOAT = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const GO_INT = /^[+-]?\d+$/;
// k8s.io/apimachinery resource.Quantity: a decimal with an optional binary
// (Ki..Ei), decimal (n, u, m, k, M..E) or exponent suffix.
const QUANTITY = /^[+-]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;

/** Per trigger type: the metadata keys KEDA 2.13 reads, and a check. */
const TRIGGERS = {
  rabbitmq: {
    keys: ["host", "hostFromEnv", "protocol", "timeout", "unsafeSsl", "queueName", "vhostName", "useRegex",
      "excludeUnacknowledged", "pageSize", "operation", "queueLength", "mode", "value", "activationValue"],
    check(m, t, auth) {
      const out = [];
      const protocol = m.protocol ?? "auto";
      if (!["amqp", "http", "auto"].includes(protocol)) out.push(`protocol ${protocol} is not amqp, http or auto`);
      for (const k of ["useRegex", "excludeUnacknowledged", "unsafeSsl"])
        if (m[k] !== undefined && !GO_BOOL.test(m[k])) out.push(`${k} ${m[k]} is not a boolean`);
      for (const k of ["useRegex", "excludeUnacknowledged"])
        if (/^(1|t|T|TRUE|true|True)$/.test(m[k] ?? "") && protocol !== "http") out.push(`${k} needs protocol http`);
      if (m.operation !== undefined && !["sum", "avg", "max"].includes(m.operation))
        out.push(`operation ${m.operation} is not sum, avg or max`);
      if (!m.queueName) out.push("queueName is missing");
      if (!["QueueLength", "MessageRate"].includes(m.mode)) out.push(`mode ${m.mode} is not QueueLength or MessageRate`);
      if (m.mode === "MessageRate" && protocol !== "http") out.push("mode MessageRate needs protocol http");
      for (const k of ["value", "activationValue"])
        if (m[k] !== undefined && !GO_FLOAT.test(m[k])) out.push(`${k} ${m[k]} is not a number`);
      if (m.value === undefined) out.push("value is missing (with mode)");
      if (m.pageSize !== undefined && !(GO_INT.test(m.pageSize) && Number(m.pageSize) >= 1))
        out.push(`pageSize ${m.pageSize} is not a positive integer`);
      if (/^(1|t|T|TRUE|true|True)$/.test(m.useRegex ?? ""))
        try {
          new RegExp(m.queueName);
        } catch (e) {
          out.push(`queueName is not a regular expression: ${e.message}`);
        }
      const hostParam = auth?.parameters.has("host");
      if (!hostParam && !m.host && !m.hostFromEnv) out.push("no host: neither the TriggerAuthentication's host parameter nor metadata host/hostFromEnv");
      return out;
    },
  },
  prometheus: {
    keys: ["serverAddress", "query", "queryParameters", "threshold", "activationThreshold", "namespace",
      "cortexOrgID", "customHeaders", "ignoreNullValues", "unsafeSsl"],
    check(m) {
      const out = [];
      for (const k of ["serverAddress", "query", "threshold"]) if (!m[k]) out.push(`${k} is missing`);
      for (const k of ["threshold", "activationThreshold"])
        if (m[k] !== undefined && !GO_FLOAT.test(m[k])) out.push(`${k} ${m[k]} is not a number`);
      for (const k of ["ignoreNullValues", "unsafeSsl"])
        if (m[k] !== undefined && !GO_BOOL.test(m[k])) out.push(`${k} ${m[k]} is not a boolean`);
      if (m.serverAddress && !/^https?:\/\//.test(m.serverAddress)) out.push(`serverAddress ${m.serverAddress} is not an http(s) URL`);
      return out;
    },
  },
  cpu: { keys: ["type", "value", "containerName"], check: resourceTrigger("cpu") },
  memory: { keys: ["type", "value", "containerName"], check: resourceTrigger("memory") },
};

function resourceTrigger(resource) {
  return (m, t, _auth, deploy) => {
    const out = [];
    if ((m.type !== undefined) === (t.metricType !== undefined))
      out.push("set exactly one of metricType and metadata.type (deprecated)");
    const type = t.metricType ?? m.type;
    if (type === "Utilization") {
      if (!(GO_INT.test(m.value ?? "") && Math.abs(Number(m.value)) < 2 ** 31)) out.push(`value ${m.value} is not an int32`);
    } else if (type === "AverageValue") {
      if (!m.value) out.push("value is missing");
      else if (!QUANTITY.test(m.value)) out.push(`value ${m.value} is not a Kubernetes quantity`);
    } else out.push(`metric type ${type} is not Utilization or AverageValue`);
    if (t.useCachedMetrics) out.push("useCachedMetrics is not supported for cpu/memory triggers");
    const containers = (deploy?.spec.template.spec.containers ?? []).filter((c) => !m.containerName || c.name === m.containerName);
    if (deploy && containers.length === 0) out.push(`containerName ${m.containerName} names no container of ${id(deploy)}`);
    for (const c of containers)
      if (c.resources?.requests?.[resource] === undefined && c.resources?.limits?.[resource] === undefined)
        out.push(`container ${c.name} has no ${resource} request (KEDA's webhook refuses the ScaledObject)`);
    return out;
  };
}

for (const { rel, objects } of renderAll()) {
  test(`KEDA 2.13 reads every trigger as meant: ${rel}`, () => {
    const problems = [];
    const auths = new Map(
      objects
        .filter((o) => o.kind === "TriggerAuthentication")
        .map((o) => {
          for (const ref of o.spec.secretTargetRef ?? []) {
            // Rendered (dev) or created by operators (k8s/README.md "Apply").
            const secret = findSecret(objects, ref.name);
            if (!secret) problems.push(`${id(o)}: parameter ${ref.parameter} reads Secret ${ref.name}, which is neither rendered nor one operators create`);
            else if (!keysOf(secret).includes(ref.key))
              problems.push(`${id(o)}: parameter ${ref.parameter} reads key ${ref.key}, which Secret ${ref.name} lacks`);
          }
          return [o.metadata.name, { parameters: new Set((o.spec.secretTargetRef ?? []).map((r) => r.parameter)) }];
        }),
    );
    const scaled = objects.filter((o) => o.kind === "ScaledObject");
    assert.ok(scaled.length > 0, `${rel}: no ScaledObject rendered`);
    for (const s of scaled) {
      const deploy = objects.find((o) => o.kind === "Deployment" && o.metadata.name === s.spec.scaleTargetRef?.name);
      const names = new Set();
      (s.spec.triggers ?? []).forEach((t, i) => {
        const where = `${id(s)} spec.triggers[${i}] (${t.type}${t.name ? ` ${t.name}` : ""})`;
        if (t.name) {
          if (names.has(t.name)) problems.push(`${where}: trigger name ${t.name} is used twice`);
          names.add(t.name);
        }
        const rule = TRIGGERS[t.type];
        if (!rule) return problems.push(`${where}: trigger type ${t.type} is not one this deployment knows KEDA's rules for`);
        const m = t.metadata ?? {};
        if (!["cpu", "memory"].includes(t.type) && t.metricType !== undefined && !["AverageValue", "Value"].includes(t.metricType))
          problems.push(`${where}: metricType ${t.metricType} is not AverageValue or Value (KEDA refuses it for ${t.type})`);
        for (const k of Object.keys(m)) if (!rule.keys.includes(k)) problems.push(`${where}: metadata.${k} is not read by KEDA 2.13's ${t.type} scaler`);
        let auth;
        if (t.authenticationRef) {
          auth = auths.get(t.authenticationRef.name);
          if (!auth) problems.push(`${where}: authenticationRef ${t.authenticationRef.name} is not rendered`);
        }
        for (const p of rule.check(m, t, auth, deploy)) problems.push(`${where}: ${p}`);
      });
    }
    assert.deepEqual(problems, [], `${rel}:\n  ${problems.join("\n  ")}`);
  });
}
