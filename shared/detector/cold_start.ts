/**
 * What the detector can tell about a line without a model: its template (the
 * masked tokens), the template's stable id (the same id a trained model gives
 * that template) and the strongest severity word in it. Score uses it while a
 * container is still learning.
 *
 * @module
 */

import { contentHash64 } from "./hash.ts";
import { createMaskedLine, maskTokens, templateText } from "./mask.ts";
import { severityOf } from "./severity.ts";

/** A line seen without a model, as {@linkcode coldStartLine} returns it. */
export interface ColdStartLine {
  /** The line's template: its tokens with variable parts masked. */
  template: string;
  /** The template's stable id (16 hex digits). */
  templateId: string;
  /** Weight of the strongest severity word in [0, 1]; 0 when there is none. */
  severity: number;
  /** That word ("" when there is none). */
  token: string;
}

const _masked = createMaskedLine();

/**
 * Masks a line and finds its strongest severity word, without a model.
 *
 * @example
 * ```ts
 * import { coldStartLine } from "./detector.ts";
 * coldStartLine("panic: runtime error").severity; // >= 0.8
 * ```
 *
 * @param line the log line
 * @returns its template, template id, severity weight and severity word
 */
export function coldStartLine(line: string): ColdStartLine {
  maskTokens(line, _masked);
  let severity = 0;
  let token = "";
  for (let i = 0; i < _masked.count; i++) {
    const t = _masked.tokens[i]!;
    const w = severityOf(t);
    if (w > severity) {
      severity = w;
      token = t;
    }
  }
  const template = templateText(_masked.tokens, _masked.count);
  return { template, templateId: contentHash64(template), severity, token };
}
