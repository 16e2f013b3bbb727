// KEDA rules (CONTRACT.md section 8): one ScaledObject per worker
// Deployment and no HorizontalPodAutoscaler; idleReplicaCount absent or below
// minReplicaCount; HPA behaviour only under
// spec.advanced.horizontalPodAutoscalerConfig.behavior; rabbitmq triggers over
// the management API; terminationGracePeriodSeconds above
// WORKER_SHUTDOWN_TIMEOUT. Also:
//
// - names: the ScaledObject of Deployment X is X-scaler and sets no HPA name,
//   so KEDA names its HPA keda-hpa-X-scaler (controllers/keda/hpa.go
//   getHPAName), as k8s/README.md's commands expect;
// - fallback: every ScaledObject has one (failureThreshold >= 1, replicas
//   within min..max), and every trigger it can cover has an AverageValue
//   target (KEDA 2.13 pkg/fallback/fallback.go isFallbackEnabled skips the
//   others);
// - cpu triggers: one busy pod asks for at most 2 replicas. A busy candle
//   worker runs CANDLE_NUM_THREADS threads (from limits.cpu), so it uses
//   about its CPU limit; the HPA asks for ceil(usage / target) replicas
//   (target = AverageValue, or the request x Utilization %).
import assert from "node:assert/strict";
import { test } from "node:test";
import { WORKERS, renderAll, id, envValue, quantity } from "./lib/common.js";

const SPEC_KEYS = new Set([
  "scaleTargetRef", "pollingInterval", "cooldownPeriod", "initialCooldownPeriod", "idleReplicaCount",
  "minReplicaCount", "maxReplicaCount", "fallback", "advanced", "triggers",
]);
const ADVANCED_KEYS = new Set(["restoreToOriginalReplicaCount", "horizontalPodAutoscalerConfig", "scalingModifiers"]);
const HPA_CONFIG_KEYS = new Set(["name", "behavior"]);

/** CPU cores one busy pod of `deploy` uses: its limit, or its threads if fewer. */
function busyPodCpu(deploy) {
  const c = deploy.spec.template.spec.containers[0];
  const limit = quantity(c.resources?.limits?.cpu ?? c.resources?.requests?.cpu);
  const threads = (c.env ?? []).find((e) => e.name === "CANDLE_NUM_THREADS");
  if (threads?.value !== undefined) return Math.min(limit, Number(threads.value));
  return limit; // from resourceFieldRef limits.cpu (rounded up), or whisper's cgroup quota
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
      const target = spec.scaleTargetRef?.name;
      if (s.metadata.name !== `${target}-scaler`)
        problems.push(`${id(s)}: named ${s.metadata.name}; the ScaledObject of Deployment ${target} is ${target}-scaler (k8s/README.md)`);
      if (spec.advanced?.horizontalPodAutoscalerConfig?.name !== undefined)
        problems.push(`${id(s)}: spec.advanced.horizontalPodAutoscalerConfig.name renames KEDA's HPA; k8s/README.md expects keda-hpa-${s.metadata.name}`);

      const fb = spec.fallback;
      if (!fb) problems.push(`${id(s)}: spec.fallback is missing: a failing trigger source would leave the scale to chance`);
      else {
        if (!(Number.isInteger(fb.failureThreshold) && fb.failureThreshold >= 1))
          problems.push(`${id(s)}: spec.fallback.failureThreshold ${fb.failureThreshold} must be an integer >= 1`);
        if (!(Number.isInteger(fb.replicas) && fb.replicas >= min && fb.replicas <= spec.maxReplicaCount))
          problems.push(`${id(s)}: spec.fallback.replicas ${fb.replicas} must lie within minReplicaCount..maxReplicaCount (${min}..${spec.maxReplicaCount})`);
        const external = (spec.triggers ?? []).filter((t) => !["cpu", "memory"].includes(t.type));
        if (external.length === 0) problems.push(`${id(s)}: spec.fallback covers no trigger (cpu/memory triggers never fall back)`);
        external.forEach((t) => {
          if ((t.metricType ?? "AverageValue") !== "AverageValue")
            problems.push(`${id(s)}: trigger ${t.name ?? t.type} has metricType ${t.metricType}; KEDA applies fallback only to AverageValue`);
        });
      }

      const deploy = objects.find((o) => o.kind === "Deployment" && o.metadata.name === target);
      (spec.triggers ?? []).filter((t) => t.type === "cpu").forEach((t) => {
        if (!deploy) return;
        const c = deploy.spec.template.spec.containers[0];
        const type = t.metricType ?? t.metadata?.type;
        const perReplica = type === "Utilization"
          ? quantity(c.resources?.requests?.cpu) * Number(t.metadata.value) / 100
          : quantity(t.metadata.value);
        const usage = busyPodCpu(deploy);
        const asked = Math.ceil(usage / perReplica - 1e-9);
        if (asked > 2)
          problems.push(`${id(s)}: cpu trigger ${t.name ?? ""} targets ${perReplica} cores a replica; one busy pod (${usage} cores: limits.cpu ${c.resources?.limits?.cpu}) asks for ${asked} replicas, at most 2 wanted`);
      });

      const worker = WORKERS[target];
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
