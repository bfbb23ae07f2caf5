/**
 * Template mining in the manner of Drain (He et al., ICWS 2017): masked lines
 * are routed through a fixed-depth tree (token count, then the first two
 * tokens) to a few candidate templates; a line joins the most similar one if
 * the similarity reaches a threshold, and the positions where they differ
 * become wildcards.
 *
 * Two refinements from the log parsing literature sit on top:
 *
 * - **Enumerations stay constant.** A position Drain turned into a wildcard
 *   but that only ever held a few distinct words (`VM Started` / `Paused` /
 *   `Stopped`, `client SPP.` / `client WindowsUpdateAgent.`, `HTTPS` /
 *   `SOCKS5`) is an event type, not a parameter: the lines are split by those
 *   words, as Brain (Yu et al., 2023) and IPLoM (Makanju et al., 2009) split
 *   groups on low-cardinality columns. A position that sees a masked value or
 *   more than `maxEnumValues` words is a parameter. So is a position whose
 *   words would split a template into more than `maxGroups` groups: the
 *   enumerated position with the most distinct words closes first (on a tie,
 *   the leftmost), until the line's group exists or there is room for it.
 *   Many independent on/off flags thus give at most `maxGroups` templates, not
 *   one per combination. This is tracked online
 *   while training (the line groups of a template merge as soon as a position
 *   proves variable), and {@linkcode TemplateMiner.finish} turns the groups
 *   into templates.
 * - **Runs of wildcards read as one.** A template's text writes consecutive
 *   wildcards as one (the Loghub-2.0 / LILAC post-processing), so `0 bytes
 *   sent` and `1190 bytes (1.16 KB) sent`, mined in different length leaves,
 *   get the same text and the same id.
 *
 * Template ids are a content hash of the template text.
 *
 * @module
 */

import { contentHash64 } from "./hash.ts";
import { templateText, WILDCARD } from "./mask.ts";

const _MATCH_CACHE = 32768;
const _NO_LITERALS: readonly string[] = [];

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
  /**
   * A generalised position that held at most this many distinct words stays
   * a constant and splits the template (0 turns this off).
   * @default {3}
   */
  maxEnumValues?: number;
  /**
   * Groups (templates after {@linkcode TemplateMiner.finish}) one mined
   * template may split into by its enumerated positions; past this, the
   * enumerated position with the most distinct words becomes a parameter.
   * @default {8}
   */
  maxGroups?: number;
  /**
   * Templates one tree leaf may hold while training. A line that matches
   * none of a full leaf's templates joins the most similar one instead of
   * starting another (counted in {@linkcode TemplateMiner.merged}), so a
   * line costs at most this many comparisons and training stays linear.
   * @default {100}
   */
  maxLeafTemplates?: number;
  /**
   * Templates the miner may hold while training. Past it, a line that would
   * start a template in a leaf of its own joins the most similar template
   * of an overflow leaf per token count (counted in
   * {@linkcode TemplateMiner.merged}).
   * @default {20000}
   */
  maxTemplates?: number;
}

/**
 * Drain-style online template miner.
 *
 * @example
 * ```ts
 * import { maskTokens } from "./mask.ts";
 * const miner = new TemplateMiner({ similarity: 0.5 });
 * const ids = ["vm 1 Started", "vm 2 Paused", "vm 3 Started"].map((line) => {
 *   const m = maskTokens(line);
 *   return miner.add(m.tokens, m.count, m.literals);
 * });
 * const index = miner.finish();
 * miner.text(index[ids[0]!]!); // "vm <*> Started"
 * miner.text(index[ids[1]!]!); // "vm <*> Paused"
 * ```
 */
