import assert from "node:assert/strict";
import { Hono } from "hono";
import { allowedMethods } from "../../../functions/api/api.ts";

Deno.test("allowedMethods derives Allow per path from the registered routes, sub-apps included", () => {
  const sub = new Hono();
  sub.use("*", async (_c, next) => await next());
  sub.get("/", (c) => c.text("list"));
  sub.get("/:id", (c) => c.text("one"));
  sub.post("/:id/feedback", (c) => c.text("ok"));
  sub.delete("/:id", (c) => c.text("gone"));
  const app = new Hono();
  app.use("*", async (_c, next) => await next());
  app.post("/score", (c) => c.text("s"));
  app.all("/anything", (c) => c.text("any"));
  app.route("/things", sub);
  assert.deepEqual(
    [...allowedMethods(app.routes)],
    [
      ["/score", "POST"],
      ["/things", "GET, HEAD"],
      ["/things/:id", "GET, HEAD, DELETE"],
      ["/things/:id/feedback", "POST"],
    ],
  );
});
