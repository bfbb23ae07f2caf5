/**
 * The rate evaluation set: a synthetic service log of 60 hours (48 h of
 * history with a daily rhythm, busy afternoons and quiet nights, Poisson
 * noise and a little day-to-day drift; then 12 h with four incidents in
 * which every line is ordinary on its own: 15 minutes of silence, one normal
 * template flooding at 20×, a known warning (about one a minute) arriving 40
 * times a minute, traffic dropping to 15 %). The detector and the rate model
 * are trained on the history exactly as `deno task cli train --timestamps`
 * does, the 12 hours judged as `deno task cli rates` does, and the anomalous
 * windows grouped into alerts (runs of anomalous windows, gaps of up to two
 * windows merged) and matched to the incidents.
 *
 * @module
 */

import {
  judgeSpan,
  learnRates,
  type RateModelOptions,
  type RateMonitorOptions,
  type TimedLine,
  trainDetector,
} from "../shared/detector/detector.ts";

/** One incident of the scenario. */
export interface RateIncident {
  /** What happens. */
  kind: "silence" | "flood" | "warning_spike" | "drop";
  /** Start (ms since the epoch). */
  start: number;
  /** End (exclusive). */
  end: number;
}

/** A generated scenario. */
export interface RateScenario {
  /** History lines (48 h). */
  history: TimedLine[];
  /** Lines of the 12 judged hours. */
  test: TimedLine[];
  /** The incidents in the 12 hours. */
  incidents: RateIncident[];
}

/** Options of {@linkcode generateRateScenario}. */
export interface RateScenarioOptions {
  /** PRNG seed. @default {1} */
  seed?: number;
  /** Lines per minute at the afternoon peak. @default {60} */
  peakPerMinute?: number;
  /** UTC hour at which the history starts. @default {0} */
  startHour?: number;
  /** Include the incidents. @default {true} */
  incidents?: boolean;
  /** Day-to-day volume change, ± this share. @default {0.05} */
  dayToDay?: number;
  /** Minute-to-minute multiplicative noise (σ of a log-normal) beyond Poisson. @default {0} */
  overdispersion?: number;
  /** Lines a cron job writes at minute 0 of every hour (a bursty template); 0 for none. @default {0} */
  hourlyBurst?: number;
}

const _MIN = 60_000;
const _HOUR = 3_600_000;

/**
 * Generate a 60-hour scenario.
 *
 * @param options Seed, volume, start hour.
 * @returns The history, the judged lines and the incidents.
 */
