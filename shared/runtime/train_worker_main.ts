/**
 * The worker behind {@linkcode trainInWorker}: trains one detector per
 * message and answers with its bytes (or the error).
 *
 * @module
 */

import { trainDetector } from "../detector/detector.ts";
import type { TrainWorkerReply, WorkerTrainOptions } from "./train_worker.ts";

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<{ lines: string[]; options: WorkerTrainOptions }>) => void) | null;
  postMessage(message: TrainWorkerReply, transfer?: Transferable[]): void;
};

scope.onmessage = async (e) => {
  try {
    const detector = await trainDetector(e.data.lines, e.data.options);
    const bytes = detector.toBytes();
    scope.postMessage({ bytes }, [bytes.buffer as ArrayBuffer]);
  } catch (error) {
    scope.postMessage({
      error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    });
  }
};
