/**
 * A small Prometheus registry: counters, gauges and histograms with fixed
 * buckets, with labels, rendered in the text exposition format 0.0.4.
 *
 * {@linkcode MetricsRegistry} is the main export; {@linkcode createTailwiseMetrics}
 * registers the metrics every tailwise function shares, so their names are
 * spelled in one place.
 *
 * @module
 */

/** Label values of one series, by label name. */
export type Labels = Readonly<Record<string, string>>;

/** Options of a metric. */
export interface MetricOptions {
  /**
   * Names of the labels every series of the metric carries.
   * @default []
   */
  labelNames?: readonly string[];
}

/** Options of {@linkcode MetricsRegistry.histogram}. */
export interface HistogramOptions extends MetricOptions {
  /**
   * Upper bounds of the buckets, ascending; `+Inf` is always added.
   * @default DEFAULT_BUCKETS
   */
  buckets?: readonly number[];
}

/** Default histogram buckets, in seconds (those of the Prometheus clients). */
export const DEFAULT_BUCKETS: readonly number[] = [
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** A value that only goes up. */
export interface Counter {
  /**
   * Adds to the series of `labels`.
   * @throws {RangeError} when `by` is negative or not finite, or labels do not match
   */
  inc(labels?: Labels, by?: number): void;
  /** The current value of a series (0 when never touched). */
  value(labels?: Labels): number;
}

/** A value that goes up and down. */
export interface Gauge {
  /** Sets the series of `labels`. */
  set(labels: Labels, value: number): void;
  /** Adds to the series of `labels` (negative to subtract). */
  inc(labels?: Labels, by?: number): void;
  /** The current value of a series (0 when never set). */
  value(labels?: Labels): number;
  /** Removes every series, e.g. before setting a fresh snapshot. */
  reset(): void;
}

/** Observations counted into fixed buckets. */
export interface Histogram {
  /** Records one observation in the series without labels. */
  observe(value: number): void;
  /** Records one observation in the series of `labels`. */
  observe(labels: Labels, value: number): void;
  /** Count and sum of a series. */
  snapshot(labels?: Labels): { count: number; sum: number; buckets: number[] };
}

const _METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const _LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * A set of metrics rendered together as Prometheus text.
 *
 * @example
 * ```ts
 * const metrics = new MetricsRegistry();
 * const lines = metrics.counter("tailwise_lines_in_total", "Lines read", {
 *   labelNames: ["container"],
 * });
 * lines.inc({ container: "web" }, 10);
 * console.log(metrics.render());
 * ```
 */
export class MetricsRegistry {
  #metrics = new Map<string, _Metric>();

  /**
   * Registers a counter (by convention its name ends in `_total`).
   *
   * @param name the metric name
   * @param help one line of description
   * @param options its label names
   * @returns the counter
   * @throws {TypeError} when a name is invalid or already registered
   */
  counter(name: string, help: string, options: MetricOptions = {}): Counter {
    return this.#add(new _CounterMetric(name, help, _labelNames(name, options.labelNames)));
  }

  /**
   * Registers a gauge.
   *
   * @param name the metric name
   * @param help one line of description
   * @param options its label names
   * @returns the gauge
   * @throws {TypeError} when a name is invalid or already registered
   */
  gauge(name: string, help: string, options: MetricOptions = {}): Gauge {
    return this.#add(new _GaugeMetric(name, help, _labelNames(name, options.labelNames)));
  }

  /**
   * Registers a histogram with fixed buckets.
   *
   * @param name the metric name (by convention with its unit, e.g. `_seconds`)
   * @param help one line of description
   * @param options its label names and buckets
   * @returns the histogram
   * @throws {TypeError} when a name is invalid or already registered, or `le` is a label
   * @throws {RangeError} when the buckets are not finite and strictly ascending
   */
  histogram(name: string, help: string, options: HistogramOptions = {}): Histogram {
    const labelNames = _labelNames(name, options.labelNames);
    if (labelNames.includes("le")) {
      throw new TypeError(`Cannot register histogram ${name}: "le" is reserved for buckets`);
    }
    const buckets = [...(options.buckets ?? DEFAULT_BUCKETS)];
    for (let i = 0; i < buckets.length; i++) {
      const b = buckets[i]!;
      if (!Number.isFinite(b) || (i > 0 && b <= buckets[i - 1]!)) {
        throw new RangeError(
          `Cannot use buckets [${
            buckets.join(", ")
          }] for ${name}: expected finite, strictly ascending numbers`,
        );
      }
    }
    return this.#add(new _HistogramMetric(name, help, labelNames, buckets));
  }

  /**
   * Renders every metric in the Prometheus text format 0.0.4, in the order
   * they were registered.
   *
   * @returns the exposition text, ending with a newline
   */
  render(): string {
    const out: string[] = [];
    for (const m of this.#metrics.values()) m.render(out);
    return out.length === 0 ? "" : out.join("\n") + "\n";
  }

  #add<T extends _Metric>(metric: T): T {
    if (this.#metrics.has(metric.name)) {
      throw new TypeError(`Cannot register metric ${metric.name}: it is already registered`);
    }
    this.#metrics.set(metric.name, metric);
    return metric;
  }
}

/** The content type of {@linkcode MetricsRegistry.render}'s output. */
export const METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** The metrics every tailwise function shares. */
export interface TailwiseMetrics {
  /** The registry they live in; render it for `/metrics`. */
  registry: MetricsRegistry;
  /** `tailwise_lines_in_total{container}`: lines appended to the log stream. */
  linesIn: Counter;
  /** `tailwise_lines_scored_total{container}`: lines scored by the score function. */
  linesScored: Counter;
  /** `tailwise_anomalies_total{container}`: anomalies found. */
  anomalies: Counter;
  /** `tailwise_stream_lag{stream,group}`: entries not yet delivered to a consumer group. */
  streamLag: Gauge;
  /** `tailwise_stream_pending{stream,group}`: entries delivered and not acked. */
  streamPending: Gauge;
  /** `tailwise_model_version{container}`: the current model version per container. */
  modelVersion: Gauge;
  /** `tailwise_last_deploy_timestamp_seconds{container}`: when each service's latest recorded deploy started. */
  lastDeploy: Gauge;
  /** `tailwise_deploys{container}`: deploys of each service in the deploys stream. */
  deploys: Gauge;
  /** `tailwise_score_latency_seconds`: from a line's timestamp to its score. */
  scoreLatency: Histogram;
  /** `tailwise_http_requests_total{method,route,status}`: api requests. */
  httpRequests: Counter;
  /** `tailwise_http_request_duration_seconds{method,route}`: api request durations. */
  httpDuration: Histogram;
  /** `tailwise_http_unauthenticated_total`: api requests answered 401, without labels. */
  httpUnauthenticated: Counter;
}

/**
 * Registers the shared tailwise metrics in a registry.
 *
 * @param registry where to register them
 * @default registry new MetricsRegistry()
 * @returns the metrics
 */
export function createTailwiseMetrics(
  registry: MetricsRegistry = new MetricsRegistry(),
): TailwiseMetrics {
  const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
  return {
    registry,
    linesIn: registry.counter("tailwise_lines_in_total", "Log lines appended to the log stream", {
      labelNames: ["container"],
    }),
    linesScored: registry.counter("tailwise_lines_scored_total", "Log lines scored", {
      labelNames: ["container"],
    }),
    anomalies: registry.counter("tailwise_anomalies_total", "Anomalies found", {
      labelNames: ["container"],
    }),
    streamLag: registry.gauge(
      "tailwise_stream_lag",
      "Stream entries not yet delivered to the consumer group",
      { labelNames: ["stream", "group"] },
    ),
    streamPending: registry.gauge(
      "tailwise_stream_pending",
      "Stream entries delivered to the consumer group and not acked",
      { labelNames: ["stream", "group"] },
    ),
    modelVersion: registry.gauge(
      "tailwise_model_version",
      "Current model version of the container",
      { labelNames: ["container"] },
    ),
    lastDeploy: registry.gauge(
      "tailwise_last_deploy_timestamp_seconds",
      "When the service's latest recorded deploy (image change) started",
      { labelNames: ["container"] },
    ),
    deploys: registry.gauge(
      "tailwise_deploys",
      "Deploys (image changes) of the service kept in the deploys stream",
      { labelNames: ["container"] },
    ),
    scoreLatency: registry.histogram(
      "tailwise_score_latency_seconds",
      "Time from a log line's timestamp to its score",
      { buckets: latencyBuckets },
    ),
    httpRequests: registry.counter("tailwise_http_requests_total", "API requests answered", {
      labelNames: ["method", "route", "status"],
    }),
    httpDuration: registry.histogram(
      "tailwise_http_request_duration_seconds",
      "API request durations",
      { labelNames: ["method", "route"], buckets: latencyBuckets },
    ),
    httpUnauthenticated: registry.counter(
      "tailwise_http_unauthenticated_total",
      "API requests answered 401 (missing or invalid token), counted without labels",
    ),
  };
}

/**
 * Escapes a label value for the text format: backslash, double quote and
 * line feed.
 *
 * @param value the raw value
 * @returns the escaped value, without quotes
 */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

function _escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));
}

