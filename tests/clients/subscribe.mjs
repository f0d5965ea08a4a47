// The `graphql-ws` client, as a cardholder's app runs it: subscribe to the notifications and
// print every result as one JSON line. Arguments: url, "Bearer <token>", document, after ("" for none).
import { createClient } from "graphql-ws";
import WebSocket from "ws";

const [url, authorization, query, after] = process.argv.slice(2);

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: authorization },
  retryAttempts: 0,
  lazy: false,
  on: { error: (error) => console.error(String(error?.message ?? error)) },
});

client.subscribe(
  { query, variables: { after: after || null } },
  {
    next: (result) => process.stdout.write(JSON.stringify(result) + "\n"),
    error: (error) => {
      console.error(JSON.stringify(error?.message ?? error));
      process.exit(1);
    },
    complete: () => process.exit(0),
  },
);
