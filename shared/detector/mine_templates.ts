/**
 * Template mining alone, as the detector trains it, for evaluating grouping
 * accuracy (`deno task eval`) without training a whole model.
 *
 * @module
 */

import { TRAIN_SIMILARITY } from "./feature_model.ts";
import { createMaskedLine, maskTokens } from "./mask.ts";
import { TemplateMiner } from "./template_miner.ts";

/** What {@linkcode mineTemplates} found. */
export interface MinedTemplates {
  /** Per line, the number of its group (lines with the same final template text). */
  groups: number[];
  /** How many distinct templates. */
  templates: number;
}

/**
 * Mines the templates of lines the way training does and groups the lines
 * by their final template text, as the detector reports it.
 *
 * @example
 * ```ts
 * import { mineTemplates } from "./detector.ts";
 * mineTemplates(["GET /a 200", "GET /b 200"]).templates; // 1
 * ```
 *
 * @param lines the log lines
 * @returns the group of each line and the number of templates
 */
export function mineTemplates(lines: readonly string[]): MinedTemplates {
  const miner = new TemplateMiner({ similarity: TRAIN_SIMILARITY });
  const buf = createMaskedLine();
  const ids = lines.map((l) => {
    maskTokens(l, buf);
    return miner.add(buf.tokens, buf.count, buf.literals);
  });
  const templateOf = miner.finish();
  const byText = new Map<string, number>();
  const groups = ids.map((i) => {
    const text = miner.text(templateOf[i]!);
    let g = byText.get(text);
    if (g === undefined) byText.set(text, g = byText.size);
    return g;
  });
  return { groups, templates: byText.size };
}
