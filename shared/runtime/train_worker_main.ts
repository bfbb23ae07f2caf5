/**
 * The worker behind {@linkcode trainModelInWorker}: runs one training job per
 * message and answers with the model (or the error).
 *
 * @module
 */

import { type TrainJob, trainModel, type TrainWorkerReply } from "./train_worker.ts";

const scope = globalThis as unknown as {
  onmessage: ((e: MessageEvent<TrainJob>) => void) | null;
  postMessage(message: TrainWorkerReply, transfer?: Transferable[]): void;
};

scope.onmessage = async (e) => {
  try {
    const model = await trainModel(e.data);
    scope.postMessage({ model }, [model.blob.buffer as ArrayBuffer]);
  } catch (error) {
    scope.postMessage({
      error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
    });
  }
};
