/**
 * The error a caller gets for a model blob that cannot be read.
 *
 * @module
 */

/**
 * Thrown by `Detector.fromBytes()` when a blob is not a tailwise model, has a
 * format version this code cannot read, fails its checksum or is truncated.
 */
export class ModelFormatError extends Error {
  /**
   * @param message What is wrong with the blob.
   * @param options The underlying error, if any.
   */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ModelFormatError";
  }
}
