/**
 * The consumer groups on the log stream, named once for every function, the
 * one-process start and the api's lag report.
 *
 * @module
 */

/** The consumer group of the ingest function. */
export const INGEST_GROUP = "ingest";

/** The consumer group of the score function. */
export const SCORE_GROUP = "score";

/** The consumer groups whose lag the api's `/metrics` and health report. */
export const REPORTED_GROUPS: readonly string[] = [INGEST_GROUP, SCORE_GROUP];
