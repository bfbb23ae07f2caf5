/**
 * tailwise's isolation forest, after Liu, Ting and Zhou, "Isolation Forest"
 * (ICDM 2008): each tree is grown on a random subsample of ψ rows up to depth
 * ⌈log2 ψ⌉, splitting on a feature picked at random among those that vary in
 * the node, at a uniform point between its min and max. A row's score is
 * 2^(−E(h(x))/c(ψ)), where h adds c(n) for a leaf holding n rows. Input rows
 * are sparse; trees are stored flat in typed arrays.
 *
 * @module
 */

import type { ByteReader, ByteWriter } from "./binary.ts";
import { ModelFormatError } from "./model_format_error.ts";
import { createPrng } from "./prng.ts";

/** Sparse rows in compressed-row form: row r holds `index/value[offsets[r]..offsets[r+1])`. */
export interface SparseRows {
  /** Number of features; every index is below it. */
  dimensions: number;
  /** Row start offsets, length rows + 1. */
  offsets: Int32Array;
  /** Feature index per stored entry. */
  index: Uint16Array;
  /** Value per stored entry. */
  value: Float32Array;
}

/** Options for {@linkcode IsolationForest.fit}. */
export interface IsolationForestOptions {
  /**
   * Number of trees.
   * @default {100}
   */
  trees?: number;
  /**
   * Rows sampled (without replacement) per tree, ψ.
   * @default {256}
   */
  sampleSize?: number;
  /**
   * Seed of the PRNG; the same seed and rows give the same forest.
   * @default {1}
   */
  seed?: number;
}

/**
 * Average path length of an unsuccessful search in a binary search tree of n
 * nodes: c(n) = 2H(n−1) − 2(n−1)/n, with H(i) ≈ ln(i) + γ.
 *
 * @param n Number of rows.
 * @returns c(n); 0 for n ≤ 1.
 */
export function averagePathLength(n: number): number {
  if (n <= 1) return 0;
  if (n === 2) return 1;
  return 2 * (Math.log(n - 1) + 0.5772156649015329) - (2 * (n - 1)) / n;
}

/** A trained isolation forest over sparse rows. */
export class IsolationForest {
  /** Number of features. */
  readonly dimensions: number;
  /** Number of trees. */
  readonly trees: number;
  /** ψ actually used (min of the option and the number of rows). */
  readonly sampleSize: number;
  // Flat node arrays; a tree's nodes are contiguous in pre-order, so the left
  // child of node k is k + 1. feature < 0 marks a leaf whose size is in `right`.
  #feature: Int16Array;
  #split: Float32Array;
  #right: Int32Array;
  #roots: Int32Array;
  #leafDepth: Float32Array;
  #norm: number;

  private constructor(
    dimensions: number,
    sampleSize: number,
    roots: Int32Array,
    feature: Int16Array,
    split: Float32Array,
    right: Int32Array,
  ) {
    this.dimensions = dimensions;
    this.trees = roots.length;
    this.sampleSize = sampleSize;
    this.#roots = roots;
    this.#feature = feature;
    this.#split = split;
    this.#right = right;
    this.#norm = averagePathLength(sampleSize) || 1;
    this.#leafDepth = new Float32Array(feature.length);
    for (let k = 0; k < feature.length; k++) {
      if (feature[k]! < 0) this.#leafDepth[k] = averagePathLength(right[k]!);
    }
  }

