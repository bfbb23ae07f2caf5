/**
 * The OpenAPI 3.1 document of the tailwise api, written by hand next to the
 * routes in `api.ts`; a test checks that it lists every route.
 *
 * @module
 */

const _error = { $ref: "#/components/responses/Error" };
const _unauthorized = { $ref: "#/components/responses/Unauthorized" };
const _json = (schema: unknown) => ({ "application/json": { schema } });
const _ok = (description: string, schema: unknown) => ({ description, content: _json(schema) });
const _page = {
  description: "An HTML page",
  content: { "text/html": { schema: { type: "string" } } },
};
const _signedIn = {
  description: "Signed in: sets the HttpOnly, SameSite=Strict session cookie, redirects to /",
  headers: { "Set-Cookie": { schema: { type: "string" } } },
};
const _containerParam = {
  name: "container",
  in: "path",
  required: true,
  description: "The container (model key), URL-encoded; 1 to 1024 UTF-8 bytes, no control chars",
  schema: { type: "string", minLength: 1 },
};

/**
 * The api's OpenAPI 3.1 document.
 *
 * @returns a fresh copy of the document
 */
export function openApiDocument(): Record<string, unknown> {
  return {
    openapi: "3.1.0",
    info: {
      title: "tailwise api",
      version: "1.0.0",
      description:
        "Adaptive log anomaly detection for Docker containers: on-demand scoring, anomalies, " +
        'feedback, models, training, health and metrics. Errors are JSON {"error": "..."}.',
    },
    security: [{ bearerAuth: [] }],
    paths: {
      "/score": {
        post: {
          summary: "Score lines with a container's current model",
          operationId: "score",
          requestBody: {
            required: true,
            content: _json({
              type: "object",
              required: ["container", "lines"],
              properties: {
                container: { type: "string", minLength: 1 },
                lines: { type: "array", minItems: 1, items: { type: "string" } },
              },
            }),
          },
          responses: {
            200: _ok("Scores and explanations, one per line", {
              type: "object",
              properties: {
                container: { type: "string" },
                results: { type: "array", items: { $ref: "#/components/schemas/ScoredLine" } },
              },
            }),
            400: _error,
            401: _unauthorized,
            404: _error,
            413: _error,
            415: _error,
          },
        },
      },
      "/anomalies": {
        get: {
          summary: "Anomalies, newest first, paged",
          operationId: "listAnomalies",
          parameters: [
            {
              name: "container",
              in: "query",
              description: "Only this container (model key)",
              schema: { type: "string" },
            },
            {
              name: "since",
              in: "query",
              description: "Recorded at or after (ISO 8601 or ms since the epoch)",
              schema: { type: "string" },
            },
            {
              name: "until",
              in: "query",
              description: "Recorded at or before (ISO 8601 or ms since the epoch)",
              schema: { type: "string" },
            },
            {
              name: "limit",
              in: "query",
              schema: { type: "integer", minimum: 1, maximum: 1000, default: 100 },
            },
            {
              name: "cursor",
              in: "query",
              description: "nextCursor of the previous page (a stream id)",
              schema: { type: "string", pattern: "^\\d+-\\d+$" },
            },
          ],
          responses: {
            200: _ok("A page of anomalies", {
              type: "object",
              properties: {
                anomalies: { type: "array", items: { $ref: "#/components/schemas/Anomaly" } },
                nextCursor: { type: ["string", "null"] },
                scanned: { type: "integer" },
              },
            }),
            400: _error,
            401: _unauthorized,
          },
        },
      },
      "/anomalies/{id}/feedback": {
        post: {
          summary: "Say whether an anomaly is normal (suppresses its template) or confirmed",
          operationId: "feedback",
          parameters: [{
            name: "id",
            in: "path",
            required: true,
            schema: { type: "string", pattern: "^\\d+-\\d+$" },
          }],
          requestBody: {
            required: true,
            content: _json({
              type: "object",
              required: ["label"],
              properties: { label: { type: "string", enum: ["normal", "anomaly"] } },
            }),
          },
          responses: {
            200: _ok("Recorded", {
              type: "object",
              properties: {
                anomalyId: { type: "string" },
                container: { type: "string" },
                templateId: { type: "string" },
                label: { type: "string", enum: ["normal", "anomaly"] },
                suppressed: { type: "boolean" },
              },
            }),
            400: _error,
            401: _unauthorized,
            404: _error,
            413: _error,
            415: _error,
          },
        },
      },
      "/incidents": {
        get: {
          summary: "Incidents (anomalies of one service close in time), newest opened first",
          operationId: "listIncidents",
          parameters: [
            { name: "service", in: "query", schema: { type: "string" } },
            { name: "status", in: "query", schema: { type: "string", enum: ["open", "resolved"] } },
            {
              name: "before",
              in: "query",
              description:
                "Only incidents opened before this time (ms since the epoch or RFC 3339)",
              schema: { type: "string" },
            },
            {
              name: "limit",
              in: "query",
              schema: { type: "integer", minimum: 1, maximum: 500, default: 50 },
            },
          ],
          responses: {
            200: _ok("A page of incidents", {
              type: "object",
              properties: {
                incidents: { type: "array", items: { $ref: "#/components/schemas/Incident" } },
                nextBefore: {
                  oneOf: [{ type: "number" }, { type: "null" }],
                  description: "Pass as before for the next page",
                },
              },
            }),
            400: _error,
            401: _unauthorized,
          },
        },
      },
      "/incidents/{id}": {
        get: {
          summary: "One incident",
          operationId: "getIncident",
          parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
          responses: {
            200: _ok("The incident", {
              type: "object",
              properties: { incident: { $ref: "#/components/schemas/Incident" } },
            }),
            400: _error,
            401: _unauthorized,
            404: _error,
          },
        },
      },
      "/incidents/{id}/feedback": {
        post: {
          summary:
            "Label every anomaly of an incident normal (suppresses their templates) or confirmed",
          operationId: "incidentFeedback",
          parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
          requestBody: {
            required: true,
            content: _json({
              type: "object",
              required: ["label"],
              properties: { label: { type: "string", enum: ["normal", "anomaly"] } },
            }),
          },
          responses: {
            200: _ok("Recorded for the members", {
              type: "object",
              properties: {
                incidentId: { type: "string" },
                label: { type: "string", enum: ["normal", "anomaly"] },
                applied: { type: "integer", description: "Member anomalies labelled" },
                missing: {
                  type: "integer",
                  description: "Members no longer in the anomalies stream",
                },
                templates: { type: "array", items: { type: "string" } },
              },
            }),
            400: _error,
            401: _unauthorized,
            404: _error,
          },
        },
      },
      "/models": {
        get: {
          summary: "Containers with models and their current version",
          operationId: "listModels",
          responses: {
            200: _ok("Models by container", {
              type: "object",
              properties: {
                models: {
                  type: "array",
                  items: {
                    type: "object",
                    properties: {
                      container: { type: "string", description: "The model key" },
                      containers: {
                        type: "array",
                        items: { type: "string" },
                        description: "Containers behind the key in the training window",
                      },
                      current: {
                        oneOf: [{ $ref: "#/components/schemas/ModelMeta" }, { type: "null" }],
                      },
                      versions: { type: "array", items: { type: "integer" } },
                    },
                  },
                },
              },
            }),
            401: _unauthorized,
          },
        },
      },
      "/models/{container}": {
        get: {
          summary: "A container's kept model versions",
          operationId: "getModel",
          parameters: [_containerParam],
          responses: {
            200: _ok("The versions, newest first", {
              type: "object",
              properties: {
                container: { type: "string", description: "The model key" },
                containers: {
                  type: "array",
                  items: { type: "string" },
                  description: "Containers behind the key in the training window",
                },
                current: {
                  oneOf: [{ $ref: "#/components/schemas/ModelMeta" }, { type: "null" }],
                },
                versions: { type: "array", items: { $ref: "#/components/schemas/ModelMeta" } },
              },
            }),
            400: _error,
            401: _unauthorized,
            404: _error,
          },
        },
      },
      "/models/{container}/rollback": {
        post: {
          summary: "Roll back to the previous good version, or promote a given version",
          operationId: "rollbackModel",
          parameters: [_containerParam],
          requestBody: {
            required: false,
            content: _json({
              type: "object",
              properties: { version: { type: "integer", minimum: 1 } },
            }),
          },
          responses: {
            200: _ok("The version now current", {
              type: "object",
              properties: {
                container: { type: "string" },
                current: { $ref: "#/components/schemas/ModelMeta" },
              },
            }),
            400: _error,
            401: _unauthorized,
            404: _error,
          },
        },
      },
      "/context/{container}": {
        get: {
          summary: "A service's lines around a moment (an anomaly's context), from the history",
          operationId: "context",
          parameters: [
            _containerParam,
            {
              name: "ts",
              in: "query",
              required: true,
              description: "The moment, RFC 3339 with up to nanoseconds (an anomaly's ts)",
              schema: { type: "string" },
            },
            {
              name: "before",
              in: "query",
              required: false,
              description: "Most lines before the moment (0 to 1000, default 20)",
              schema: { type: "integer", minimum: 0, maximum: 1000 },
            },
            {
              name: "after",
              in: "query",
              required: false,
              description: "Most lines after the moment (0 to 1000, default 20)",
              schema: { type: "integer", minimum: 0, maximum: 1000 },
            },
          ],
          responses: {
            200: _ok("The lines before, at and after the moment, each list oldest first", {
              type: "object",
              required: ["container", "ts", "before", "at", "after"],
              properties: {
                container: { type: "string" },
                ts: { type: "string" },
                before: { type: "array", items: { $ref: "#/components/schemas/ContextLine" } },
                at: { type: "array", items: { $ref: "#/components/schemas/ContextLine" } },
                after: { type: "array", items: { $ref: "#/components/schemas/ContextLine" } },
              },
            }),
            400: _error,
            401: _unauthorized,
            503: _error,
          },
        },
      },
      "/search/{container}": {
        get: {
          summary:
            "A service's lines containing a text (substring, ASCII case folded), newest first",
          operationId: "search",
          parameters: [
            _containerParam,
            {
              name: "q",
              in: "query",
              required: true,
              description:
                "The text, 1 to 200 characters, no control characters; matched literally",
              schema: { type: "string" },
            },
            {
              name: "from",
              in: "query",
              required: false,
              description: "Earliest time (ISO 8601 or ms), inclusive",
              schema: { type: "string" },
            },
            {
              name: "to",
              in: "query",
              required: false,
              description: "Latest time (ISO 8601 or ms), exclusive; default now",
              schema: { type: "string" },
            },
            {
              name: "limit",
              in: "query",
              required: false,
              description: "Most lines (1 to 1000, default 100)",
              schema: { type: "integer", minimum: 1, maximum: 1000 },
            },
          ],
          responses: {
            200: _ok("The matching lines, newest first", {
              type: "object",
              required: ["container", "q", "lines"],
              properties: {
                container: { type: "string" },
                q: { type: "string" },
                lines: { type: "array", items: { $ref: "#/components/schemas/ContextLine" } },
              },
            }),
            400: _error,
            401: _unauthorized,
            503: _error,
          },
        },
      },
      "/train/{container}": {
        post: {
          summary: "Train a container's model now",
          operationId: "train",
          parameters: [_containerParam],
          responses: {
            200: _ok("What the trainer did", {
              type: "object",
              required: ["container", "status"],
              properties: {
                container: { type: "string" },
                status: {
                  type: "string",
                  description:
                    "promoted, candidate (held back by the shadow check), learning or busy",
                },
                lines: { type: "integer" },
                version: { type: "integer" },
                threshold: { type: "number" },
                note: { type: "string" },
              },
            }),
            400: _error,
            401: _unauthorized,
          },
        },
      },
      "/deploys": {
        get: {
          summary: "Deploys (a service's image changed), newest first",
          operationId: "listDeploys",
          parameters: [
            {
              name: "container",
              in: "query",
              description: "Only this service (model key)",
              schema: { type: "string" },
            },
            {
              name: "limit",
              in: "query",
              description: "Most deploys returned (1 to 500)",
              schema: { type: "integer", minimum: 1, maximum: 500, default: 100 },
            },
          ],
          responses: {
            200: _ok("The deploys", {
              type: "object",
              properties: {
                deploys: { type: "array", items: { $ref: "#/components/schemas/Deploy" } },
              },
            }),
            400: _error,
            401: _unauthorized,
          },
        },
      },
      "/deploys/{id}": {
        get: {
          summary:
            "A deploy's report: new and gone templates, rate changes and anomalies of its first 30 minutes against the baseline before it",
          operationId: "getDeploy",
          parameters: [{
            name: "id",
            in: "path",
            required: true,
            description: "The deploy's id, e.g. 1700000000000-0",
            schema: { type: "string" },
          }],
          responses: {
            200: _ok("The report", { $ref: "#/components/schemas/DeployReport" }),
            400: _error,
            401: _unauthorized,
            404: _error,
          },
        },
      },
      "/health": {
        get: {
          summary: "The state of each dependency (no auth)",
          operationId: "health",
          security: [],
          responses: {
            200: _ok("Every dependency is ok", { $ref: "#/components/schemas/Health" }),
            503: _ok("At least one dependency is failing", {
              $ref: "#/components/schemas/Health",
            }),
          },
        },
      },
      "/metrics": {
        get: {
          summary: "Prometheus metrics (text format 0.0.4)",
          operationId: "metrics",
          responses: {
            200: {
              description: "The metrics",
              content: { "text/plain; version=0.0.4": { schema: { type: "string" } } },
            },
            401: _unauthorized,
          },
        },
      },
      "/openapi.json": {
        get: {
          summary: "This document",
          operationId: "openapi",
          responses: {
            200: _ok("The OpenAPI 3.1 document", { type: "object" }),
            401: _unauthorized,
          },
        },
      },
      "/events": {
        get: {
          summary: "Live updates for the dashboard (server-sent events)",
          description: "Events `anomaly` (id: the anomaly's stream id; data: an AnomalyView as " +
            "JSON) as anomalies land in the anomalies stream, and `containers` (data: " +
            '{"containers": ContainerView[]}) every few seconds; `hello` once connected. ' +
            "Resumes after Last-Event-ID (or `after`).",
          operationId: "events",
          tags: ["dashboard"],
          security: [{ bearerAuth: [] }, { sessionCookie: [] }],
          parameters: [{
            name: "after",
            in: "query",
            description: "Send anomalies after this stream id (default: only new ones)",
            schema: { type: "string", pattern: "^\\d+-\\d+$" },
          }],
          responses: {
            200: {
              description: "An event stream",
              content: { "text/event-stream": { schema: { type: "string" } } },
            },
            401: _unauthorized,
          },
        },
      },
      "/": {
        get: {
          summary: "The dashboard page, or the sign-in form without a session",
          operationId: "dashboard",
          tags: ["dashboard"],
          security: [],
          responses: { 200: _page },
        },
      },
      "/login": {
        get: {
          summary: "The sign-in form; with `token`, signs in and redirects to /",
          operationId: "loginForm",
          tags: ["dashboard"],
          security: [],
          parameters: [{ name: "token", in: "query", schema: { type: "string" } }],
          responses: { 200: _page, 303: _signedIn, 401: _page },
        },
        post: {
          summary: "Sign in with the token (form field `token`); same origin only",
          operationId: "login",
          tags: ["dashboard"],
          security: [],
          requestBody: {
            required: true,
            content: {
              "application/x-www-form-urlencoded": {
                schema: {
                  type: "object",
                  required: ["token"],
                  properties: { token: { type: "string" } },
                },
              },
            },
          },
          responses: { 303: _signedIn, 401: _page, 403: _error },
        },
      },
      "/logout": {
        post: {
          summary: "Sign out (clears the session cookie); same origin only",
          operationId: "logout",
          tags: ["dashboard"],
          security: [],
          responses: { 303: { description: "Signed out; redirects to /" }, 403: _error },
        },
      },
      "/incident-list": {
        get: {
          summary: "The dashboard's incident list (HTML), open ones first; ?service= narrows it",
          operationId: "incidentListPage",
          tags: ["dashboard"],
          parameters: [{ name: "service", in: "query", schema: { type: "string" } }],
          responses: {
            200: { description: "HTML", content: { "text/html": { schema: { type: "string" } } } },
          },
        },
      },
      "/patterns": {
        get: {
          summary:
            "The dashboard's patterns page of a service (HTML): templates with counts, a sparkline, first and last seen",
          operationId: "patternsPage",
          tags: ["dashboard"],
          parameters: [
            { name: "service", in: "query", required: true, schema: { type: "string" } },
            { name: "range", in: "query", schema: { type: "string", enum: ["1h", "24h", "7d"] } },
          ],
          responses: {
            200: { description: "HTML", content: { "text/html": { schema: { type: "string" } } } },
            400: { description: "No service (HTML)" },
            503: { description: "No log history (HTML)" },
          },
        },
      },
      "/service": {
        get: {
          summary:
            "The dashboard's page of one service (HTML): state, containers, image, model versions, recent deploys, links",
          operationId: "servicePage",
          tags: ["dashboard"],
          parameters: [{ name: "name", in: "query", required: true, schema: { type: "string" } }],
          responses: {
            200: { description: "HTML", content: { "text/html": { schema: { type: "string" } } } },
            400: { description: "No name (HTML)" },
            404: { description: "No such service (HTML)" },
          },
        },
      },
      "/incident": {
        get: {
          summary: "The dashboard's page of one incident (HTML): why, examples, links, feedback",
          operationId: "incidentPage",
          tags: ["dashboard"],
          parameters: [{ name: "id", in: "query", required: true, schema: { type: "string" } }],
          responses: {
            200: { description: "HTML", content: { "text/html": { schema: { type: "string" } } } },
            404: { description: "No such incident (HTML)" },
          },
        },
      },
      "/ui/incidents.css": {
        get: {
          summary: "The incident pages' stylesheet",
          operationId: "incidentsCss",
          tags: ["dashboard"],
          responses: {
            200: { description: "CSS", content: { "text/css": { schema: { type: "string" } } } },
          },
        },
      },
      "/ui/incidents.js": {
        get: {
          summary: "The incident page's script (feedback buttons)",
          operationId: "incidentsJs",
          tags: ["dashboard"],
          responses: {
            200: {
              description: "JavaScript",
              content: { "text/javascript": { schema: { type: "string" } } },
            },
          },
        },
      },
      "/ui/dashboard.css": {
        get: {
          summary: "The dashboard's stylesheet",
          operationId: "dashboardCss",
          tags: ["dashboard"],
          security: [],
          responses: {
            200: { description: "CSS", content: { "text/css": { schema: { type: "string" } } } },
          },
        },
      },
      "/ui/dashboard.js": {
        get: {
          summary: "The dashboard's script",
          operationId: "dashboardJs",
          tags: ["dashboard"],
          security: [],
          responses: {
            200: {
              description: "JavaScript",
              content: { "text/javascript": { schema: { type: "string" } } },
            },
          },
        },
      },
    },
    components: {
      securitySchemes: {
        bearerAuth: {
          type: "http",
          scheme: "bearer",
          description: "API_TOKEN (or the file named by API_TOKEN_FILE)",
        },
        sessionCookie: {
          type: "apiKey",
          in: "cookie",
          name: "tailwise_session",
          description: "The dashboard's session (set by /login); accepted on every route " +
            "instead of the bearer token; changes must come from the same origin",
        },
      },
      responses: {
        Error: {
          description: "An error; `error` says what was wrong and what was expected",
          content: _json({ $ref: "#/components/schemas/Error" }),
        },
        Unauthorized: {
          description: "Missing or wrong bearer token",
          headers: { "WWW-Authenticate": { schema: { type: "string" } } },
          content: _json({ $ref: "#/components/schemas/Error" }),
        },
      },
      schemas: {
        ContextLine: {
          type: "object",
          required: ["container", "ts", "stream", "line", "display"],
          properties: {
            container: { type: "string", description: "The container that wrote it" },
            ts: { type: "string", description: "Docker's timestamp (RFC 3339, nanoseconds)" },
            stream: { type: "string", enum: ["stdout", "stderr"] },
            line: { type: "string", description: "The line as stored (log content: hostile)" },
            display: {
              type: "string",
              description:
                "The line made safe to show as text: ANSI escapes removed, control and bidi characters made visible, cut at 2048 characters with …",
            },
            truncated: { type: "boolean", description: "Set when the line was cut when collected" },
          },
        },
        Error: {
          type: "object",
          required: ["error"],
          properties: { error: { type: "string" } },
        },
        ScoredLine: {
          type: "object",
          properties: {
            line: { type: "string" },
            score: { type: "number" },
            anomaly: { type: "boolean" },
            threshold: { type: "number" },
            template: { type: "string" },
            templateId: { type: "string" },
            reasons: { type: "array", items: { type: "string" } },
            tokens: { type: "array", items: { type: "string" } },
            explanation: { type: "array", items: { type: "string" } },
            suppressed: { type: "boolean" },
            modelVersion: { type: "integer" },
          },
        },
        Incident: {
          type: "object",
          properties: {
            id: { type: "string" },
            service: { type: "string", description: "The model key" },
            group: {
              oneOf: [{ type: "string" }, { type: "null" }],
              description: "Swarm stack or Compose project",
            },
            status: { type: "string", enum: ["open", "resolved"] },
            openedAt: { type: "number", description: "ms since the epoch" },
            updatedAt: { type: "number" },
            lastAnomalyAt: { type: "number" },
            resolvedAt: { oneOf: [{ type: "number" }, { type: "null" }] },
            anomalies: { type: "integer" },
            members: { type: "array", items: { type: "string" }, description: "Anomaly ids" },
            reasons: { type: "object", additionalProperties: { type: "integer" } },
            kinds: { type: "object", additionalProperties: { type: "integer" } },
            maxScore: { type: "number" },
            title: { type: "string" },
            samples: { type: "array", items: { type: "object" } },
            links: {
              type: "array",
              items: { type: "string" },
              description: "Incidents of other services of the same group in the same minutes",
            },
            notified: { type: "object" },
            revision: { type: "integer" },
          },
        },
        Anomaly: {
          type: "object",
          properties: {
            id: { type: "string" },
            container: { type: "string" },
            containerId: { type: "string" },
            containerName: { type: "string" },
            entryId: { type: "string" },
            ts: { type: "string" },
            line: { type: "string" },
            score: { type: "number" },
            threshold: { type: "number" },
            reasons: { type: "array", items: { type: "string" } },
            template: { type: "string" },
            templateId: { type: "string" },
            tokens: { type: "array", items: { type: "string" } },
            explanation: { type: "array", items: { type: "string" } },
            modelVersion: { type: "integer" },
            scoredAt: { type: "integer" },
            version: {
              type: "string",
              description: "The image of the container that wrote the line",
            },
            lastLines: {
              type: "array",
              items: { type: "string" },
              description:
                "Lifecycle anomalies (oom_killed, exited, unhealthy, restart_loop): the container's last lines",
            },
          },
        },
        Deploy: {
          type: "object",
          properties: {
            id: { type: "string", description: "Its id in the deploys stream" },
            container: { type: "string", description: "The service's model key" },
            version: { type: "string", description: "Image id of the new version" },
            image: { type: "string", description: "Image of the new version (tag or digest)" },
            previousVersion: { type: "string" },
            previousImage: { type: "string" },
            at: { type: "integer", description: "When its first container was created, ms" },
            containerName: { type: "string" },
            containerId: { type: "string" },
          },
        },
        DeployReport: {
          type: "object",
          properties: {
            deploy: { $ref: "#/components/schemas/Deploy" },
            window: {
              type: "object",
              properties: { from: { type: "string" }, to: { type: "string" } },
            },
            baseline: {
              type: "object",
              properties: { from: { type: "string" }, to: { type: "string" } },
            },
            complete: { type: "boolean", description: "False while the window still runs" },
            lines: {
              type: "object",
              properties: { baseline: { type: "integer" }, window: { type: "integer" } },
            },
            newTemplates: {
              type: "array",
              items: {
                type: "object",
                properties: {
                  templateId: { type: "string" },
                  template: { type: "string" },
                  count: { type: "integer" },
                  firstSeen: { type: "string" },
                  example: { type: "string" },
                  version: { type: "string", description: "The image it appeared in" },
                },
              },
            },
            goneTemplates: {
              type: "array",
              items: {
                type: "object",
                properties: {
                  templateId: { type: "string" },
                  template: { type: "string" },
                  baselineCount: { type: "integer" },
                  expected: { type: "number" },
                },
              },
            },
            rateChanges: {
              type: "array",
              items: {
                type: "object",
                properties: {
                  templateId: { type: "string" },
                  template: { type: "string" },
                  beforePerMin: { type: "number" },
                  afterPerMin: { type: "number" },
                  ratio: { type: "number" },
                },
              },
            },
            anomalies: {
              type: "object",
              properties: {
                count: { type: "integer" },
                byReason: { type: "object", additionalProperties: { type: "integer" } },
                first: { type: "array", items: { $ref: "#/components/schemas/Anomaly" } },
              },
            },
          },
        },
        ModelMeta: {
          type: "object",
          properties: {
            container: { type: "string" },
            version: { type: "integer" },
            trainedAt: { type: "string", format: "date-time" },
            lines: { type: "integer" },
            threshold: { type: "number" },
            checksum: { type: "string" },
            size: { type: "integer" },
            status: { type: "string", enum: ["current", "candidate", "retired"] },
            promotedAt: { type: "string", format: "date-time" },
            rolledBackAt: { type: "string", format: "date-time" },
            evaluation: { type: "object", additionalProperties: { type: "number" } },
            note: { type: "string" },
          },
        },
        Health: {
          type: "object",
          properties: {
            status: { type: "string", enum: ["ok", "failing"] },
            checks: {
              type: "object",
              additionalProperties: {
                type: "object",
                properties: { ok: { type: "boolean" }, detail: { type: "string" } },
              },
            },
          },
        },
      },
    },
  };
}
