/**
 * The frame of the dashboard's server-rendered side pages (incidents,
 * volume, patterns, service): head with the dashboard's style sheet, the top bar with the brand
 * and Sign out, and the page's own content in `main.board`.
 *
 * @module
 */

import { html } from "hono/html";

/** What a side page puts into the frame. */
export interface PageShell {
  /** Shown after "tailwise · " in the title. */
  title: string;
  /** The class of `<body>` (the page's style scope). */
  bodyClass: string;
  /** Style sheets after /ui/dashboard.css. */
  styles: string[];
  /** Scripts, loaded deferred. */
  scripts: string[];
  /** Links in the top bar after the brand. */
  links?: { href: string; text: string }[];
  /** When set, `<body data-service>` (the page's script reads it). */
  service?: string;
  /** The content of `main.board`. */
  body: unknown;
}

/**
 * Renders a side page in the dashboard's frame.
 *
 * @param page its title, assets, links and content
 * @returns the whole HTML document
 */
export function pageShell(page: PageShell) {
  const body = page.service === undefined
    ? html`<body class="${page.bodyClass}">`
    : html`<body class="${page.bodyClass}" data-service="${page.service}">`;
  return html`
    <!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="referrer" content="no-referrer">
        <meta name="color-scheme" content="dark light">
        <title>tailwise · ${page.title}</title>
        <link rel="stylesheet" href="/ui/dashboard.css">
        ${page.styles.map((href) => html`<link rel="stylesheet" href="${href}">`)}
        ${page.scripts.map((src) => html`<script src="${src}" defer></script>`)}
      </head>
      ${body}
        <header class="top">
          <a class="brand" href="/"><span>tailwise</span></a>
          ${(page.links ?? []).map((l) => html`<a href="${l.href}">${l.text}</a>`)}
          <div class="spacer"></div>
          <form method="post"
            action="/logout"><button type="submit" class="ghost">Sign out</button></form>
        </header>
        <main class="board">${page.body}</main>
      </body>
    </html>
  `;
}
