// Security and health policy over every rendered workload: non-root,
// read-only root filesystem, no privilege escalation, all capabilities
// dropped, resource limits, HTTP probes on the contract's paths and ports,
// the media volume at the gateway's path, GPU images, candle's thread count
// from the CPU limit. Also:
//
// - temp space: a worker that downloads media streams each download into its
//   temp dir, so that dir is on disk (an emptyDir without medium: Memory,
//   which would count against the memory limit), its sizeLimit holds
//   WORKER_CONCURRENCY downloads of MEDIA_MAX_BYTES (else the kubelet evicts
//   the pod mid-download, and the redelivered task evicts the next one), and
//   the container requests that much ephemeral-storage so the scheduler
//   places it where the disk exists;
// - ReadWriteMany claims name their storage class (most default classes
//   cannot provision RWX; the claim would stay Pending);
// - NetworkPolicy egress of the workers: every rule names its ports, and none
//   opens RabbitMQ's management or prometheus ports, which only KEDA and
//   Prometheus use;
// - the worker pods carry both `app` and `app.kubernetes.io/name` = the
//   worker.
import assert from "node:assert/strict";
import { test } from "node:test";
import { CANDLE_THREAD_ENV, WORKERS, renderAll, id, containersOf, envValue, helpDefault, quantity, selects } from "./lib/common.js";

// RabbitMQ's management API (15672, TLS 15671) and prometheus plugin (15692).
const RABBITMQ_NON_AMQP_PORTS = new Set([15671, 15672, 15692]);

/** Problems with where `deploy`'s worker streams downloads. */
function tempSpaceProblems(objects, deploy) {
  const p = [];
  const c = deploy.spec.template.spec.containers[0];
  const where = `${id(deploy)} container ${c.name}`;
  const worker = deploy.metadata.name;
  const setting = (name) => envValue(objects, deploy, name) ?? helpDefault(worker, name);
  const maxBytes = Number(setting("MEDIA_MAX_BYTES"));
  const concurrency = Number(setting("WORKER_CONCURRENCY"));
  if (!(maxBytes > 0 && concurrency > 0))
    return [`${where}: cannot tell MEDIA_MAX_BYTES (${maxBytes}) or WORKER_CONCURRENCY (${concurrency})`];
  const dir = envValue(objects, deploy, "MEDIA_TEMP_DIR") ?? envValue(objects, deploy, "TMPDIR") ?? "/tmp";
  const mount = (c.volumeMounts ?? [])
    .filter((m) => dir === m.mountPath || dir.startsWith(m.mountPath.replace(/\/?$/, "/")))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
  if (!mount) return [`${where}: downloads go to ${dir}, on the read-only root filesystem (no volume mounted there)`];
  const vol = deploy.spec.template.spec.volumes.find((v) => v.name === mount.name);
  const emptyDir = vol?.emptyDir;
  if (!emptyDir) return [`${where}: downloads go to ${dir} on volume ${mount.name}, which is not an emptyDir`];
  if (emptyDir.medium === "Memory")
    p.push(`${where}: downloads go to ${dir} on a memory-backed emptyDir (${mount.name}); they would count against the memory limit`);
  const need = maxBytes * concurrency;
  const size = emptyDir.sizeLimit === undefined ? Infinity : quantity(emptyDir.sizeLimit);
  if (size < need)
    p.push(`${where}: volume ${mount.name} (${dir}) has sizeLimit ${emptyDir.sizeLimit}, below WORKER_CONCURRENCY (${concurrency}) x MEDIA_MAX_BYTES (${maxBytes}) = ${need} bytes: a large download gets the pod evicted`);
  const requested = c.resources?.requests?.["ephemeral-storage"];
  if (requested === undefined || quantity(requested) < (Number.isFinite(size) ? size : need))
    p.push(`${where}: resources.requests.ephemeral-storage (${requested ?? "unset"}) must cover the ${mount.name} emptyDir (${emptyDir.sizeLimit ?? need + " bytes"}) so the node has the disk`);
  return p;
}

