/**
 * The collect function: follows the logs of every container of a Docker
 * engine and appends each line, once and in order per container, to the log
 * stream.
 *
 * Trigger: Docker events (`start`, `die`, `destroy`, and `oom`, `kill`,
 * `health_status` for the lifecycle anomalies and deploys of
 * {@linkcode ContainerWatch}) and one followed log stream per container
 * (`follow`, `timestamps`). This file is the Docker source: it reads
 * (frames, the checkpoint's skip, positions) and hands each container's
 * lines to a channel of the one source pipeline
 * (`shared/sources/pipeline.ts`), which assembles them (16 KiB records
 * joined, lines cut at the cap), groups multi-line events, builds the
 * entries and appends them in pipelined batches, each written atomically
 * with the checkpoint of its containers (`<ts> <count>`: the newest Docker
 * timestamp sent and how many lines with that timestamp were sent). A
 * (re)attach asks Docker for the lines `since` that timestamp and skips the
 * ones the checkpoint counts: no line lost, none sent twice.
 *
 * When the stream refuses an append as out of order, Redis lost what it had
 * confirmed (it restarted empty, or from an older snapshot): the collector
 * logs it once, drops what it held, starts a new append sequence and
 * re-reads every container it follows from the checkpoint Redis still has
 * (from the start of its log when the checkpoint is gone), so what Redis
 * lost is written again.
 *
 * @module
 */

import type Docker from "dockerode";
import { DockerFrameDemuxer, type FrameStream } from "../../shared/sources/docker/docker_frames.ts";
import {
  type DockerDial,
  dockerDial,
  DockerLogReader,
} from "../../shared/sources/docker/docker_log_reader.ts";
import {
  MULTILINE_LABEL,
  type MultilineMode,
  parseMultilineMode,
} from "../../shared/sources/multiline.ts";
import { modelKey, tsToNanos } from "../../shared/ports/log_entry.ts";
import type { LogStream } from "../../shared/ports/log_stream.ts";
import { serviceKey, SWARM_SERVICE_LABEL } from "../../shared/ports/service_key.ts";
import type { Logger } from "../../shared/runtime/logger.ts";
import type { StoreLost } from "../../shared/sources/append_batcher.ts";
import { SourcePipeline, type SourcePipelineOptions } from "../../shared/sources/pipeline.ts";
import { ContainerWatch, type DockerEvent, type LineRing } from "./container_watch.ts";
import type { AlertSink } from "../../shared/ports/alert_sink.ts";
import type { IncidentManager } from "../../shared/runtime/incidents.ts";
import { sleep } from "../../shared/runtime/sleep.ts";

/** What {@linkcode collect} works with. */
export interface CollectDeps {
  /** A dockerode client of the engine to follow. */
  docker: Docker;
  /** Where entries and checkpoints go. */
  log: LogStream;
  /** Where the collector reports what it does. */
  logger: Logger;
  /** Stops the collector: it stops reading, writes what it holds and returns. */
  signal: AbortSignal;
  /** Where lifecycle anomalies are alerted, if anywhere (they always go to the anomalies stream). */
  alerts?: AlertSink | null;
  /** With `ALERT_MODE=incident`: lifecycle anomalies join their service's incident. */
  incidents?: IncidentManager | null;
}

/**
 * Settings of {@linkcode collect} (the `collect` and `streams` parts of the
 * config): the source pipeline's (stream or its shards, MAXLEN, line cap,
 * batch and buffer sizes, appends in flight, multi-line grouping for a
 * container without the `tailwise.multiline.start` label) and the Docker
 * source's own. With `streams`, each container goes to the shard of its
 * model key, with its checkpoint in the shard's slot.
 */