export class TemplateMiner {
  #templates: Template[] = [];
  #root = new Map<number, Map<string, Map<string, number[]>>>();
  #leaves = new Map<string, number[]>();
  #similarity: number;
  #maxChildren: number;
  #maxEnum: number;
  #maxGroups: number;
  #maxLeaf: number;
  #maxTemplates: number;
  #merged = 0;
  #ids: string[] = [];
  // The match cache's key prefix for the last similarity asked (no number
  // to string conversion per line).
  #keySimilarity = NaN;
  #keyPrefix = "";
  #matchCache = new Map<string, number>();
  #texts: string[] = [];
  // Per template: what each generalised position held. No entry: the
  // position is still a constant; null: a parameter; else its distinct words.
  // Undefined for a settled template (restored or finished, not yet joined):
  // every wildcard is a parameter and its lines form one group.
  #columns: (Map<number, string[] | null> | undefined)[] = [];
  // Line groups: the words a group's lines hold at enumerated positions.
  #groups: _Group[] = [];
  // Per template: its live groups by key (undefined while settled).
  #groupsOf: (Map<string, number> | undefined)[] = [];

  /**
   * Make an empty miner.
   *
   * @param options Similarity threshold, tree fan-out and enumeration limits.
   * @throws {RangeError} If similarity is not in (0, 1], maxChildren < 1,
   * maxEnumValues is not an integer >= 0 or maxGroups is not an integer >= 1.
   */
  constructor(options: TemplateMinerOptions = {}) {
    const similarity = options.similarity ?? 0.5;
    const maxChildren = options.maxChildren ?? 100;
    const maxEnum = options.maxEnumValues ?? 3;
    const maxGroups = options.maxGroups ?? 8;
    const maxLeaf = options.maxLeafTemplates ?? 100;
    const maxTemplates = options.maxTemplates ?? 20_000;
    if (!(similarity > 0 && similarity <= 1)) {
      throw new RangeError(`Cannot use similarity ${similarity}: expected a number in (0, 1]`);
    }
    if (!Number.isInteger(maxChildren) || maxChildren < 1) {
      throw new RangeError(`Cannot use maxChildren ${maxChildren}: expected an integer >= 1`);
    }
    if (!Number.isInteger(maxEnum) || maxEnum < 0) {
      throw new RangeError(`Cannot use maxEnumValues ${maxEnum}: expected an integer >= 0`);
    }
    if (!Number.isInteger(maxGroups) || maxGroups < 1) {
      throw new RangeError(`Cannot use maxGroups ${maxGroups}: expected an integer >= 1`);
    }
    for (const [name, v] of [["maxLeafTemplates", maxLeaf], ["maxTemplates", maxTemplates]]) {
      if (!Number.isInteger(v) || (v as number) < 1) {
        throw new RangeError(`Cannot use ${name} ${v}: expected an integer >= 1`);
      }
    }
    this.#maxLeaf = maxLeaf;
    this.#maxTemplates = maxTemplates;
    this.#similarity = similarity;
    this.#maxChildren = maxChildren;
    this.#maxEnum = maxEnum;
    this.#maxGroups = maxGroups;
  }

  /**
   * All templates, in the order they were created. While training (between
   * {@linkcode TemplateMiner.add} and {@linkcode TemplateMiner.finish}) these
   * are the Drain templates before enumerated positions split them.
   */
  get templates(): readonly Template[] {
    return this.#templates;
  }

