/**
 * The model registry port: versioned, checksummed model blobs per container,
 * a current pointer that moves atomically, the last K versions kept, rollback
 * and a change notice so scorers pick up a new model on their next batch.
 *
 * Adapters: `RedisModelRegistry` (real) and `SqliteModelRegistry` (the data
 * dir's SQLite database); both pass `tests/shared/ports/model_registry_conformance.ts`.
 * `openModelRegistry(config)` picks one.
 *
 * Container names are hostile input: any well-formed string of 1 to 1024
 * UTF-8 bytes is accepted and adapters encode it before it reaches a key or a
 * path ({@linkcode checkContainerName}).
 *
 * @module
 */

/**
 * Where a version stands: `current` is the one scorers use; `candidate` was
 * never promoted (e.g. held back by the shadow check); `retired` was current
 * once and has been replaced or rolled back.
 */
export type ModelStatus = "current" | "candidate" | "retired";

/** What the registry knows about one model version. */
export interface ModelMeta {
  /** The container's name, as given to {@linkcode ModelRegistry.put}. */
  container: string;
  /** Version number, monotonic per container, starting at 1. */
  version: number;
  /** When the model was trained (ISO 8601). */
  trainedAt: string;
  /** Lines used for training. */
  lines: number;
  /** The calibrated score threshold. */
  threshold: number;
  /** SHA-256 of the blob, lowercase hex. */
  checksum: string;
  /** Size of the blob in bytes. */
  size: number;
  /** Where the version stands. */
  status: ModelStatus;
  /** When it was first made current (ISO 8601); absent for a candidate. */
  promotedAt?: string;
  /** When a rollback moved away from it (ISO 8601); rollback never returns to it. */
  rolledBackAt?: string;
  /** Evaluation figures (e.g. shadow alert rates). */
  evaluation?: Record<string, number>;
  /** Free text, e.g. why a candidate was held back. */
  note?: string;
}

/** The metadata a trainer supplies with a new version. */
export interface NewModelMeta {
  /**
   * When the model was trained (ISO 8601).
   * @default the time of the put
   */
  trainedAt?: string;
  /** Lines used for training. */
  lines: number;
  /** The calibrated score threshold. */
  threshold: number;
  /** Evaluation figures. */
  evaluation?: Record<string, number>;
  /** Free text. */
  note?: string;
}

/** Options of {@linkcode ModelRegistry.put}. */
export interface PutModelOptions {
  /**
   * Make the new version current in the same atomic step; false stores it as
   * a candidate.
   * @default true
   */
  promote?: boolean;
}

/** A change of a container's current version, as {@linkcode ModelRegistry.watch} reports it. */
export interface ModelChange {
  /** The container. */
  container: string;
  /** Its new current version. */
  version: number;
}

/** Versioned model blobs per container. */
export interface ModelRegistry extends AsyncDisposable {
  /**
   * Stores a new version (next number for the container) and, unless
   * `promote: false`, makes it current atomically with the write. Then keeps
   * at most `keepVersions` versions: the newest, the current one always
   * among them.
   *
   * @param container the container's name
   * @param blob the serialized model
   * @param meta what the trainer knows about it
   * @param options whether to promote
   * @returns the stored version's metadata
   * @throws {TypeError} when the container name or the metadata is invalid
   */
  put(
    container: string,
    blob: Uint8Array,
    meta: NewModelMeta,
    options?: PutModelOptions,
  ): Promise<ModelMeta>;
  /**
   * The current version number only: the cheap per-batch check (one read).
   *
   * @param container the container's name
   * @returns the version, or null when the container has no current model
   * @throws {CurrentVersionCorruptError} when the stored pointer is not a version
   */
  currentVersion(container: string): Promise<number | null>;
  /**
   * The current version's metadata.
   *
   * @param container the container's name
   * @returns the metadata, or null when the container has no current model
   */
  current(container: string): Promise<ModelMeta | null>;
  /**
   * A version's blob and metadata, the blob checked against its checksum.
   *
   * @param container the container's name
   * @param version the version; the current one when omitted
   * @returns metadata and blob
   * @throws {ModelNotFoundError} when the version (or a current one) does not exist
   * @throws {ModelCorruptError} when the blob is missing or fails its checksum
   */
  get(container: string, version?: number): Promise<{ meta: ModelMeta; blob: Uint8Array }>;
  /**
   * Metadata of the kept versions, by container name, newest version first.
   *
   * @param container one container; all when omitted
   * @returns the versions
   */
  list(container?: string): Promise<ModelMeta[]>;
  /**
   * Names of the containers with at least one version, sorted.
   *
   * @returns the names
   */
  containers(): Promise<string[]>;
  /**
   * Makes a kept version current (a candidate or an older one); clears its
   * rollback mark.
   *
   * @param container the container's name
   * @param version the version
   * @returns its metadata, now `current`
   * @throws {ModelNotFoundError} when the version is not kept
   */
  promote(container: string, version: number): Promise<ModelMeta>;
  /**
   * Moves the current pointer back to the newest earlier version that was
   * current once and was not rolled back from; marks the version left as
   * rolled back, so a second rollback goes further back.
   *
   * @param container the container's name
   * @returns the metadata of the version now current
   * @throws {ModelNotFoundError} when there is no current version or no earlier good one
   */
  rollback(container: string): Promise<ModelMeta>;
  /**
   * Reports changes of any container's current version until `signal`
   * aborts. A notice is a hint to re-check, not a log: a watcher that was
   * disconnected may miss some, so scorers still call
   * {@linkcode ModelRegistry.currentVersion} per batch.
   *
   * @param signal ends the iteration
   * @returns the changes as they happen
   */
  watch(signal: AbortSignal): AsyncIterable<ModelChange>;
  /**
   * True when the backing store answers.
   *
   * @returns whether it is usable
   */
  ping(): Promise<boolean>;
}