export interface CollectOptions extends
  Partial<
    Omit<SourcePipelineOptions, "sequencePrefix" | "onStoreLost" | "multiline" | "maxBackoffMs">
  > {
  /**
   * How lines join into events for a container without the
   * `tailwise.multiline.start` label: `auto`, `off`, or a regular expression.
   * @default "auto"
   */
  multiline?: string;
  /**
   * Prefix of the per-container checkpoint keys.
   * @default "tailwise:collect:ckpt:"
   */
  checkpointPrefix?: string;
  /**
   * Containers not to follow (full or short ids), e.g. the collector's own.
   * @default []
   */
  excludeContainers?: readonly string[];
  /**
   * Longest wait for the last appends when stopping, in ms.
   * @default 10000
   */
  drainTimeoutMs?: number;
  /**
   * Longest wait between reconnects to the engine, in ms.
   * @default 5000
   */
  maxBackoffMs?: number;
  /**
   * The anomalies stream, for lifecycle anomalies.
   * @default "tailwise:anomalies"
   */
  anomalyStream?: string;
  /**
   * The deploys stream.
   * @default "tailwise:deploys"
   */
  deployStream?: string;
  /**
   * Raise lifecycle anomalies (OOM kill, crash exit, unhealthy, restart loop).
   * @default true
   */
  lifecycle?: boolean;
  /**
   * Record deploys (a service's image changed).
   * @default true
   */
  deploys?: boolean;
  /**
   * Last lines kept per container and attached to its lifecycle anomalies.
   * @default 20
   */
  lastLines?: number;
}

/** What a collector did, returned when it stops. */
export interface CollectSummary {
  /** Entries written to the log stream. */
  written: number;
  /** Entries read but not written when it stopped (read again by the next run). */
  dropped: number;
  /** Times the stream lost state and the collector re-read from Docker. */
  recoveries: number;
}

interface _Position {
  ts: string;
  count: number;
}

interface _Meta {
  multiline: MultilineMode;
  containerId: string;
  containerName: string;
  key: string;
  image: string;
  service?: string;
  task?: string;
  node?: string;
}

/**
 * Follows every container of the engine until `deps.signal` aborts.
 *
 * @param deps the Docker client, log stream, logger and stop signal
 * @param options stream name, limits and batch sizes
 * @returns what it wrote, once stopped and drained
 */
export async function collect(
  deps: CollectDeps,
  options: CollectOptions = {},
): Promise<CollectSummary> {
  const collector = new _Collector(deps, options);
  return await collector.run();
}

class _Collector {
  readonly deps: CollectDeps;
  readonly pipeline: SourcePipeline;
  readonly maxBackoffMs: number;
  readonly positions = new Map<string, _Position>();
  readonly tails = new Map<string, _Tail>();
  readonly dial: DockerDial;
  readonly multiline: MultilineMode;
  readonly #badLabels = new Set<string>();
  readonly #prefix: string;
  readonly #exclude: readonly string[];
  readonly #drainTimeoutMs: number;
  readonly #unreadable = new Set<string>();
  readonly watch: ContainerWatch;
  #events: NodeJS.ReadableStream | null = null;
  #lastEventSec = 0;
  /** Bumped when the stream lost state: lines read before it are dropped. */
  epoch = 0;

  constructor(deps: CollectDeps, options: CollectOptions) {
    this.deps = deps;
    this.dial = dockerDial(deps.docker);
    this.maxBackoffMs = options.maxBackoffMs ?? 5000;
    this.multiline = parseMultilineMode(options.multiline);
    this.#prefix = options.checkpointPrefix ?? "tailwise:collect:ckpt:";
    this.#exclude = options.excludeContainers ?? [];
    this.#drainTimeoutMs = options.drainTimeoutMs ?? 10_000;
    this.watch = new ContainerWatch({
      docker: deps.docker,
      log: deps.log,
      logger: deps.logger,
      alerts: deps.alerts ?? null,
      incidents: deps.incidents ?? null,
      settled: (id) => this.tails.get(id)?.done ?? Promise.resolve(),
    }, {
      anomalyStream: options.anomalyStream,
      deployStream: options.deployStream,
      lifecycle: options.lifecycle,
      deploys: options.deploys,
      lastLines: options.lastLines,
      excludeContainers: this.#exclude,
    });
    this.pipeline = new SourcePipeline(deps.log, deps.logger, {
      stream: options.stream ?? "tailwise:logs",
      ...(options.streams ? { streams: options.streams } : {}),
      maxLen: options.maxLen ?? 0,
      maxLineBytes: options.maxLineBytes,
      batchLines: options.batchLines,
      bufferLines: options.bufferLines,
      flushMs: options.flushMs,
      appendsInFlight: options.appendsInFlight,
      maxBackoffMs: this.maxBackoffMs,
      // One sequence per process and shard, beside the shard's stream.
      sequencePrefix: this.#prefix,
      // One shard's stream lost state: every container is re-read from its
      // checkpoint (those of the other shards are intact: nothing twice).
      onStoreLost: (lost) => this.#storeLost(lost),
      multiline: this.multiline,
      multilineFlushMs: options.multilineFlushMs,
      multilineQuietMs: options.multilineQuietMs,
      multilineMaxLines: options.multilineMaxLines,
      multilineMaxBytes: options.multilineMaxBytes,
    });
  }

