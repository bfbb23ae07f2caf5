/**
 * The service key: what one model, one history, one set of thresholds and
 * feedback belong to. Replicas of a service and the tasks that replace one
 * another share it, so a rolling update or a rescheduled task keeps the
 * service's model.
 *
 * In order of precedence:
 * 1. the Swarm service name (label `com.docker.swarm.service.name`), e.g. `shop_web`;
 * 2. the Compose project and service (labels `com.docker.compose.project` and
 *    `com.docker.compose.service`) joined by `_`, e.g. `shop_web`, the way
 *    Swarm names a stack's services, so a Compose file deployed as a stack
 *    keeps its keys;
 * 3. the `tailwise.model` label the user sets;
 * 4. the container name.
 *
 * A label value that is empty, longer than 512 bytes or holds control
 * characters is passed over.
 *
 * @module
 */

/** Swarm's label with the service name of a task's container. */
export const SWARM_SERVICE_LABEL = "com.docker.swarm.service.name";
/** Compose's label with the project name. */
export const COMPOSE_PROJECT_LABEL = "com.docker.compose.project";
/** Compose's label with the service name. */
export const COMPOSE_SERVICE_LABEL = "com.docker.compose.service";
/** The label a user sets to choose the model a container's lines go to. */
export const MODEL_LABEL = "tailwise.model";

/**
 * The service key of a container.
 *
 * @example
 * ```ts
 * serviceKey({ "com.docker.compose.project": "shop", "com.docker.compose.service": "web" }, "shop-web-1");
 * // "shop_web"
 * ```
 *
 * @param labels the container's labels (`Config.Labels`; null or undefined: none)
 * @param containerName the container's name, without the leading slash
 * @returns the Swarm service name, else `<project>_<service>` of Compose, else
 *   the `tailwise.model` label, else the container name
 */
export function serviceKey(
  labels: Readonly<Record<string, string>> | null | undefined,
  containerName: string,
): string {
  const l = labels ?? {};
  const swarm = _label(l, SWARM_SERVICE_LABEL);
  if (swarm) return swarm;
  const project = _label(l, COMPOSE_PROJECT_LABEL);
  const service = _label(l, COMPOSE_SERVICE_LABEL);
  if (project && service) return `${project}_${service}`;
  const chosen = _label(l, MODEL_LABEL);
  if (chosen) return chosen;
  return containerName;
}

/** Longest label value used in a key, in UTF-8 bytes (the registry takes up to 1024). */
const _MAX_KEY_BYTES = 512;

/** A label's value when it can be a key: trimmed, well-formed, no control characters, not too long. */
function _label(labels: Readonly<Record<string, string>>, name: string): string {
  const v = labels[name];
  if (typeof v !== "string") return "";
  const t = v.trim();
  // deno-lint-ignore no-control-regex
  if (!t.isWellFormed() || /[\u0000-\u001f\u007f-\u009f]/.test(t)) return "";
  if (new TextEncoder().encode(t).length > _MAX_KEY_BYTES) return "";
  return t;
}
