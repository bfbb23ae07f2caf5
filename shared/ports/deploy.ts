/**
 * The deploy: a service's image changed. collect appends one record per
 * change to the deploys stream (`DEPLOY_STREAM`), once whatever the number of
 * collectors that see it; the api lists them and builds a report per deploy,
 * train retrains the service once the new version has enough lines, and the
 * dashboard shows them on its timeline. This file owns the record's encoding
 * into stream fields.
 *
 * @module
 */

import type { Fields } from "./log_entry.ts";

/** One change of a service's image. */
export interface Deploy {
  /** Its id in the deploys stream (empty until appended). */
  id: string;
  /** The model key of the service (see `modelKey`). */
  container: string;
  /** The image id (`sha256:...`) of the new version. */
  version: string;
  /** The image as the container names it (tag or digest reference), e.g. `shop/web:1.4`. */
  image: string;
  /** The image id of the version before. */
  previousVersion: string;
  /** The image of the version before. */
  previousImage: string;
  /** When the first container of the new version was created (ms since the epoch). */
  at: number;
  /** The container the change was seen on. */
  containerName: string;
  /** Its full id. */
  containerId: string;
}

/**
 * Encodes a deploy as stream fields.
 *
 * @param d the deploy
 * @returns its fields (without its id)
 */
export function deployToFields(d: Deploy): Fields {
  return {
    container: d.container,
    version: d.version,
    image: d.image,
    previousVersion: d.previousVersion,
    previousImage: d.previousImage,
    at: String(d.at),
    containerName: d.containerName,
    containerId: d.containerId,
  };
}

/**
 * Decodes stream fields into a deploy; missing fields get neutral values.
 *
 * @param id the message's id in the deploys stream
 * @param f its fields
 * @returns the deploy
 */
export function fieldsToDeploy(id: string, f: Fields): Deploy {
  const at = Number(f.at);
  return {
    id,
    container: f.container ?? "",
    version: f.version ?? "",
    image: f.image ?? "",
    previousVersion: f.previousVersion ?? "",
    previousImage: f.previousImage ?? "",
    at: Number.isFinite(at) ? at : Number(id.slice(0, id.indexOf("-"))),
    containerName: f.containerName ?? "",
    containerId: f.containerId ?? "",
  };
}
