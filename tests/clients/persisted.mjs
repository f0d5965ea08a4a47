// Apollo Client with its persisted-queries link, as an agency frontend runs it: the query is
// sent by its SHA-256 first, and again with its text when the server does not know it.
// Arguments: url, "Bearer <token>", X-Purpose, document, variables (JSON), times to run it.
// Prints one JSON line per request the link sent ({query: bool, hash, status}) and one per result.
import { createHash } from "node:crypto";
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";

const [url, authorization, purpose, document, variables, times] = process.argv.slice(2);

const sent = async (input, init) => {
  const body = JSON.parse(init.body);
  const response = await fetch(input, init);
  const line = {
    request: true,
    query: typeof body.query === "string",
    hash: body.extensions?.persistedQuery?.sha256Hash ?? null,
    status: response.status,
  };
  process.stdout.write(JSON.stringify(line) + "\n");
  return response;
};

const link = new PersistedQueryLink({
  sha256: (text) => createHash("sha256").update(text).digest("hex"),
}).concat(
  new HttpLink({ uri: url, headers: { authorization, "x-purpose": purpose }, fetch: sent }),
);
const client = new ApolloClient({ link, cache: new InMemoryCache() });

for (let i = 0; i < Number(times); i++) {
  try {
    const result = await client.query({
      query: gql(document),
      variables: JSON.parse(variables),
      fetchPolicy: "network-only",
    });
    process.stdout.write(JSON.stringify({ data: result.data, error: result.error?.message ?? null }) + "\n");
  } catch (error) {
    process.stdout.write(JSON.stringify({ data: null, error: String(error?.message ?? error) }) + "\n");
  }
}