  /**
   * Lines that joined their most similar template although it was below the
   * similarity threshold, because a leaf or the miner was full
   * (`maxLeafTemplates`, `maxTemplates`). Nothing is dropped: each such
   * line widens an existing template instead of adding one.
   */
  get merged(): number {
    return this.#merged;
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
   * @param literals Per token, the text of a masked name (`eth0`), else empty
   * (`MaskedLine.literals`).
   * @default {literals} none
   * @returns The id of the line's group; {@linkcode TemplateMiner.finish}
   * maps it to a template index.
   */
  add(
    tokens: readonly string[],
    count: number,
    literals: readonly string[] = _NO_LITERALS,
  ): number {
    if (this.#matchCache.size > 0) this.#matchCache.clear();
    let leaf = this.#leaf(tokens, count, true)!;
    let best = this.#best(leaf, tokens, count, literals, this.#similarity);
    if (
      best < 0 &&
      (leaf.list.length >= this.#maxLeaf || this.#templates.length >= this.#maxTemplates)
    ) {
      // Full: join the most similar template rather than add one.
      if (leaf.list.length === 0) leaf = this.#leaf(_OVERFLOW, count, true)!;
      best = this.#best(leaf, tokens, count, literals, 0);
      if (best >= 0) this.#merged++;
    }
    if (best < 0) {
      const index = this.#templates.length;
      const columns = new Map<number, string[] | null>();
      for (let i = 0; i < count; i++) {
        if (tokens[i] !== WILDCARD) continue;
        const word = _word(tokens[i]!, literals[i]);
        columns.set(i, word === "" || this.#maxEnum === 0 ? null : [word]);
      }
      this.#push({ tokens: tokens.slice(0, count), count: 1, leaf: leaf.key }, columns);
      leaf.list.push(index);
      return this.#groupOf(index, tokens, count, literals);
    }
    const t = this.#templates[best]!;
    const tt = t.tokens;
    const columns = this.#columns[best] ?? this.#unsettle(best);
    let opened: number[] | undefined;
    let closed: number[] | undefined;
    for (let i = 0; i < count; i++) {
      const a = tt[i]!;
      const b = tokens[i]!;
      if (a === WILDCARD) {
        const seen = columns.get(i);
        if (!seen) continue;
        const word = _word(b, literals[i]);
        if (word === "") {
          columns.set(i, null);
          (closed ??= []).push(i);
        } else if (!seen.includes(word)) {
          seen.push(word);
          if (seen.length > this.#maxEnum) {
            columns.set(i, null);
            (closed ??= []).push(i);
          }
        }
      } else if (a !== b && !(b === WILDCARD && literals[i] === a)) {
        tt[i] = WILDCARD;
        const word = _word(b, literals[i]);
        if (word === "" || this.#maxEnum < 2) columns.set(i, null);
        else {
          // Every line so far held `a` here.
          columns.set(i, [a, word]);
          (opened ??= []).push(i);
          for (const g of this.#groupsOf[best]!.values()) this.#groups[g]!.words.set(i, a);
        }
      }
    }
    if (opened !== undefined || closed !== undefined) this.#rekey(best, closed);
    t.count++;
    this.#ids[best] = "";
    this.#texts[best] = "";
    return this.#groupOf(best, tokens, count, literals);
  }

  /**
   * End training: split every template by the words its lines held at
   * enumerated positions, and map the ids {@linkcode TemplateMiner.add}
   * returned to the resulting template indexes. Adding may go on afterwards;
   * the templates then keep their indexes (a later split appends).
   *
   * @returns Template index per id returned by `add` since the last
   * `finish()` (or since the miner was made or restored).
   */
  finish(): Int32Array {
    const groups = this.#groups;
    const nT = this.#templates.length;
    const index = new Int32Array(groups.length);
    const roots: number[][] = [];
    for (let t = 0; t < nT; t++) roots.push([]);
    for (let g = 0; g < groups.length; g++) {
      if (groups[g]!.parent === g) roots[groups[g]!.template]!.push(g);
    }
    // A template keeps its index with its first group; further groups append.
    const templates: Template[] = [];
    const splits: number[][] = [];
    for (let t = 0; t < nT; t++) {
      const first = roots[t]![0];
      splits.push([t]);
      if (first === undefined) templates.push(this.#templates[t]!);
      else {
        index[first] = t;
        templates.push(this.#split(t, first));
      }
    }
    for (let t = 0; t < nT; t++) {
      for (let k = 1; k < roots[t]!.length; k++) {
        const g = roots[t]![k]!;
        index[g] = templates.length;
        splits[t]!.push(templates.length);
        templates.push(this.#split(t, g));
      }
    }
    for (let g = 0; g < groups.length; g++) index[g] = index[this.#find(g)]!;
    // Leaf lists in index order, as restore() builds them, so that a trained
    // and a loaded miner break similarity ties alike. (A loop, not
    // push(...): a spread of many indexes overflows the stack.)
    for (const list of this.#leaves.values()) {
      const old = list.splice(0);
      for (const t of old) for (const s of splits[t]!) list.push(s);
      list.sort((x, y) => x - y);
    }
    this.#templates = [];
    this.#columns = [];
    this.#ids = [];
    this.#texts = [];
    this.#groups = [];
    this.#groupsOf = [];
    this.#matchCache.clear();
    for (const t of templates) this.#push(t, undefined);
    return index;
  }

  /**
   * Find the template a line belongs to without changing anything.
   *
   * @param tokens Masked tokens.
   * @param count Number of tokens.
   * @param similarity Threshold for this lookup.
   * @param literals Per token, the text of a masked name, else empty.
   * @default {similarity} the miner's own threshold
   * @default {literals} none
   * @returns The template index, or -1 when no template is similar enough.
   */
  match(
    tokens: readonly string[],
    count: number,
    similarity: number = this.#similarity,
    literals: readonly string[] = _NO_LITERALS,
  ): number {
    // Lines repeat: remember the answer per exact masked line (bounded).
    if (similarity !== this.#keySimilarity) {
      this.#keySimilarity = similarity;
      this.#keyPrefix = similarity + "\u0001";
    }
    let key = this.#keyPrefix;
    for (let i = 0; i < count; i++) {
      const lit = literals[i];
      key += (lit ? lit : tokens[i]!) + "\u0001";
    }
    const hit = this.#matchCache.get(key);
    if (hit !== undefined) return hit;
    const leaf = this.#leaf(tokens, count, false);
    const found = leaf === undefined ? -1 : this.#best(leaf, tokens, count, literals, similarity);
    if (this.#matchCache.size >= _MATCH_CACHE) this.#matchCache.clear();
    this.#matchCache.set(key, found);
    return found;
  }

  /**
   * The text of a template: its tokens joined by spaces, a run of wildcards
   * written as one ({@linkcode templateText}).
   *
   * @param index A template index.
   * @returns The template text.
   */
  text(index: number): string {
    let s = this.#texts[index];
    if (!s) {
      s = templateText(this.#templates[index]!.tokens);
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
    this.#push(template, undefined);
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

  #push(template: Template, columns: Map<number, string[] | null> | undefined): void {
    this.#templates.push(template);
    this.#columns.push(columns);
    this.#groupsOf.push(columns === undefined ? undefined : new Map());
    this.#ids.push("");
    this.#texts.push("");
  }

  // A settled template is joined: its wildcards are parameters and the lines
  // it holds so far form one group.
  #unsettle(t: number): Map<number, string[] | null> {
    const columns = new Map<number, string[] | null>();
    const tokens = this.#templates[t]!.tokens;
    for (let i = 0; i < tokens.length; i++) if (tokens[i] === WILDCARD) columns.set(i, null);
    const g = this.#groups.length;
    const count = this.#templates[t]!.count;
    this.#groups.push({ template: t, parent: g, count, words: new Map(), key: "" });
    this.#columns[t] = columns;
    this.#groupsOf[t] = new Map([["", g]]);
    return columns;
  }

  // Template `t` with the words of group `g` at its enumerated positions.
  #split(t: number, g: number): Template {
    const template = this.#templates[t]!;
    const group = this.#groups[g]!;
    const tokens = template.tokens.slice();
    for (const [i, seen] of this.#columns[t]!) {
      const word = group.words.get(i);
      // One word seen is no evidence of an enumeration: the mask stands.
      if (seen && seen.length > 1 && word !== undefined) tokens[i] = word;
    }
    return { tokens, count: group.count, leaf: template.leaf };
  }

  // The group of a line that joined template `t`: keyed by its words at the
  // template's enumerated positions. A new group beyond `maxGroups` first
  // closes enumerated positions (most distinct words first) until the line's
  // group exists or there is room.
  #groupOf(
    t: number,
    tokens: readonly string[],
    count: number,
    literals: readonly string[],
  ): number {
    const columns = this.#columns[t]!;
    const byKey = this.#groupsOf[t]!;
    let key = _key(columns, tokens, count, literals);
    let g = byKey.get(key);
    while (g === undefined && byKey.size >= this.#maxGroups && this.#closeWidest(t)) {
      key = _key(columns, tokens, count, literals);
      g = byKey.get(key);
    }
    if (g === undefined) {
      g = this.#groups.length;
      const words = new Map<number, string>();
      for (let i = 0; i < count; i++) {
        if (columns.get(i)) words.set(i, _word(tokens[i]!, literals[i]));
      }
      this.#groups.push({ template: t, parent: g, count: 0, words, key });
      byKey.set(key, g);
    }
    this.#groups[g]!.count++;
    return g;
  }

  // Make the enumerated position of template `t` with the most distinct words
  // (the leftmost on a tie) a parameter and merge the groups it separated.
  // Returns false when no position is enumerated.
  #closeWidest(t: number): boolean {
    const columns = this.#columns[t]!;
    let widest = -1;
    let most = 0;
    for (const [i, seen] of columns) {
      if (seen && (seen.length > most || (seen.length === most && i < widest))) {
        widest = i;
        most = seen.length;
      }
    }
    if (widest < 0) return false;
    columns.set(widest, null);
    this.#rekey(t, [widest]);
    return true;
  }

  // Rebuild the group keys of template `t` after positions opened or closed;
  // groups that now differ only at closed positions merge.
  #rekey(t: number, closed: number[] | undefined): void {
    const columns = this.#columns[t]!;
    const byKey = this.#groupsOf[t]!;
    const live = [...byKey.values()];
    byKey.clear();
    for (const g of live) {
      const group = this.#groups[g]!;
      if (closed !== undefined) { for (const i of closed) group.words.delete(i); }
      const positions = [...group.words.keys()].sort((x, y) => x - y);
      let key = "";
      for (const i of positions) {
        if (columns.get(i)) key += i + "\u0001" + group.words.get(i)! + "\u0002";
      }
      group.key = key;
      const other = byKey.get(key);
      if (other === undefined) byKey.set(key, g);
      else {
        group.parent = other;
        this.#groups[other]!.count += group.count;
      }
    }
  }

  #find(g: number): number {
    const groups = this.#groups;
    let r = g;
    while (groups[r]!.parent !== r) r = groups[r]!.parent;
    while (groups[g]!.parent !== r) {
      const next = groups[g]!.parent;
      groups[g]!.parent = r;
      g = next;
    }
    return r;
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
    literals: readonly string[],
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
        } else if (a === b || (b === WILDCARD && literals[i] === a)) same++;
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

interface _Group {
  template: number;
  parent: number;
  count: number;
  words: Map<number, string>;
  key: string;
}

// A line's group key: its words at the enumerated positions of `columns`.
// Routing tokens of the overflow leaf of a token count (see maxTemplates).
const _OVERFLOW: readonly string[] = [WILDCARD, WILDCARD];

function _key(
  columns: Map<number, string[] | null>,
  tokens: readonly string[],
  count: number,
  literals: readonly string[],
): string {
  let key = "";
  for (let i = 0; i < count; i++) {
    if (columns.get(i)) key += i + "\u0001" + _word(tokens[i]!, literals[i]) + "\u0002";
  }
  return key;
}

// The word a line holds at a position, or "" when it holds a value: a masked
// token, or a dotted or slashed name (a file, class, package or host name
// identifies an instance, not an event type).
function _word(token: string, literal: string | undefined): string {
  if (token === WILDCARD) return literal ?? "";
  if (token.includes(WILDCARD)) return "";
  for (let k = 1; k < token.length - 1; k++) {
    const c = token.charCodeAt(k);
    if (
      (c === 46 || c === 47) && _isAlnum(token.charCodeAt(k - 1)) &&
      (_isAlnum(token.charCodeAt(k + 1)) || token.charCodeAt(k + 1) === 95)
    ) return "";
  }
  return token;
}

function _isAlnum(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
}
