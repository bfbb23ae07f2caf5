/**
 * JSON-structured log lines (one object per line, as most structured loggers
 * write them) turned into text the template miner can use: the level first,
 * then the message, then `key=value` per other field. Time fields are dropped.
 *
 * @module
 */

const _LEVEL_KEYS = ["level", "lvl", "severity", "loglevel", "log.level", "levelname", "@l"];
const _MESSAGE_KEYS = ["msg", "message", "text", "log", "event", "@m", "@mt"];
const _TIME_KEYS = new Set([
  "time",
  "ts",
  "timestamp",
  "@timestamp",
  "t",
  "date",
  "datetime",
  "@t",
]);

/**
 * Flatten a JSON object line into `level message key=value ...`.
 *
 * @param line A log line.
 * @returns The flattened text, or undefined when the line is not a JSON object.
 */
export function flattenJsonLine(line: string): string | undefined {
  let s = 0;
  let e = line.length;
  while (s < e && line.charCodeAt(s) <= 32) s++;
  while (e > s && line.charCodeAt(e - 1) <= 32) e--;
  if (e - s < 2 || line.charCodeAt(s) !== 123 || line.charCodeAt(e - 1) !== 125) return undefined;
  if (e - s > 65536) return undefined;
  let obj: unknown;
  try {
    obj = JSON.parse(line.substring(s, e));
  } catch {
    return undefined;
  }
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) return undefined;
  const record = obj as Record<string, unknown>;
  const parts: string[] = [];
  const used = new Set<string>();
  for (const k of _LEVEL_KEYS) {
    const v = record[k];
    if (typeof v === "string" || typeof v === "number") {
      parts.push(String(v).toUpperCase());
      used.add(k);
      break;
    }
  }
  for (const k of _MESSAGE_KEYS) {
    const v = record[k];
    if (typeof v === "string") {
      parts.push(v);
      used.add(k);
      break;
    }
  }
  let fields = 0;
  for (const k in record) {
    if (used.has(k) || _TIME_KEYS.has(k)) continue;
    if (++fields > 64) break;
    const v = record[k];
    let text: string;
    if (typeof v === "string") {
      text = v.length > 0 && v.length <= 64 && !/\s/.test(v) ? v : `"${v.length > 64 ? "" : v}"`;
    } else if (typeof v === "number" || typeof v === "boolean" || v === null) {
      text = String(v);
    } else text = '"{}"';
    parts.push(`${k.replace(/[\s=]/g, "_")}=${text}`);
  }
  return parts.join(" ");
}