/** Problems with the NetworkPolicy egress rules that apply to `deploy`'s pods. */
function egressProblems(objects, deploy) {
  const p = [];
  const labels = deploy.spec.template.metadata?.labels ?? {};
  for (const np of objects.filter((o) => o.kind === "NetworkPolicy")) {
    if (!selects(np.spec.podSelector ?? {}, labels)) continue;
    (np.spec.egress ?? []).forEach((rule, i) => {
      const where = `${id(np)} spec.egress[${i}] (applies to ${id(deploy)})`;
      if (!(rule.ports ?? []).length) return p.push(`${where}: allows every port; name the ports the worker uses`);
      for (const port of rule.ports)
        if (RABBITMQ_NON_AMQP_PORTS.has(port.port))
          p.push(`${where}: allows port ${port.port} (RabbitMQ management/prometheus), which the workers never use`);
    });
  }
  return p;
}

const WORKLOAD_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"]);

function containerProblems(o, { c, field, init }) {
  const p = [];
  const podSc = o.spec.template.spec.securityContext ?? {};
  const sc = c.securityContext ?? {};
  const where = `${id(o)} ${field}`;
  const runAsNonRoot = sc.runAsNonRoot ?? podSc.runAsNonRoot;
  const runAsUser = sc.runAsUser ?? podSc.runAsUser;
  if (runAsNonRoot !== true) p.push(`${where}: securityContext.runAsNonRoot must be true`);
  if (runAsUser === undefined || runAsUser === 0) p.push(`${where}: securityContext.runAsUser must be a non-zero uid`);
  if (sc.readOnlyRootFilesystem !== true) p.push(`${where}: securityContext.readOnlyRootFilesystem must be true`);
  if (sc.allowPrivilegeEscalation !== false) p.push(`${where}: securityContext.allowPrivilegeEscalation must be false`);
  if (sc.privileged) p.push(`${where}: securityContext.privileged must not be set`);
  if (!(sc.capabilities?.drop ?? []).includes("ALL")) p.push(`${where}: securityContext.capabilities.drop must include ALL`);
  if ((sc.seccompProfile ?? podSc.seccompProfile)?.type !== "RuntimeDefault")
    p.push(`${where}: seccompProfile.type must be RuntimeDefault`);
  const limits = c.resources?.limits ?? {};
  for (const r of ["cpu", "memory"]) if (limits[r] === undefined) p.push(`${where}: resources.limits.${r} is missing`);
  for (const r of ["cpu", "memory"])
    if (c.resources?.requests?.[r] === undefined) p.push(`${where}: resources.requests.${r} is missing`);
  if (init) return p;

  const worker = o.metadata.name;
  const contract = WORKERS[worker];
  if (!contract) return p;
  if (contract.candle)
    for (const name of CANDLE_THREAD_ENV) {
      const ref = (c.env ?? []).find((e) => e.name === name)?.valueFrom?.resourceFieldRef;
      if (ref?.resource !== "limits.cpu" || (ref.containerName ?? c.name) !== c.name)
        p.push(`${where}: env ${name} must come from resourceFieldRef limits.cpu of this container (candle otherwise runs a thread per node core, throttled by the CPU limit)`);
    }
  const port = (c.ports ?? []).find((x) => x.name === "metrics");
  if (!port) p.push(`${where}: ports has no port named "metrics"`);
  else if (port.containerPort !== contract.port)
    p.push(`${where}: ports[metrics].containerPort is ${port.containerPort}, the contract says ${contract.port}`);
  const probes = { livenessProbe: "/healthz", readinessProbe: "/readyz", startupProbe: "/readyz" };
  for (const [probe, pathWanted] of Object.entries(probes)) {
    const h = c[probe]?.httpGet;
    if (!h) {
      p.push(`${where}: ${probe} must be an httpGet probe on ${pathWanted}`);
      continue;
    }
    if (h.path !== pathWanted) p.push(`${where}: ${probe}.httpGet.path is ${h.path}, expected ${pathWanted}`);
    if (h.port !== "metrics" && h.port !== contract.port)
      p.push(`${where}: ${probe}.httpGet.port is ${h.port}, expected "metrics" (${contract.port})`);
  }
  const mounts = Object.fromEntries((c.volumeMounts ?? []).map((m) => [m.mountPath, m]));
  if (!mounts["/tmp"]) p.push(`${where}: volumeMounts has no writable /tmp (emptyDir)`);
  if (!mounts["/models"]) p.push(`${where}: volumeMounts has no /models`);
  if (worker === "whisper-worker") {
    const media = mounts["/tmp/bookmarkai-videos"];
    const vol = media && o.spec.template.spec.volumes.find((v) => v.name === media.name);
    if (!vol?.persistentVolumeClaim || vol.persistentVolumeClaim.claimName !== "whisper-media")
      p.push(`${where}: the whisper-media PVC must be mounted at /tmp/bookmarkai-videos (the gateway's path)`);
  }
  if (limits["nvidia.com/gpu"] !== undefined && !/-cuda$/.test(c.image ?? ""))
    p.push(`${where}: requests a GPU but image ${c.image} is not a -cuda variant`);
  return p;
}

