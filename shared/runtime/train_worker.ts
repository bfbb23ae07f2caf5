/**
 * Trains a model in a Web Worker, so a process that also serves HTTP and
 * scores lines (the api, `deno task start`) never stalls while a model
 * trains. Everything that costs CPU in proportion to the history runs in the
 * worker: training the detector, the shadow check of the new and the current
 * model, and the rate model over the whole window. The worker sends back the
 * registry blob and the figures; it inherits the process's permissions and
 * needs only to read its module files (every task grants `--allow-read`).
 *
 * @module
 */

import {
  bundleModel,
  Detector,
  learnRates,
  splitModel,
  trainDetector,
  type TrainOptions,
} from "../detector/detector.ts";

/** The options a worker can be given: the serialisable part of {@linkcode TrainOptions}. */
export type WorkerTrainOptions = Omit<TrainOptions, "onProgress">;

/** One training run, as {@linkcode trainModelInWorker} hands it to the worker. */
export interface TrainJob {
  /** Lines the detector learns. */
  training: string[];
  /** The newest lines, held back: both models' alert rates on them decide the promotion. */
  shadow: string[];
  /** Every line of the window, oldest first, with `times`: what the rate model learns. */
  history: string[];
  /** Per line of `history`, its time in ms since the epoch. */
  times: number[];
  /** Seed, alert rate and the other training options. */
  options: WorkerTrainOptions;
  /** The current model's registry blob, when there is one. */
  current?: Uint8Array;
}

/** What a training run made. */
export interface TrainedModel {
  /** The registry blob: the detector bundled with its rate model. */
  blob: Uint8Array;
  /** The detector's calibrated threshold. */
  threshold: number;
  /** Share of the shadow lines the new model flags. */
  shadowAlertRate: number;
  /** Share of the shadow lines the current model flags; null without one. */
  currentAlertRate: number | null;
  /** Templates the rate model tracks. */
  rateTemplates: number;
  /** Templates the detector mined. */
  templates: number;
  /** Training lines merged past the template caps (DetectorInfo.merged). */
  merged: number;
}

/** What the worker answers. */
export type TrainWorkerReply = { model: TrainedModel } | { error: string };

/**
 * Runs a training job in this thread (the worker calls this).
 *
 * @param job the lines, times, options and current model
 * @returns the blob and the figures
 */
export async function trainModel(job: TrainJob): Promise<TrainedModel> {
  const detector = await trainDetector(job.training, job.options);
  const shadowAlertRate = _alertRate(detector, job.shadow);
  const currentAlertRate = job.current === undefined
    ? null
    : _alertRate(Detector.fromBytes(splitModel(job.current).detector), job.shadow);
  const rates = learnRates(detector, _timed(job.history, job.times));
  return {
    blob: bundleModel(detector.toBytes(), rates.toBytes()),
    threshold: detector.info.threshold,
    shadowAlertRate,
    currentAlertRate,
    rateTemplates: rates.templates.size,
    templates: detector.info.templates,
    merged: detector.info.merged,
  };
}

/**
 * Runs a training job in a Web Worker.
 *
 * @example
 * ```ts
 * const lines = ["GET / 200", "GET /a 200", "GET /b 200"];
 * const model = await trainModelInWorker({
 *   training: lines,
 *   shadow: lines.slice(-1),
 *   history: lines,
 *   times: lines.map((_, i) => Date.now() - 1000 * (lines.length - i)),
 *   options: { seed: 1 },
 * });
 * model.shadowAlertRate;
 * ```
 *
 * @param job the lines, times, options and current model
 * @returns the blob and the figures
 * @throws {Error} when training fails in the worker, or the worker cannot start
 */
export async function trainModelInWorker(job: TrainJob): Promise<TrainedModel> {
  const worker = new Worker(new URL("./train_worker_main.ts", import.meta.url), {
    type: "module",
  });
  try {
    const reply = await new Promise<TrainWorkerReply>((resolve, reject) => {
      worker.onmessage = (e: MessageEvent<TrainWorkerReply>) => resolve(e.data);
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        reject(new Error(`Cannot train in a worker: ${e.message}`));
      };
      worker.onmessageerror = () => reject(new Error("Cannot train in a worker: unreadable reply"));
      worker.postMessage(job);
    });
    if ("error" in reply) throw new Error(`Training failed in the worker: ${reply.error}`);
    return reply.model;
  } finally {
    worker.terminate();
  }
}

function _alertRate(detector: Detector, lines: readonly string[]): number {
  if (lines.length === 0) return 0;
  let n = 0;
  for (const s of detector.scoreBatch(lines)) if (s.anomaly) n++;
  return n / lines.length;
}

function* _timed(
  lines: readonly string[],
  times: readonly number[],
): Generator<{ time: number; line: string }> {
  for (let i = 0; i < lines.length; i++) yield { time: times[i]!, line: lines[i]! };
}