  /**
   * Grow a forest.
   *
   * @param rows Training rows.
   * @param options Trees, ψ and seed.
   * @returns The forest.
   * @throws {RangeError} If there are no rows, or trees/sampleSize are not positive integers.
   */
  static fit(rows: SparseRows, options: IsolationForestOptions = {}): IsolationForest {
    const trees = options.trees ?? 100;
    const psi = options.sampleSize ?? 256;
    const n = rows.offsets.length - 1;
    if (!Number.isInteger(trees) || trees < 1 || trees > 10000) {
      throw new RangeError(`Cannot grow ${trees} trees: expected an integer in 1..10000`);
    }
    if (!Number.isInteger(psi) || psi < 2 || psi > 65535) {
      throw new RangeError(`Cannot use sampleSize ${psi}: expected an integer in 2..65535`);
    }
    if (n < 1) throw new RangeError(`Cannot fit on ${n} rows: expected at least 1`);
    if (rows.dimensions > 32767) {
      throw new RangeError(`Cannot use ${rows.dimensions} dimensions: expected at most 32767`);
    }
    const sample = Math.min(psi, n);
    const maxDepth = Math.ceil(Math.log2(Math.max(2, sample)));
    const prng = createPrng(options.seed ?? 1);
    const cap = trees * (2 * sample - 1);
    const feature = new Int16Array(cap);
    const split = new Float32Array(cap);
    const right = new Int32Array(cap);
    const roots = new Int32Array(trees);
    let next = 0;

    const perm = new Int32Array(n);
    for (let i = 0; i < n; i++) perm[i] = i;
    const idx = new Int32Array(sample);
    const lo = new Float32Array(rows.dimensions);
    const hi = new Float32Array(rows.dimensions);
    const seen = new Int32Array(rows.dimensions);
    const touched = new Int32Array(rows.dimensions);
    const candidates = new Int32Array(rows.dimensions);
    let stamp = 0;
    const { offsets, index, value } = rows;

    const valueOf = (row: number, f: number): number => {
      for (let p = offsets[row]!, e = offsets[row + 1]!; p < e; p++) {
        if (index[p] === f) return value[p]!;
      }
      return 0;
    };

    const grow = (from: number, to: number, depth: number): void => {
      const node = next++;
      const size = to - from;
      if (depth >= maxDepth || size <= 1) {
        feature[node] = -1;
        right[node] = size;
        return;
      }
      // Features that vary in this node: min/max over stored entries, with an
      // implicit 0 wherever a row does not store the feature.
      stamp++;
      let nTouched = 0;
      for (let r = from; r < to; r++) {
        const row = idx[r]!;
        for (let p = offsets[row]!, e = offsets[row + 1]!; p < e; p++) {
          const f = index[p]!;
          const v = value[p]!;
          if (seen[f] !== stamp) {
            seen[f] = stamp;
            touched[nTouched++] = f;
            lo[f] = v;
            hi[f] = v;
            candidates[f] = 1;
          } else {
            if (v < lo[f]!) lo[f] = v;
            if (v > hi[f]!) hi[f] = v;
            candidates[f] = candidates[f]! + 1;
          }
        }
      }
      let nVary = 0;
      for (let t = 0; t < nTouched; t++) {
        const f = touched[t]!;
        if (candidates[f]! < size) {
          if (lo[f]! > 0) lo[f] = 0;
          if (hi[f]! < 0) hi[f] = 0;
        }
        if (hi[f]! > lo[f]!) touched[nVary++] = f;
      }
      if (nVary === 0) {
        feature[node] = -1;
        right[node] = size;
        return;
      }
      const f = touched[prng.nextInt(nVary)]!;
      const a = lo[f]!;
      const b = hi[f]!;
      let s = Math.fround(a + prng.next() * (b - a));
      if (!(s > a)) s = Math.fround((a + b) / 2);
      // Partition: rows with value < s first.
      let i = from;
      let j = to - 1;
      while (i <= j) {
        if (valueOf(idx[i]!, f) < s) i++;
        else {
          const tmp = idx[i]!;
          idx[i] = idx[j]!;
          idx[j] = tmp;
          j--;
        }
      }
      feature[node] = f;
      split[node] = s;
      grow(from, i, depth + 1);
      right[node] = next;
      grow(i, to, depth + 1);
    };

    for (let t = 0; t < trees; t++) {
      // Partial Fisher–Yates: the first `sample` entries of perm are the subsample.
      for (let i = 0; i < sample; i++) {
        const j = i + prng.nextInt(n - i);
        const tmp = perm[i]!;
        perm[i] = perm[j]!;
        perm[j] = tmp;
        idx[i] = perm[i]!;
      }
      roots[t] = next;
      grow(0, sample, 0);
    }
    return new IsolationForest(
      rows.dimensions,
      sample,
      roots,
      feature.slice(0, next),
      split.slice(0, next),
      right.slice(0, next),
    );
  }