export function generateRateScenario(options: RateScenarioOptions = {}): RateScenario {
  const { seed = 1, peakPerMinute = 60, startHour = 0, dayToDay = 0.05, overdispersion = 0 } =
    options;
  let state = seed >>> 0 || 1;
  const rand = (): number => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 4294967296;
  };
  const poisson = (lambda: number): number => {
    if (lambda <= 0) return 0;
    if (lambda > 50) {
      const u = Math.max(1e-12, rand()), v = rand();
      const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
      return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * z));
    }
    const l = Math.exp(-lambda);
    let k = 0, p = 1;
    for (;;) {
      p *= rand();
      if (p <= l) return k;
      k++;
    }
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const t0 = Date.UTC(2026, 10, 28, startHour);
  const testStart = t0 + 48 * _HOUR;
  const end = t0 + 60 * _HOUR;
  // Daily rhythm: trough at 04:00 (~15 % of peak), peak at 16:00.
  const rhythm = (t: number): number => {
    const h = ((t / _HOUR) % 24 + 24) % 24;
    return 0.15 + 0.85 * (0.5 - 0.5 * Math.cos(2 * Math.PI * (h - 4) / 24));
  };
  const dayFactor = [1, 1 - dayToDay + rand() * 2 * dayToDay, 1 - dayToDay + rand() * 2 * dayToDay];
  const gauss = (): number => {
    const u = Math.max(1e-12, rand()), v = rand();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const paths = ["/api/items", "/api/users", "/api/orders", "/login", "/static/app.js"];
  const ip = () => `10.0.${Math.floor(rand() * 255)}.${Math.floor(rand() * 255)}`;
  // Templates: share of traffic (proportional) or a fixed rate per minute.
  const kinds: {
    name: string;
    share?: number;
    perMinute?: number;
    make: () => string;
  }[] = [
    {
      name: "access",
      share: 0.55,
      make: () =>
        `${ip()} - - "GET ${pick(paths)}/${Math.floor(rand() * 9999)} HTTP/1.1" 200 ${
          Math.floor(200 + rand() * 5000)
        } ${Math.floor(2 + rand() * 80)}ms`,
    },
    {
      name: "post",
      share: 0.15,
      make: () =>
        `${ip()} - - "POST /api/orders HTTP/1.1" 201 ${Math.floor(100 + rand() * 900)} ${
          Math.floor(10 + rand() * 200)
        }ms`,
    },
    {
      name: "db",
      share: 0.2,
      make: () =>
        `level=info msg="query done" table=${pick(["items", "users", "orders"])} rows=${
          Math.floor(rand() * 100)
        } took=${Math.floor(1 + rand() * 40)}ms`,
    },
    {
      name: "cache",
      share: 0.1,
      make: () => `level=debug msg="cache hit" key=item:${Math.floor(rand() * 100000)}`,
    },
    {
      name: "health",
      perMinute: 2,
      make: () => `level=info msg="health check ok" uptime=${Math.floor(rand() * 1e6)}s`,
    },
    {
      name: "warning",
      perMinute: 1,
      make: () =>
        `level=warn msg="slow upstream response" upstream=payments took=${
          Math.floor(900 + rand() * 3000)
        }ms`,
    },
    {
      name: "batch",
      perMinute: 0.2,
      make: () => `level=info msg="batch flushed" items=${Math.floor(rand() * 500)}`,
    },
  ];
  const incidents: RateIncident[] = [];
  if (options.incidents !== false) {
    // Four incidents at random, non-overlapping times of the 12 hours.
    const plan: [RateIncident["kind"], number][] = [
      ["silence", 15],
      ["flood", 10],
      ["warning_spike", 10],
      ["drop", 20],
    ];
    const slots = [0, 1, 2, 3].sort(() => rand() - 0.5);
    plan.forEach(([kind, minutes], i) => {
      const slotStart = testStart + slots[i]! * 3 * _HOUR;
      const start = slotStart + Math.floor(30 + rand() * 120) * _MIN;
      incidents.push({ kind, start, end: start + minutes * _MIN });
    });
    incidents.sort((a, b) => a.start - b.start);
  }
  const active = (t: number, kind: RateIncident["kind"]) =>
    incidents.some((x) => x.kind === kind && t >= x.start && t < x.end);
  const history: TimedLine[] = [];
  const test: TimedLine[] = [];
  for (let m = t0; m < end; m += _MIN) {
    const mid = m + _MIN / 2;
    const day = Math.floor((m - t0) / (24 * _HOUR));
    const noise = overdispersion > 0 ? Math.exp(overdispersion * gauss()) : 1;
    const traffic = peakPerMinute * rhythm(mid) * dayFactor[Math.min(2, day)]! * noise;
    const out = m < testStart ? history : test;
    if (active(mid, "silence")) continue;
    const drop = active(mid, "drop") ? 0.15 : 1;
    if ((options.hourlyBurst ?? 0) > 0 && new Date(m).getUTCMinutes() === 0) {
      for (let i = 0; i < options.hourlyBurst! * drop; i++) {
        out.push({
          time: m + Math.floor(rand() * 20_000),
          line: `level=info msg="cron: report row exported" row=${Math.floor(rand() * 1e6)}`,
        });
      }
    }
    for (const k of kinds) {
      let lambda = k.share !== undefined ? traffic * k.share * drop : k.perMinute! * drop;
      if (k.name === "cache" && active(mid, "flood")) lambda *= 20;
      if (k.name === "warning" && active(mid, "warning_spike")) lambda = 40;
      const n = poisson(lambda);
      for (let i = 0; i < n; i++) {
        out.push({ time: m + Math.floor(rand() * _MIN), line: k.make() });
      }
    }
  }
  history.sort((a, b) => a.time - b.time);
  test.sort((a, b) => a.time - b.time);
  return { history, test, incidents };
}

/** What the rate evaluation measured for one scenario. */
export interface RateEvalResult {
  /** Scenario name. */
  name: string;
  /** Windows judged. */
  windows: number;
  /** Anomalous windows. */
  anomalousWindows: number;
  /** Alerts (runs of anomalous windows). */
  alerts: number;
  /** Alerts that overlap no incident. */
  falseAlarms: number;
  /** Incidents caught, of four. */
  caught: number;
  /** Incident-level F1 (precision over alerts, recall over incidents). */
  f1: number;
  /** Per incident: kind, delay from its start to the end of the first anomalous window (s), reasons. */
  incidents: { kind: string; delaySeconds: number | null; reasons: string }[];
  /** The false alarms: start and reasons. */
  falseAlarmDetails: string[];
}

/**
 * Run one scenario through training and judging.
 *
 * @param name A label.
 * @param scenario The scenario.
 * @param options Rate model and monitor options.
 * @returns The figures.
 */