for (const { rel, objects } of renderAll()) {
  test(`policy: ${rel}`, () => {
    const problems = [];
    for (const o of objects) {
      if (!WORKLOAD_KINDS.has(o.kind)) continue;
      const spec = o.spec?.template?.spec;
      if (spec?.hostNetwork || spec?.hostPID || spec?.hostIPC) problems.push(`${id(o)}: host namespaces must not be used`);
      if (spec?.automountServiceAccountToken !== false)
        problems.push(`${id(o)}: spec.template.spec.automountServiceAccountToken must be false`);
      for (const v of spec?.volumes ?? [])
        if (v.hostPath) problems.push(`${id(o)}: volume ${v.name} is a hostPath`);
      const ann = o.spec?.template?.metadata?.annotations ?? {};
      const contract = WORKERS[o.metadata.name];
      if (contract) {
        if (ann["prometheus.io/scrape"] !== "true" || ann["prometheus.io/port"] !== String(contract.port) || ann["prometheus.io/path"] !== "/metrics")
          problems.push(`${id(o)}: spec.template.metadata.annotations prometheus.io/scrape/port/path must be "true"/"${contract.port}"/"/metrics"`);
        if (!(spec.topologySpreadConstraints ?? []).length)
          problems.push(`${id(o)}: spec.template.spec.topologySpreadConstraints is empty`);
        // `app` for the README's `-l app=<worker>`, and the recommended label
        // the Services, PDBs and selectors use.
        const labels = o.spec.template.metadata?.labels ?? {};
        for (const k of ["app", "app.kubernetes.io/name"])
          if (labels[k] !== o.metadata.name) problems.push(`${id(o)}: spec.template.metadata.labels.${k} must be ${o.metadata.name}`);
      }
      for (const entry of containersOf(o)) problems.push(...containerProblems(o, entry));
      if (o.kind === "Deployment" && contract) {
        if (contract.downloads) problems.push(...tempSpaceProblems(objects, o));
        problems.push(...egressProblems(objects, o));
      }
    }
    for (const pvc of objects.filter((o) => o.kind === "PersistentVolumeClaim"))
      if ((pvc.spec?.accessModes ?? []).includes("ReadWriteMany") && !pvc.spec.storageClassName)
        problems.push(`${id(pvc)}: ReadWriteMany without spec.storageClassName falls to the cluster's default class, which rarely provisions RWX (the claim stays Pending); name the class (k8s/README.md "Media volume")`);
    for (const w of Object.keys(WORKERS)) {
      const svc = objects.find((o) => o.kind === "Service" && o.metadata.name === w);
      const port = svc?.spec?.ports?.find((x) => x.name === "metrics");
      if (!port || port.port !== WORKERS[w].port)
        problems.push(`Service/${w}: spec.ports[metrics].port must be ${WORKERS[w].port}`);
    }
    const pvc = objects.find((o) => o.kind === "PersistentVolumeClaim" && o.metadata.name === "whisper-media");
    if (!pvc?.spec?.accessModes?.includes("ReadWriteMany"))
      problems.push("PersistentVolumeClaim/whisper-media: spec.accessModes must include ReadWriteMany");
    assert.deepEqual(problems, [], `${rel}:\n  ${problems.join("\n  ")}`);
  });
}