  /** Number of stored nodes over all trees. */
  get nodes(): number {
    return this.#feature.length;
  }

  /**
   * Score a dense row.
   *
   * @param dense Feature values indexed by feature (length ≥ dimensions).
   * @returns The anomaly score 2^(−E(h)/c(ψ)) in (0, 1]; about 0.5 or less is normal.
   */
  score(dense: Float32Array | Float64Array): number {
    const feature = this.#feature;
    const split = this.#split;
    const right = this.#right;
    const leafDepth = this.#leafDepth;
    let total = 0;
    for (let t = 0; t < this.trees; t++) {
      let k = this.#roots[t]!;
      let depth = 0;
      let f = feature[k]!;
      while (f >= 0) {
        k = dense[f]! < split[k]! ? k + 1 : right[k]!;
        f = feature[k]!;
        depth++;
      }
      total += depth + leafDepth[k]!;
    }
    return Math.pow(2, -(total / this.trees) / this.#norm);
  }

  /**
   * Write the forest.
   *
   * @param w The writer.
   */
  write(w: ByteWriter): void {
    w.varint(this.dimensions);
    w.varint(this.sampleSize);
    w.varint(this.trees);
    w.varint(this.#feature.length);
    for (let t = 0; t < this.trees; t++) w.varint(this.#roots[t]!);
    w.bytes(
      new Uint8Array(this.#feature.buffer, this.#feature.byteOffset, this.#feature.byteLength),
    );
    w.bytes(new Uint8Array(this.#split.buffer, this.#split.byteOffset, this.#split.byteLength));
    // Right children are written as varints relative to the node (leaf: size).
    for (let k = 0; k < this.#feature.length; k++) {
      w.varint(this.#feature[k]! < 0 ? this.#right[k]! : this.#right[k]! - k);
    }
  }

  /**
   * Read a forest written by {@linkcode IsolationForest.write}.
   *
   * @param r The reader.
   * @returns The forest.
   * @throws {ModelFormatError} If the data is inconsistent.
   */
  static read(r: ByteReader): IsolationForest {
    const dimensions = r.varint();
    const sampleSize = r.varint();
    const trees = r.varint();
    const nodes = r.varint();
    if (trees < 1 || nodes < trees || dimensions > 32767 || nodes > 1 << 26) {
      throw new ModelFormatError(
        `Cannot read forest: ${trees} trees, ${nodes} nodes, ${dimensions} dimensions are inconsistent`,
      );
    }
    const roots = new Int32Array(trees);
    for (let t = 0; t < trees; t++) roots[t] = r.varint();
    const feature = new Int16Array(nodes);
    new Uint8Array(feature.buffer).set(r.bytes(nodes * 2));
    const split = r.f32Array(nodes);
    const right = new Int32Array(nodes);
    for (let k = 0; k < nodes; k++) {
      const v = r.varint();
      const f = feature[k]!;
      right[k] = f < 0 ? v : v + k;
      if (f >= dimensions || (f >= 0 && (right[k]! <= k + 1 || right[k]! >= nodes))) {
        throw new ModelFormatError(`Cannot read forest: node ${k} points outside the tree`);
      }
    }
    for (let t = 0; t < trees; t++) {
      if (roots[t]! >= nodes) {
        throw new ModelFormatError(`Cannot read forest: root ${t} points outside the nodes`);
      }
    }
    return new IsolationForest(dimensions, sampleSize, roots, feature, split, right);
  }
}