/** Thrown when a container has no such version (or no current one). */
export class ModelNotFoundError extends Error {
  override name = "ModelNotFoundError";
  /** The container asked for. */
  readonly container: string;
  /** The version asked for; null for "the current one". */
  readonly version: number | null;

  /**
   * @param container the container asked for
   * @param version the version asked for; null for the current one
   * @param options a more precise reason and the cause
   */
  constructor(
    container: string,
    version: number | null,
    options: { reason?: string; cause?: unknown } = {},
  ) {
    const what = version === null ? "no current model" : `no model version ${version}`;
    super(
      `Container ${displayContainer(container)} has ${options.reason ?? what}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.container = container;
    this.version = version;
  }
}

/** Thrown when a stored blob is missing or does not match its checksum. */
export class ModelCorruptError extends Error {
  override name = "ModelCorruptError";
  /** The container. */
  readonly container: string;
  /** The corrupt version. */
  readonly version: number;

  /**
   * @param container the container
   * @param version the corrupt version
   * @param detail what is wrong (e.g. the checksums)
   * @param options the cause
   */
  constructor(
    container: string,
    version: number,
    detail: string,
    options: { cause?: unknown } = {},
  ) {
    super(
      `Model version ${version} of container ${displayContainer(container)} is corrupt: ${detail}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.container = container;
    this.version = version;
  }
}

/**
 * A container's current-version pointer that cannot be read as a version
 * (e.g. `abc`, or a key of the wrong type): only that container is affected.
 */
export class CurrentVersionCorruptError extends Error {
  override name = "CurrentVersionCorruptError";
  /** The container. */
  readonly container: string;

  /**
   * @param container the container
   * @param detail what is wrong
   * @param options the cause
   */
  constructor(container: string, detail: string, options: { cause?: unknown } = {}) {
    super(
      `The current version of container ${displayContainer(container)} is unreadable: ${detail}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.container = container;
  }
}

/** Longest container name accepted, in UTF-8 bytes. */
export const MAX_CONTAINER_NAME_BYTES = 1024;

/**
 * Checks a container name before an adapter encodes it: any well-formed
 * string of 1 to {@linkcode MAX_CONTAINER_NAME_BYTES} UTF-8 bytes.
 *
 * @param container the name
 * @returns its UTF-8 bytes
 * @throws {TypeError} when it is not a non-empty well-formed string
 * @throws {RangeError} when it is too long
 */
export function checkContainerName(container: string): Uint8Array {
  if (typeof container !== "string" || container.length === 0) {
    throw new TypeError(
      `Cannot use container name ${JSON.stringify(container)}: expected a non-empty string`,
    );
  }
  if (!container.isWellFormed()) {
    throw new TypeError(
      `Cannot use container name ${displayContainer(container)}: expected well-formed Unicode`,
    );
  }
  const bytes = new TextEncoder().encode(container);
  if (bytes.length > MAX_CONTAINER_NAME_BYTES) {
    throw new RangeError(
      `Cannot use container name ${
        displayContainer(container)
      }: expected at most ${MAX_CONTAINER_NAME_BYTES} bytes, got ${bytes.length}`,
    );
  }
  return bytes;
}

/**
 * A container name made safe for messages and logs: JSON-quoted (control
 * characters escaped) and cut at 120 characters.
 *
 * @param container the name
 * @returns the printable form
 */
export function displayContainer(container: string): string {
  const s = String(container);
  return JSON.stringify(s.length > 120 ? `${s.slice(0, 120)}…` : s);
}

/**
 * Checks the metadata of a new version.
 *
 * @param meta the trainer's metadata
 * @throws {TypeError} naming the first bad field
 */
export function checkNewModelMeta(meta: NewModelMeta): void {
  if (!Number.isInteger(meta.lines) || meta.lines < 0) {
    throw new TypeError(`Cannot store lines ${meta.lines}: expected an integer of at least 0`);
  }
  if (typeof meta.threshold !== "number" || !Number.isFinite(meta.threshold)) {
    throw new TypeError(`Cannot store threshold ${meta.threshold}: expected a finite number`);
  }
  if (meta.trainedAt !== undefined && Number.isNaN(Date.parse(meta.trainedAt))) {
    throw new TypeError(
      `Cannot store trainedAt ${JSON.stringify(meta.trainedAt)}: expected an ISO 8601 time`,
    );
  }
  for (const [k, v] of Object.entries(meta.evaluation ?? {})) {
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new TypeError(
        `Cannot store evaluation ${JSON.stringify(k)} = ${v}: expected a finite number`,
      );
    }
  }
}

/**
 * SHA-256 of a blob as lowercase hex, the registry's checksum.
 *
 * @param blob the bytes
 * @returns 64 hex digits
 */
export async function modelChecksum(blob: Uint8Array): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", blob as Uint8Array<ArrayBuffer>),
  );
  let hex = "";
  for (const b of digest) hex += b.toString(16).padStart(2, "0");
  return hex;
}