function _formatValue(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}

function _labelNames(metric: string, names: readonly string[] = []): string[] {
  if (!_METRIC_NAME.test(metric)) {
    throw new TypeError(
      `Cannot register metric ${
        JSON.stringify(metric)
      }: expected a name matching [a-zA-Z_:][a-zA-Z0-9_:]*`,
    );
  }
  const seen = new Set<string>();
  for (const n of names) {
    if (!_LABEL_NAME.test(n) || n.startsWith("__") || seen.has(n)) {
      throw new TypeError(
        `Cannot use label ${
          JSON.stringify(n)
        } on ${metric}: expected a unique name matching [a-zA-Z_][a-zA-Z0-9_]* not starting with __`,
      );
    }
    seen.add(n);
  }
  return [...names];
}

abstract class _Metric {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly string[];

  constructor(name: string, help: string, labelNames: readonly string[]) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
  }

  abstract render(out: string[]): void;

  protected header(out: string[], type: string): void {
    out.push(`# HELP ${this.name} ${_escapeHelp(this.help)}`, `# TYPE ${this.name} ${type}`);
  }

  /** A stable key for a series, checking the label names. */
  protected key(labels: Labels = {}): string {
    const keys = Object.keys(labels);
    if (
      keys.length !== this.labelNames.length || !this.labelNames.every((n) => n in labels)
    ) {
      throw new RangeError(
        `Cannot use labels {${keys.join(", ")}} on ${this.name}: expected {${
          this.labelNames.join(", ")
        }}`,
      );
    }
    return JSON.stringify(this.labelNames.map((n) => String(labels[n])));
  }

  /** `{a="1",b="2"}` of a series key, with extra pairs appended. */
  protected labelText(key: string, extra: [string, string][] = []): string {
    const values = JSON.parse(key) as string[];
    const pairs = this.labelNames.map((n, i) => [n, values[i]!] as [string, string]).concat(extra);
    if (pairs.length === 0) return "";
    return `{${pairs.map(([n, v]) => `${n}="${escapeLabelValue(v)}"`).join(",")}}`;
  }
}

