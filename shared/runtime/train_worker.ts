/**
 * Trains a detector in a Web Worker, so a process that also serves HTTP and
 * scores lines (the api, `deno task start`) never stalls while a model
 * trains. The worker runs the detector's own `trainDetector` and sends the
 * model back as bytes; it inherits the process's permissions and needs only
 * to read its module files (every task grants `--allow-read`).
 *
 * @module
 */

import { Detector, type TrainOptions } from "../detector/detector.ts";

/** The options a worker can be given: the serialisable part of {@linkcode TrainOptions}. */
export type WorkerTrainOptions = Omit<TrainOptions, "onProgress">;

/** What the worker answers. */
export type TrainWorkerReply = { bytes: Uint8Array } | { error: string };

/**
 * Trains a detector off the main thread.
 *
 * @example
 * ```ts
 * const detector = await trainInWorker(["GET / 200", "GET /a 200"], { seed: 1 });
 * detector.scoreBatch(["GET /b 500"]);
 * ```
 *
 * @param lines the training lines
 * @param options the training options (seed, trees, sample size, alert rate)
 * @returns the trained detector, loaded in this thread
 * @throws {Error} when training fails in the worker, or the worker cannot start
 */
export async function trainInWorker(
  lines: readonly string[],
  options: WorkerTrainOptions = {},
): Promise<Detector> {
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
      worker.postMessage({ lines, options });
    });
    if ("error" in reply) throw new Error(`Training failed in the worker: ${reply.error}`);
    return Detector.fromBytes(reply.bytes);
  } finally {
    worker.terminate();
  }
}
