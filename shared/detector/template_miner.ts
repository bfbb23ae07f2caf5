/**
 * Template mining in the manner of Drain (He et al., ICWS 2017): masked lines
 * are routed through a fixed-depth tree (token count, then the first two
 * tokens) to a few candidate templates; a line joins the most similar one if
 * the similarity reaches a threshold, and the positions where they differ
 * become wildcards. Template ids are a content hash of the template text.
 *
 * @module
 */

import { contentHash64 } from "./hash.ts";
import { WILDCARD } from "./mask.ts";

const _MATCH_CACHE = 32768;

/** A mined template. */
export interface Template {
  /** Tokens, with `<*>` for variable positions. */
  tokens: string[];
  /** Training lines that joined this template. */
  count: number;
  /** Routing key of the leaf it lives in (token count and prefix tokens). */
  leaf: string;
}

/** Options for {@linkcode TemplateMiner}. */
export interface TemplateMinerOptions {
  /**
   * Share of informative positions that must agree for a line to join a
   * template.
   * @default {0.5}
   */
  similarity?: number;
  /**
   * Children per tree node before new prefix tokens are routed to `<*>`.
   * @default {100}
   */
  maxChildren?: number;
}

/** Drain-style online template miner. */
export class TemplateMiner {
  #templates: Template[] = [];
  #root = new Map<number, Map<string, Map<string, number[]>>>();
  #leaves = new Map<string, number[]>();
  #similarity: number;
  #maxChildren: number;
  #ids: string[] = [];
  #matchCache = new Map<string, number>();
  #texts: string[] = [];

  /**
   * @param options Similarity threshold and tree fan-out.
   * @throws {RangeError} If similarity is not in (0, 1] or maxChildren < 1.
   */
  constructor(options: TemplateMinerOptions = {}) {
    const similarity = options.similarity ?? 0.5;
    const maxChildren = options.maxChildren ?? 100;
    if (!(similarity > 0 && similarity <= 1)) {
      throw new RangeError(`Cannot use similarity ${similarity}: expected a number in (0, 1]`);
    }
    if (!Number.isInteger(maxChildren) || maxChildren < 1) {
      throw new RangeError(`Cannot use maxChildren ${maxChildren}: expected an integer >= 1`);
    }
    this.#similarity = similarity;
    this.#maxChildren = maxChildren;
  }

  /** All templates, in the order they were created. */
  get templates(): readonly Template[] {
    return this.#templates;
  }

  /** The similarity threshold in use. */
  get similarity(): number {
    return this.#similarity;
  }