class _CounterMetric extends _Metric implements Counter {
  #values = new Map<string, number>();

  inc(labels?: Labels, by = 1): void {
    if (!Number.isFinite(by) || by < 0) {
      throw new RangeError(
        `Cannot add ${by} to counter ${this.name}: expected a finite number >= 0`,
      );
    }
    const k = this.key(labels);
    this.#values.set(k, (this.#values.get(k) ?? 0) + by);
  }

  value(labels?: Labels): number {
    return this.#values.get(this.key(labels)) ?? 0;
  }

  render(out: string[]): void {
    this.header(out, "counter");
    if (this.labelNames.length === 0 && this.#values.size === 0) out.push(`${this.name} 0`);
    for (const [k, v] of this.#values) {
      out.push(`${this.name}${this.labelText(k)} ${_formatValue(v)}`);
    }
  }
}

class _GaugeMetric extends _Metric implements Gauge {
  #values = new Map<string, number>();

  set(labels: Labels, value: number): void {
    this.#values.set(this.key(labels), value);
  }

  inc(labels?: Labels, by = 1): void {
    const k = this.key(labels);
    this.#values.set(k, (this.#values.get(k) ?? 0) + by);
  }

  value(labels?: Labels): number {
    return this.#values.get(this.key(labels)) ?? 0;
  }

  reset(): void {
    this.#values.clear();
  }

  render(out: string[]): void {
    this.header(out, "gauge");
    for (const [k, v] of this.#values) {
      out.push(`${this.name}${this.labelText(k)} ${_formatValue(v)}`);
    }
  }
}

class _HistogramMetric extends _Metric implements Histogram {
  readonly #bounds: readonly number[];
  #series = new Map<string, { counts: number[]; sum: number; count: number }>();

  constructor(name: string, help: string, labelNames: readonly string[], bounds: number[]) {
    super(name, help, labelNames);
    this.#bounds = bounds;
  }

  observe(labelsOrValue: Labels | number, value?: number): void {
    const labels = typeof labelsOrValue === "number" ? {} : labelsOrValue;
    const v = typeof labelsOrValue === "number" ? labelsOrValue : value;
    if (typeof v !== "number" || Number.isNaN(v)) {
      throw new RangeError(`Cannot observe ${v} in histogram ${this.name}: expected a number`);
    }
    const k = this.key(labels);
    let s = this.#series.get(k);
    if (!s) {
      s = { counts: new Array(this.#bounds.length).fill(0), sum: 0, count: 0 };
      this.#series.set(k, s);
    }
    // Buckets are kept non-cumulative and summed when rendered.
    const i = this.#bounds.findIndex((b) => v <= b);
    if (i >= 0) s.counts[i]!++;
    s.sum += v;
    s.count++;
  }

  snapshot(labels?: Labels): { count: number; sum: number; buckets: number[] } {
    const s = this.#series.get(this.key(labels));
    if (!s) return { count: 0, sum: 0, buckets: this.#bounds.map(() => 0) };
    return { count: s.count, sum: s.sum, buckets: _cumulative(s.counts) };
  }

  render(out: string[]): void {
    this.header(out, "histogram");
    for (const [k, s] of this.#series) {
      const cumulative = _cumulative(s.counts);
      this.#bounds.forEach((b, i) => {
        out.push(
          `${this.name}_bucket${this.labelText(k, [["le", _formatValue(b)]])} ${cumulative[i]}`,
        );
      });
      out.push(`${this.name}_bucket${this.labelText(k, [["le", "+Inf"]])} ${s.count}`);
      out.push(`${this.name}_sum${this.labelText(k)} ${_formatValue(s.sum)}`);
      out.push(`${this.name}_count${this.labelText(k)} ${s.count}`);
    }
  }
}

function _cumulative(counts: readonly number[]): number[] {
  let total = 0;
  return counts.map((c) => (total += c));
}
