// KEDA rules (CONTRACT.md section 8): one ScaledObject per worker
// Deployment and no HorizontalPodAutoscaler; idleReplicaCount absent or below
// minReplicaCount; HPA behaviour only under
// spec.advanced.horizontalPodAutoscalerConfig.behavior; rabbitmq triggers over
// the management API; terminationGracePeriodSeconds above
// WORKER_SHUTDOWN_TIMEOUT.
import assert from "node:assert/strict";
import { test } from "node:test";
import { WORKERS, renderAll, id } from "./lib/common.js";

const SPEC_KEYS = new Set([
  "scaleTargetRef", "pollingInterval", "cooldownPeriod", "initialCooldownPeriod", "idleReplicaCount",
  "minReplicaCount", "maxReplicaCount", "fallback", "advanced", "triggers",
]);
const ADVANCED_KEYS = new Set(["restoreToOriginalReplicaCount", "horizontalPodAutoscalerConfig", "scalingModifiers"]);
const HPA_CONFIG_KEYS = new Set(["name", "behavior"]);

function envValue(objects, deploy, name) {
  const c = deploy.spec.template.spec.containers[0];
  const direct = (c.env ?? []).find((e) => e.name === name);
  if (direct) return direct.value;
  let value;
  for (const src of c.envFrom ?? []) {
    const ref = src.configMapRef ?? src.secretRef;
    const kind = src.configMapRef ? "ConfigMap" : "Secret";
    const obj = objects.find((o) => o.kind === kind && o.metadata.name === ref?.name);
    const v = obj?.data?.[name] ?? obj?.stringData?.[name];
    if (v !== undefined) value = v; // later sources win, as in Kubernetes
  }
  return value;
}

for (const { rel, objects } of renderAll()) {
  test(`KEDA rules: ${rel}`, () => {
    const problems = [];
    for (const o of objects.filter((x) => x.kind === "HorizontalPodAutoscaler"))
      problems.push(`${id(o)}: a HorizontalPodAutoscaler fights KEDA's own HPA; put its settings in the ScaledObject`);
    const scaled = objects.filter((o) => o.kind === "ScaledObject");
    for (const d of objects.filter((o) => o.kind === "Deployment")) {
      const owners = scaled.filter((s) => (s.spec?.scaleTargetRef?.kind ?? "Deployment") === "Deployment" && s.spec?.scaleTargetRef?.name === d.metadata.name);
      if (owners.length !== 1)
        problems.push(`${id(d)}: has ${owners.length} ScaledObjects (${owners.map(id).join(", ") || "none"}), expected exactly one`);
      if (d.spec.replicas !== undefined)
        problems.push(`${id(d)}: spec.replicas is set; leave it to the ScaledObject or every apply resets the scale`);

      const timeout = Number(envValue(objects, d, "WORKER_SHUTDOWN_TIMEOUT"));
      const grace = d.spec.template.spec.terminationGracePeriodSeconds ?? 30;
      if (!Number.isFinite(timeout))
        problems.push(`${id(d)}: WORKER_SHUTDOWN_TIMEOUT is not set in its ConfigMap/env`);
      else if (!(grace > timeout))
        problems.push(`${id(d)}: spec.template.spec.terminationGracePeriodSeconds (${grace}) must exceed WORKER_SHUTDOWN_TIMEOUT (${timeout})`);
    }
    for (const s of scaled) {
      const spec = s.spec ?? {};
      for (const k of Object.keys(spec))
        if (!SPEC_KEYS.has(k))
          problems.push(`${id(s)}: spec.${k} is not a ScaledObject field${k === "behavior" ? " (behavior goes under spec.advanced.horizontalPodAutoscalerConfig.behavior)" : ""}`);
      for (const k of Object.keys(spec.advanced ?? {}))
        if (!ADVANCED_KEYS.has(k)) problems.push(`${id(s)}: spec.advanced.${k} is not a ScaledObject field`);
      for (const k of Object.keys(spec.advanced?.horizontalPodAutoscalerConfig ?? {}))
        if (!HPA_CONFIG_KEYS.has(k)) problems.push(`${id(s)}: spec.advanced.horizontalPodAutoscalerConfig.${k} is not a field`);
      const behavior = spec.advanced?.horizontalPodAutoscalerConfig?.behavior;
      if (!behavior?.scaleDown?.stabilizationWindowSeconds)
        problems.push(`${id(s)}: spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds is missing`);
      const min = spec.minReplicaCount ?? 0;
      if (min < 1) problems.push(`${id(s)}: spec.minReplicaCount must be at least 1 (one warm replica)`);
      if (spec.idleReplicaCount !== undefined && !(spec.idleReplicaCount < min))
        problems.push(`${id(s)}: spec.idleReplicaCount (${spec.idleReplicaCount}) must be below minReplicaCount (${min}) or absent`);
      if (!(spec.maxReplicaCount >= min)) problems.push(`${id(s)}: spec.maxReplicaCount must be >= minReplicaCount`);
      const worker = WORKERS[spec.scaleTargetRef?.name];
      const rabbit = (spec.triggers ?? []).filter((t) => t.type === "rabbitmq");
      if (worker && rabbit.length === 0) problems.push(`${id(s)}: spec.triggers has no rabbitmq trigger`);
      rabbit.forEach((t) => {
        const i = spec.triggers.indexOf(t);
        const m = t.metadata ?? {};
        if (m.protocol !== "http")
          problems.push(`${id(s)}: spec.triggers[${i}].metadata.protocol is ${m.protocol ?? "unset"}; use http (management API counts unacked deliveries)`);
        if (m.excludeUnacknowledged === "true")
          problems.push(`${id(s)}: spec.triggers[${i}].metadata.excludeUnacknowledged must not be true`);
        if (m.mode !== "QueueLength") problems.push(`${id(s)}: spec.triggers[${i}].metadata.mode must be QueueLength`);
        if (!t.authenticationRef?.name && !m.host)
          problems.push(`${id(s)}: spec.triggers[${i}] has neither authenticationRef nor host`);
        if (worker) {
          const covered = m.useRegex === "true"
            ? worker.queues.filter((q) => new RegExp(m.queueName).test(q))
            : worker.queues.filter((q) => q === m.queueName);
          if (covered.length === 0)
            problems.push(`${id(s)}: spec.triggers[${i}].metadata.queueName ${m.queueName} matches none of ${worker.queues.join(", ")}`);
        }
      });
      if (worker) {
        const all = rabbit.flatMap((t) =>
          t.metadata?.useRegex === "true" ? worker.queues.filter((q) => new RegExp(t.metadata.queueName).test(q)) : [t.metadata?.queueName]);
        for (const q of worker.queues)
          if (!all.includes(q)) problems.push(`${id(s)}: queue ${q} is not counted by any rabbitmq trigger`);
      }
    }
    assert.deepEqual(problems, [], `${rel}:\n  ${problems.join("\n  ")}`);
  });
}