  /**
   * Add a training line: join the best template or start a new one.
   *
   * @param tokens Masked tokens (only the first `count` are used).
   * @param count Number of tokens.
   * @returns The index of the template the line joined.
   */
  add(tokens: readonly string[], count: number): number {
    if (this.#matchCache.size > 0) this.#matchCache.clear();
    const leaf = this.#leaf(tokens, count, true)!;
    const best = this.#best(leaf, tokens, count, this.#similarity);
    if (best >= 0) {
      const t = this.#templates[best]!;
      const tt = t.tokens;
      for (let i = 0; i < count; i++) {
        if (tt[i] !== tokens[i] && tt[i] !== WILDCARD) tt[i] = WILDCARD;
      }
      t.count++;
      this.#ids[best] = "";
      this.#texts[best] = "";
      return best;
    }
    const index = this.#templates.length;
    this.#templates.push({ tokens: tokens.slice(0, count), count: 1, leaf: leaf.key });
    this.#ids.push("");
    this.#texts.push("");
    leaf.list.push(index);
    return index;
  }

  /**
   * Find the template a line belongs to without changing anything.
   *
   * @param tokens Masked tokens.
   * @param count Number of tokens.
   * @param similarity Threshold for this lookup.
   * @default {similarity} the miner's own threshold
   * @returns The template index, or -1 when no template is similar enough.
   */
  match(tokens: readonly string[], count: number, similarity: number = this.#similarity): number {
    // Lines repeat: remember the answer per exact masked line (bounded).
    let key = similarity + "\u0001";
    for (let i = 0; i < count; i++) key += tokens[i]! + "\u0001";
    const hit = this.#matchCache.get(key);
    if (hit !== undefined) return hit;
    const leaf = this.#leaf(tokens, count, false);
    const found = leaf === undefined ? -1 : this.#best(leaf, tokens, count, similarity);
    if (this.#matchCache.size >= _MATCH_CACHE) this.#matchCache.clear();
    this.#matchCache.set(key, found);
    return found;
  }

  /**
   * The text of a template: its tokens joined by spaces.
   *
   * @param index A template index.
   * @returns The template text.
   */
  text(index: number): string {
    let s = this.#texts[index];
    if (!s) {
      s = this.#templates[index]!.tokens.join(" ");
      this.#texts[index] = s;
    }
    return s;
  }

  /**
   * The stable id of a template: a 64-bit content hash of its text.
   *
   * @param index A template index.
   * @returns 16 hex digits.
   */
  id(index: number): string {
    let s = this.#ids[index];
    if (!s) {
      s = contentHash64(this.text(index));
      this.#ids[index] = s;
    }
    return s;
  }

  /**
   * Restore a template (when loading a model), in its original order.
   *
   * @param template The template with its leaf key.
   * @returns Its index.
   */
  restore(template: Template): number {
    this.#matchCache.clear();
    const index = this.#templates.length;
    this.#templates.push(template);
    this.#ids.push("");
    this.#texts.push("");
    let list = this.#leaves.get(template.leaf);
    if (list === undefined) {
      const parts = template.leaf.split("\u0001");
      const len = Number(parts[0]);
      let n1 = this.#root.get(len);
      if (n1 === undefined) this.#root.set(len, n1 = new Map());
      let n2 = n1.get(parts[1] ?? "");
      if (n2 === undefined) n1.set(parts[1] ?? "", n2 = new Map());
      list = [];
      n2.set(parts[2] ?? "", list);
      this.#leaves.set(template.leaf, list);
    }
    list.push(index);
    return index;
  }

  #leaf(
    tokens: readonly string[],
    count: number,
    create: boolean,
  ): { key: string; list: number[] } | undefined {
    let n1 = this.#root.get(count);
    if (n1 === undefined) {
      if (!create) return undefined;
      n1 = new Map();
      this.#root.set(count, n1);
    }
    const k1 = this.#route(n1, count > 0 ? tokens[0]! : "", create);
    let n2 = n1.get(k1);
    if (n2 === undefined) {
      if (!create) return undefined;
      n2 = new Map();
      n1.set(k1, n2);
    }
    const k2 = this.#route(n2, count > 1 ? tokens[1]! : "", create);
    let list = n2.get(k2);
    const key = count + "\u0001" + k1 + "\u0001" + k2;
    if (list === undefined) {
      if (!create) return undefined;
      list = [];
      n2.set(k2, list);
      this.#leaves.set(key, list);
    }
    return { key, list };
  }

  #route(node: Map<string, unknown>, token: string, create: boolean): string {
    if (token.includes(WILDCARD)) return WILDCARD;
    if (node.has(token)) return token;
    if (!create) return node.has(WILDCARD) && node.size >= this.#maxChildren ? WILDCARD : token;
    return node.size >= this.#maxChildren ? WILDCARD : token;
  }

  #best(
    leaf: { list: number[] },
    tokens: readonly string[],
    count: number,
    similarity: number,
  ): number {
    let best = -1;
    let bestSim = -1;
    let bestParams = -1;
    const list = leaf.list;
    for (let j = 0; j < list.length; j++) {
      const index = list[j]!;
      const tt = this.#templates[index]!.tokens;
      let same = 0;
      let informative = 0;
      let params = 0;
      for (let i = 0; i < count; i++) {
        const a = tt[i]!;
        const b = tokens[i]!;
        if (a === WILDCARD) {
          params++;
          if (b === WILDCARD) continue;
        } else if (a === b) same++;
        informative++;
      }
      const sim = informative === 0 ? 1 : same / informative;
      if (sim > bestSim || (sim === bestSim && params > bestParams)) {
        best = index;
        bestSim = sim;
        bestParams = params;
      }
    }
    return bestSim >= similarity ? best : -1;
  }
}