  /** The shard of a container (by its model key). */
  shardOf(meta: _Meta): number {
    return this.pipeline.shardOf(modelKey(meta));
  }

  /** Every key a container's checkpoint may be under: its shard's first, then the others. */
  #checkpointKeys(id: string, shard = 0): string[] {
    const keys = [this.checkpointKey(id, shard)];
    for (let i = 0; i < this.pipeline.streams.length; i++) {
      if (i !== shard) keys.push(this.checkpointKey(id, i));
    }
    // The name before sharding.
    if (!keys.includes(this.#prefix + id)) keys.push(this.#prefix + id);
    return keys;
  }

  /**
   * A container's saved checkpoint: under its shard's key, else under
   * another shard's or the unsharded name (the shard count or the model key
   * changed), so a reshard does not read a container again from the start.
   */
  async savedPosition(id: string, shard: number): Promise<string | null> {
    for (const key of this.#checkpointKeys(id, shard)) {
      const saved = await this.deps.log.getState(key);
      if (saved !== null) return saved;
    }
    return null;
  }

  /** The stream lost state: re-read every container from its checkpoint in the stream. */
  #storeLost(lost: StoreLost): void {
    this.epoch++;
    const ids = new Set([...this.positions.keys(), ...this.tails.keys()]);
    this.positions.clear();
    this.deps.logger.warn(
      "the log stream lost appends it had confirmed (Redis restarted empty or from an older " +
        "snapshot); re-reading from Docker what it no longer has",
      {
        refused: lost.error.message,
        discardedLines: lost.discarded,
        containers: ids.size,
        recovery: this.epoch,
      },
    );
    for (const id of ids) {
      const tail = this.tails.get(id);
      if (tail) tail.restart();
      else this.attach(id);
    }
  }

  get signal(): AbortSignal {
    return this.deps.signal;
  }