export async function evalRateScenario(
  name: string,
  scenario: RateScenario,
  options: RateModelOptions & RateMonitorOptions = {},
): Promise<RateEvalResult> {
  const detector = await trainDetector(scenario.history.map((l) => l.line));
  const model = learnRates(detector, scenario.history, options);
  const windows = judgeSpan(model, detector, scenario.test, options);
  // Alerts: runs of anomalous windows, gaps of up to two windows merged.
  const alerts: { start: number; end: number; reasons: Set<string> }[] = [];
  for (const w of windows) {
    if (!w.anomaly) continue;
    const last = alerts[alerts.length - 1];
    if (last !== undefined && w.start - last.end <= 2 * model.windowMs) {
      last.end = w.end;
      for (const r of w.reasons) last.reasons.add(r.code);
    } else {alerts.push({
        start: w.start,
        end: w.end,
        reasons: new Set(w.reasons.map((r) => r.code)),
      });}
  }
  const slack = 2 * model.windowMs;
  const overlaps = (a: { start: number; end: number }, i: RateIncident) =>
    a.start < i.end + slack && a.end > i.start;
  const falseAlarms = alerts.filter((a) => !scenario.incidents.some((i) => overlaps(a, i)));
  const perIncident = scenario.incidents.map((i) => {
    const first = windows.find((w) => w.anomaly && w.start < i.end + slack && w.end > i.start);
    const matched = alerts.filter((a) => overlaps(a, i));
    return {
      kind: i.kind,
      delaySeconds: first === undefined ? null : Math.max(0, (first.end - i.start) / 1000),
      reasons: [...new Set(matched.flatMap((a) => [...a.reasons]))].join(","),
    };
  });
  const caught = perIncident.filter((p) => p.delaySeconds !== null).length;
  const precision = alerts.length === 0 ? 1 : (alerts.length - falseAlarms.length) / alerts.length;
  const recall = scenario.incidents.length === 0 ? 1 : caught / scenario.incidents.length;
  const f1 = precision + recall === 0 ? 0 : 2 * precision * recall / (precision + recall);
  return {
    name,
    windows: windows.length,
    anomalousWindows: windows.filter((w) => w.anomaly).length,
    alerts: alerts.length,
    falseAlarms: falseAlarms.length,
    caught,
    f1: Math.round(f1 * 1000) / 1000,
    incidents: perIncident,
    falseAlarmDetails: falseAlarms.map((a) =>
      `${new Date(a.start).toISOString()} ${(a.end - a.start) / model.windowMs}w ${
        [...a.reasons].join(",")
      }`
    ),
  };
}

/**
 * The rate set: several seeds, volumes and start hours, with incidents, and
 * the same without incidents (false alarms only).
 *
 * @param options Rate model and monitor options; `log` for progress.
 * @returns One result per scenario.
 */
export async function runRateEval(
  options: RateModelOptions & RateMonitorOptions & { log?: (msg: string) => void } = {},
): Promise<RateEvalResult[]> {
  const out: RateEvalResult[] = [];
  const cases: [string, RateScenarioOptions][] = [
    ["peak60-start00", { seed: 1, peakPerMinute: 60, startHour: 0 }],
    ["peak60-start10", { seed: 2, peakPerMinute: 60, startHour: 10 }],
    ["peak20-start18", { seed: 3, peakPerMinute: 20, startHour: 18 }],
    ["peak300-start06", { seed: 4, peakPerMinute: 300, startHour: 6 }],
    ["quiet-peak60-start10", { seed: 5, peakPerMinute: 60, startHour: 10, incidents: false }],
    ["quiet-peak20-start00", { seed: 6, peakPerMinute: 20, startHour: 0, incidents: false }],
    ["burst-peak40-start08", { seed: 7, peakPerMinute: 40, startHour: 8, hourlyBurst: 150 }],
    [
      "quiet-burst-peak40-start14",
      { seed: 8, peakPerMinute: 40, startHour: 14, hourlyBurst: 150, incidents: false },
    ],
  ];
  for (const [name, o] of cases) {
    const r = await evalRateScenario(name, generateRateScenario(o), options);
    options.log?.(
      `${name}: caught ${r.caught}/${
        o.incidents === false ? 0 : 4
      }, false alarms ${r.falseAlarms}, F1 ${r.f1}`,
    );
    out.push(r);
  }
  return out;
}

/**
 * Print the rate results as a Markdown table.
 *
 * @param results From {@linkcode runRateEval}.
 */
export function printRateEval(results: readonly RateEvalResult[]): void {
  console.log("");
  console.log("Rates: 48 h history, 12 h judged (720 one-minute windows)");
  console.log(
    "| scenario | caught | false alarms | incident F1 | detection delay (s) per incident |",
  );
  console.log("|---|---|---|---|---|");
  for (const r of results) {
    const delays = r.incidents.map((i) => `${i.kind} ${i.delaySeconds ?? "missed"}`).join(", ");
    console.log(
      `| ${r.name} | ${r.caught}/${r.incidents.length} | ${r.falseAlarms} | ${r.f1} | ${
        delays || "-"
      } |`,
    );
  }
}

if (import.meta.main) {
  const slot = Number(Deno.args[0] ?? 30);
  printRateEval(await runRateEval({ slotMinutes: slot, log: (m) => console.error(m) }));
}
