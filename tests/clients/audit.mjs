// The GraphQL over HTTP spec's own audit (graphql-http's auditServer) against the hub, every
// request carrying the caller's token (the audits send none themselves).
// Arguments: url, "Bearer <token>". Prints one JSON line per audit: {id, name, status, reason}.
import { auditServer } from "graphql-http";

const [url, authorization] = process.argv.slice(2);

const fetchFn = (input, init = {}) => {
  const headers = new Headers(init.headers);
  headers.set("authorization", authorization);
  return fetch(input, { ...init, headers });
};

const results = await auditServer({ url, fetchFn });
for (const { id, name, status, reason } of results) {
  process.stdout.write(JSON.stringify({ id, name, status, reason: reason ?? null }) + "\n");
}