  checkpointKey(id: string, shard: number): string {
    return this.pipeline.keyBeside(shard, this.#prefix, id);
  }

  async run(): Promise<CollectSummary> {
    const { signal, logger } = this.deps;
    let stoppedAt = 0;
    let aborted: () => void = () => {};
    const whenAborted = new Promise<void>((resolve) => aborted = resolve);
    const onAbort = () => {
      stoppedAt ||= Date.now();
      this.#events?.removeAllListeners("data");
      _destroy(this.#events);
      for (const tail of this.tails.values()) tail.stop();
      aborted();
    };
    if (signal.aborted) onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      // A call to Redis or Docker under way (e.g. waiting for Redis to come
      // back) must not hold up the stop.
      await Promise.race([this.#watch(), whenAborted]);
    } finally {
      signal.removeEventListener("abort", onAbort);
      onAbort();
    }
    // The whole stop, followers and last appends, fits in drainTimeoutMs.
    const deadline = stoppedAt + this.#drainTimeoutMs;
    await _within(
      Promise.allSettled([...this.tails.values()].map((t) => t.done)),
      deadline - Date.now(),
    );
    await _within(this.watch.close(), deadline - Date.now());
    const complete = await this.pipeline.close(Math.max(0, deadline - Date.now()));
    const { written, pushed, discarded } = this.pipeline;
    const summary = { written, dropped: pushed - written - discarded, recoveries: this.epoch };
    if (!complete) logger.warn("stopped before every entry was written", summary);
    logger.info("collector stopped", summary);
    return summary;
  }

  /** Subscribes to events, attaches to all, and reconnects after the engine went away. */
  async #watch(): Promise<void> {
    const { docker, logger, signal } = this.deps;
    let backoff = 100;
    let connected = true;
    while (!signal.aborted) {
      try {
        // After a reconnect, the events missed meanwhile too (handling one
        // twice is harmless: anomalies and deploys are written once).
        const since = this.#lastEventSec > 0 ? { since: this.#lastEventSec } : {};
        const events = await docker.getEvents({
          ...since,
          filters: { type: ["container"], event: [...ContainerWatch.EVENTS] },
        }) as unknown as NodeJS.ReadableStream;
        this.#events = events;
        if (signal.aborted) break;
        const ended = _eventsEnded(events, (e) => this.#onEvent(e));
        await this.#attachAll();
        if (!connected) logger.info("reconnected to the Docker engine", {});
        connected = true;
        backoff = 100;
        await ended;
      } catch (e) {
        if (signal.aborted) break;
        if (connected) logger.warn("lost the Docker engine; reconnecting", { error: e });
        connected = false;
      } finally {
        _destroy(this.#events);
        this.#events = null;
      }
      if (signal.aborted) break;
      connected = false;
      await sleep(backoff, signal);
      backoff = Math.min(backoff * 2, this.maxBackoffMs);
    }
  }

  async #attachAll(): Promise<void> {
    const list = await this.deps.docker.listContainers({ all: true });
    for (const c of list) {
      if (c.State === "running") {
        this.attach(c.Id);
      } else if (!this.tails.has(c.Id) && !this.#unreadable.has(c.Id)) {
        // A container that stopped while no collector ran: read what it
        // wrote after its checkpoint.
        if (this.positions.has(c.Id) || await this.savedPosition(c.Id, 0) !== null) {
          this.attach(c.Id);
        }
      }
    }
  }

  #onEvent(e: DockerEvent): void {
    const id = e.Actor?.ID ?? e.id;
    const action = e.Action ?? e.status;
    if (!id) return;
    if (e.time) this.#lastEventSec = Math.max(this.#lastEventSec, e.time);
    this.watch.event(e);
    if (action === "start") this.attach(id);
    else if (action === "destroy") this.#forget(id);
  }

  attach(id: string): void {
    if (this.signal.aborted) return;
    if (this.#exclude.some((x) => id.startsWith(x))) return;
    if (this.#unreadable.has(id)) return;
    const tail = this.tails.get(id);
    if (tail) {
      tail.wake();
      return;
    }
    const t = new _Tail(this, id);
    this.tails.set(id, t);
    t.done = t.run().catch((e) => {
      this.deps.logger.error("follower failed", { container: id, error: e });
    }).finally(() => {
      if (this.tails.get(id) === t) this.tails.delete(id);
      if (t.destroyed) this.#forget(id);
    });
  }

  /** A container's grouping: its `tailwise.multiline.start` label, else the default. */
  multilineOf(id: string, name: string, label: string | undefined): MultilineMode {
    if (label === undefined || label.trim() === "") return this.multiline;
    try {
      return parseMultilineMode(label);
    } catch (e) {
      if (!this.#badLabels.has(id)) {
        this.#badLabels.add(id);
        this.deps.logger.warn("ignoring a bad multi-line label; using the default grouping", {
          container: name,
          error: e,
        });
      }
      return this.multiline;
    }
  }

  /** Reports a container whose logs cannot be read, once. */
  unreadable(id: string, meta: _Meta, driver: string, error: unknown): void {
    if (this.#unreadable.has(id)) return;
    this.#unreadable.add(id);
    this.deps.logger.warn("cannot read the logs of this container; not following it", {
      container: meta.containerName,
      containerId: id,
      logDriver: driver,
      error,
    });
  }

  #forget(id: string): void {
    const tail = this.tails.get(id);
    if (tail) {
      tail.destroyed = true;
      return;
    }
    this.#unreadable.delete(id);
    this.positions.delete(id);
    this.pipeline.whenFlushed().then(
      async () => {
        if (this.tails.has(id) || this.signal.aborted) return;
        await this.deps.log.deleteState(this.#checkpointKeys(id));
      },
    ).catch(() => {
      // Best effort: a stale checkpoint of a removed container is harmless.
    });
  }
}

/** Follows one container, re-attaching after restarts and cuts. */
class _Tail {
  readonly #c: _Collector;
  readonly id: string;
  done: Promise<void> = Promise.resolve();
  destroyed = false;
  #gen = 0;
  #stopped = false;
  #reader: DockerLogReader | null = null;
  #wakeSleep: (() => void) | null = null;
  #onStop: () => void = () => {};
  readonly #whenStopped = new Promise<void>((resolve) => this.#onStop = resolve);

  constructor(collector: _Collector, id: string) {
    this.#c = collector;
    this.id = id;
  }

  /** Drops the current read and reads again from the checkpoint (the stream lost state). */
  restart(): void {
    this.#gen++;
    this.#reader?.close();
    this.#wakeSleep?.();
  }

  /** Makes the follower look at its container again now (an event arrived). */
  wake(): void {
    this.#gen++;
    this.#wakeSleep?.();
  }

  stop(): void {
    this.#stopped = true;
    this.#onStop();
    this.#reader?.close();
    this.#wakeSleep?.();
  }

  async run(): Promise<void> {
    const c = this.#c;
    const { docker, logger } = c.deps;
    const container = docker.getContainer(this.id);
    let backoff = 100;
    let mustRead = true;
    while (!this.#stopped && !c.signal.aborted) {
      const gen = this.#gen;
      const epoch = c.epoch;
      let info: Docker.ContainerInspectInfo;
      try {
        info = await container.inspect();
      } catch (e) {
        if (_status(e) === 404) return;
        mustRead = true;
        await this.#sleep(backoff);
        backoff = Math.min(backoff * 2, c.maxBackoffMs);
        continue;
      }
      if (!mustRead && !info.State.Running && gen === this.#gen) return;
      c.watch.inspected(info);
      const meta = _meta(info);
      meta.multiline = c.multilineOf(
        this.id,
        meta.containerName,
        info.Config.Labels?.[MULTILINE_LABEL],
      );
      let position = c.positions.get(this.id);
      if (!position) {
        let saved: string | null;
        try {
          saved = await c.savedPosition(this.id, c.shardOf(meta));
        } catch (e) {
          if (this.#stopped || c.signal.aborted) return;
          logger.warn("cannot read the checkpoint; retrying", { containerId: this.id, error: e });
          await this.#sleep(backoff);
          backoff = Math.min(backoff * 2, c.maxBackoffMs);
          continue;
        }
        // Read before the stream lost state: it may name lines it no longer has.
        if (epoch !== c.epoch) continue;
        position = _parsePosition(saved);
        c.positions.set(this.id, position);
      }
      let result = await this.#follow(container, info, meta, position, true, epoch);
      if (result === "ended") {
        // Docker 20.10's follow can end before the last lines of a container
        // that just stopped; a plain read from the position gets what it
        // left (the checkpoint's skip keeps every line once).
        const before = position.ts + " " + position.count;
        result = await this.#follow(container, info, meta, position, false, epoch);
        if (result === "ended" && before !== position.ts + " " + position.count) {
          logger.debug("read lines the followed log stream missed", {
            container: meta.containerName,
          });
        }
      }
      if (result === "unreadable") return;
      if (result === "cut") {
        mustRead = true;
        await this.#sleep(backoff);
        backoff = Math.min(backoff * 2, c.maxBackoffMs);
        continue;
      }
      backoff = 100;
      mustRead = false;
      logger.debug("log stream ended", { container: meta.containerName });
    }
  }

  async #sleep(ms: number): Promise<void> {
    if (this.#stopped) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wakeSleep = done;
    });
    this.#wakeSleep = null;
  }

  /**
   * Reads the container's logs from its position until the stream ends,
   * waiting for new lines when `follow`.
   * "ended": the container's run is over and everything was read; "cut": the
   * stream broke off; "unreadable": its log driver cannot be read.
   */
  async #follow(
    container: Docker.Container,
    info: Docker.ContainerInspectInfo,
    meta: _Meta,
    position: _Position,
    follow: boolean,
    epoch: number,
  ): Promise<"ended" | "cut" | "unreadable"> {
    const c = this.#c;
    const { logger } = c.deps;
    const pipeline = c.pipeline;
    const shard = c.shardOf(meta);
    const key = c.checkpointKey(this.id, shard);
    const tty = info.Config.Tty === true;
    const since = position.ts === "" ? undefined : _since(position.ts);
    let reader: DockerLogReader;
    try {
      reader = await DockerLogReader.open(c.dial, this.id, { since, follow });
    } catch (e) {
      if (_unreadable(e)) {
        c.unreadable(this.id, meta, info.HostConfig.LogConfig?.Type ?? "unknown", e);
        return "unreadable";
      }
      return "cut";
    }
    if (this.#stopped) {
      reader.close();
      return "cut";
    }
    this.#reader = reader;

    // The container's last lines, for the lifecycle anomalies (an OOM kill shows them).
    const ring: LineRing = c.watch.ring(this.id);
    // Lines at the checkpoint's timestamp that it counts were sent before.
    let skipping = position.ts !== "";
    const skipTs = position.ts;
    let skipLeft = position.count;

    // Lines read: `cur` counts them (the position after the last line read);
    // `position` moves only when an event is handed to the append, so the
    // lines of an event still open are read again after a cut or a restart.
    const cur: _Position = { ts: position.ts, count: position.count };
    const sink = pipeline.channel<_Position>({
      checkpointKey: key,
      shard,
      meta: {
        containerId: meta.containerId,
        containerName: meta.containerName,
        image: meta.image,
        key: meta.key,
        ...(meta.service !== undefined ? { service: meta.service } : {}),
        ...(meta.task !== undefined ? { task: meta.task } : {}),
        ...(meta.node !== undefined ? { node: meta.node } : {}),
      },
      multiline: meta.multiline,
      checkpoint: (p) => `${p.ts} ${p.count}`,
      // A line read again (an event still open when a read ended) is kept once.
      tap: (text, line) => {
        const after = _compareTs(line.ts, ring.lastTs);
        if (after > 0 || (after === 0 && line.seq > ring.lastSeq)) {
          ring.push(text);
          ring.lastTs = line.ts;
          ring.lastSeq = line.seq;
        }
      },
      onEvent: (p) => {
        position.ts = p.ts;
        position.count = p.count;
      },
    });

    const onLine = (
      streamName: "stdout" | "stderr",
      ts: string,
      bytes: Uint8Array,
      truncated: boolean,
    ) => {
      // Read before the stream lost state: dropped, and read again.
      if (epoch !== c.epoch) return;
      if (skipping) {
        const cmp = _compareTs(ts, skipTs);
        if (cmp < 0) return;
        if (cmp === 0 && skipLeft > 0) {
          skipLeft--;
          return;
        }
        skipping = false;
      }
      const cmp = _compareTs(ts, cur.ts);
      let seq = 0;
      if (cmp > 0) {
        cur.ts = ts;
        cur.count = 1;
      } else if (cmp === 0) {
        seq = cur.count++;
      }
      sink.line({
        stream: streamName,
        ts,
        seq,
        bytes,
        truncated,
        position: { ts: cur.ts, count: cur.count },
      });
    };
    const out = pipeline.assembler((ts, b, t) => onLine("stdout", ts, b, t), { framed: !tty });
    const err = pipeline.assembler((ts, b, t) => onLine("stderr", ts, b, t));
    const demux = new DockerFrameDemuxer((s: FrameStream, bytes, end) => {
      if (s === 1) out.push(bytes, end);
      else if (s === 2) err.push(bytes, end);
      else if (s === 3 && end) {
        logger.warn("the engine reported an error in the log stream", {
          container: meta.containerName,
          error: new TextDecoder().decode(bytes),
        });
      }
    });
    // The lines of one socket read are decoded at once (Docker sends each
    // line as an HTTP chunk of its own: onData runs once per line).
    const onData = tty
      ? (chunk: Uint8Array) => {
        sink.touch();
        sink.openBatch();
        out.push(chunk);
      }
      : (chunk: Uint8Array) => {
        sink.touch();
        sink.openBatch();
        demux.push(chunk);
      };
    const read = async () => {
      try {
        return await reader.read(onData);
      } finally {
        sink.closeBatch();
      }
    };

    const startedAt = info.State.StartedAt;
    let failure: unknown = null;
    try {
      while (await read()) {
        if (pipeline.full && !this.#stopped) {
          logger.debug("reading paused: the append buffer is full", {
            container: meta.containerName,
          });
          sink.pause();
          await Promise.race([pipeline.whenRoom(), this.#whenStopped]);
          sink.resume();
        }
      }
    } catch (e) {
      failure = e;
    } finally {
      reader.close();
      this.#reader = null;
    }
    if (failure !== null && !this.#stopped) {
      logger.warn("log stream broke off; re-attaching", {
        container: meta.containerName,
        error: failure,
      });
    }
    if (failure === null && !this.#stopped) {
      // Ended: the run is over when the container stopped or started anew.
      // A last line without its newline is sent only when nothing can follow
      // it: after a follow, the drain read from the checkpoint reads it again,
      // and a container running again may still finish it.
      let gone = false;
      let over = false;
      try {
        const now = await container.inspect();
        over = !now.State.Running || now.State.StartedAt !== startedAt;
        gone = !now.State.Running && !follow;
      } catch (e) {
        over = gone = _status(e) === 404;
      }
      if (over) {
        if (gone) {
          out.end();
          err.end();
          sink.end();
        } else {
          out.discard();
          err.discard();
          sink.discard();
        }
        return "ended";
      }
    }
    out.discard();
    err.discard();
    sink.discard();
    return "cut";
  }
}

/** Waits for `p`, at most `ms`. */
async function _within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([p, new Promise((r) => timer = setTimeout(r, Math.max(0, ms)))]);
  clearTimeout(timer);
}

function _meta(info: Docker.ContainerInspectInfo): _Meta {
  const labels = info.Config.Labels ?? {};
  const containerName = info.Name.replace(/^\//, "");
  const meta: _Meta = {
    multiline: { kind: "auto" },
    containerId: info.Id,
    containerName,
    key: serviceKey(labels, containerName),
    image: info.Config.Image,
  };
  const service = labels[SWARM_SERVICE_LABEL];
  const task = labels["com.docker.swarm.task.id"];
  const node = labels["com.docker.swarm.node.id"];
  if (service) meta.service = service;
  if (task) meta.task = task;
  if (node) meta.node = node;
  return meta;
}

function _parsePosition(saved: string | null): _Position {
  if (!saved) return { ts: "", count: 0 };
  const m = /^(\S+) (\d+)$/.exec(saved);
  if (!m) return { ts: "", count: 0 };
  try {
    tsToNanos(m[1]!);
  } catch {
    return { ts: "", count: 0 };
  }
  return { ts: m[1]!, count: Number(m[2]) };
}

/** Docker's `since` (seconds.nanoseconds) of a timestamp. */
function _since(ts: string): string {
  const ns = tsToNanos(ts);
  return `${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, "0")}`;
}

/** Orders two Docker timestamps; "" is before all. */
function _compareTs(a: string, b: string): number {
  if (
    a.length === b.length && a.charCodeAt(a.length - 1) === 90 && b.charCodeAt(b.length - 1) === 90
  ) {
    return a < b ? -1 : a > b ? 1 : 0;
  }
  if (b === "") return a === "" ? 0 : 1;
  if (a === "") return -1;
  const x = tsToNanos(a);
  const y = tsToNanos(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function _status(e: unknown): number | undefined {
  const code = (e as { statusCode?: unknown } | null)?.statusCode;
  return typeof code === "number" ? code : undefined;
}

function _unreadable(e: unknown): boolean {
  const msg = e instanceof Error ? e.message : String(e);
  return _status(e) === 501 || /does not support reading/i.test(msg);
}

function _eventsEnded(
  events: NodeJS.ReadableStream,
  onEvent: (e: DockerEvent) => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let rest = "";
    const decoder = new TextDecoder();
    events.on("data", (chunk: Uint8Array) => {
      rest += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = rest.indexOf("\n")) >= 0) {
        const text = rest.slice(0, nl).trim();
        rest = rest.slice(nl + 1);
        if (text === "") continue;
        try {
          onEvent(JSON.parse(text));
        } catch {
          // not an event
        }
      }
    });
    events.on("end", () => resolve());
    events.on("close", () => resolve());
    events.on("error", (e: unknown) => reject(e));
  });
}

function _destroy(stream: NodeJS.ReadableStream | null): void {
  if (!stream) return;
  try {
    (stream as unknown as { destroy?: () => void }).destroy?.();
  } catch {
    // already closed
  }
}
