/**
 * The registry blob of a service: the line model (`TWDM`), optionally
 * followed by its rate model (`TWRM`). A blob without a rate section is a
 * plain line model, so models stored before rate models existed still load.
 *
 * @example
 * ```ts
 * import { bundleModel, splitModel } from "./model_bundle.ts";
 * declare const lineModel: Uint8Array, rateModel: Uint8Array;
 * const blob = bundleModel(lineModel, rateModel);
 * const { detector, rates } = splitModel(blob); // the two blobs again
 * ```
 *
 * @module
 */

import { ModelFormatError } from "./model_format_error.ts";

const _HEADER = 12;

/** The two parts of a registry blob. */
export interface ModelParts {
  /** The line model blob (for `Detector.fromBytes`). */
  detector: Uint8Array;
  /** The rate model blob (for `RateModel.fromBytes`), when the service has one. */
  rates?: Uint8Array;
}

/**
 * Join a line model and a rate model into one registry blob.
 *
 * @param detector The line model blob (`Detector.toBytes()`).
 * @param rates The rate model blob (`RateModel.toBytes()`), if any.
 * @returns The blob.
 */
export function bundleModel(detector: Uint8Array, rates?: Uint8Array): Uint8Array {
  if (rates === undefined || rates.length === 0) return detector;
  const out = new Uint8Array(detector.length + rates.length);
  out.set(detector);
  out.set(rates, detector.length);
  return out;
}

/**
 * Split a registry blob into its line model and its rate model.
 *
 * @param blob The blob from the registry.
 * @returns The parts (views into `blob`).
 * @throws {ModelFormatError} If the blob is shorter than its line model's
 * frame says or what follows is not a rate model.
 */
export function splitModel(blob: Uint8Array): ModelParts {
  if (blob.length < _HEADER + 4) return { detector: blob };
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const end = _HEADER + view.getUint32(8, true) + 4;
  if (end >= blob.length) return { detector: blob };
  const rates = blob.subarray(end);
  if (rates[0] !== 0x54 || rates[1] !== 0x57 || rates[2] !== 0x52 || rates[3] !== 0x4d) {
    throw new ModelFormatError(
      `Cannot read model: ${rates.length} bytes after the line model are not a TWRM rate model`,
    );
  }
  return { detector: blob.subarray(0, end), rates };
}
