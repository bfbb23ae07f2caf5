/**
 * Severity words: how strongly a token signals trouble, in the manner of
 * CloudWatch's anomaly priority and Elastic's categorisation keywords.
 *
 * @module
 */

const _WORDS: ReadonlyMap<string, number> = new Map<string, number>([
  ...["fatal", "panic", "emerg", "emergency", "critical", "crit", "alert"].map((w) =>
    [w, 1] as [string, number]
  ),
  ...[
    "error",
    "errors",
    "err",
    "exception",
    "fail",
    "fails",
    "failed",
    "failure",
    "failures",
    "failing",
    "fault",
    "segfault",
    "abort",
    "aborted",
    "aborting",
    "traceback",
    "crash",
    "crashed",
    "corrupt",
    "corrupted",
    "oom",
    "killed",
    "unreachable",
    "severe",
  ].map((w) => [w, 0.8] as [string, number]),
  ...[
    "denied",
    "refused",
    "timeout",
    "timed",
    "invalid",
    "unable",
    "cannot",
    "can't",
    "couldn't",
    "unexpected",
    "lost",
    "rejected",
    "violation",
    "unauthorized",
    "forbidden",
    "broken",
    "missing",
    "illegal",
    "overflow",
    "exceeded",
    "dropped",
    "disconnected",
  ].map((w) => [w, 0.6] as [string, number]),
  ...["warn", "warning", "warnings", "deprecated", "retry", "retrying", "not", "no"].map((w) =>
    [w, 0.4] as [string, number]
  ),
]);

/**
 * The severity a token carries, from 0 (none) to 1 (fatal). Case and
 * surrounding punctuation are ignored; identifiers ending in `Exception` or
 * `Error` count as errors.
 *
 * @param token A masked token.
 * @returns A weight in [0, 1].
 */
export function severityOf(token: string): number {
  // Tokens repeat from line to line: remember the answer (bounded).
  const known = _memo.get(token);
  if (known !== undefined) return known;
  const w = _severityOf(token);
  if (_memo.size >= _MEMO_MAX) _memo.clear();
  _memo.set(token, w);
  return w;
}

const _MEMO_MAX = 8192;
const _memo = new Map<string, number>();

function _severityOf(token: string): number {
  let s = 0;
  let e = token.length;
  while (s < e && !_isWordChar(token.charCodeAt(s))) s++;
  while (e > s && !_isWordChar(token.charCodeAt(e - 1))) e--;
  if (e - s < 2 || e - s > 64) return 0;
  const word = token.substring(s, e).toLowerCase();
  const w = _WORDS.get(word);
  if (w !== undefined) return w;
  if (word.endsWith("exception") || word.endsWith("error")) return 0.8;
  return 0;
}

function _isWordChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 39;
}
