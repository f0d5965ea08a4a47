// Composes subgraphs into a federation supergraph with @theguild/federation-composition, as
// Hive Gateway does. Reads [{name, url, sdl}] as JSON on stdin; prints one JSON line:
// {errors: [message...]} or {errors: [], supergraphSdl, publicSdl}.
import { composeServices } from "@theguild/federation-composition";
import { parse } from "graphql";

let input = "";
for await (const chunk of process.stdin) input += chunk;
const services = JSON.parse(input).map(({ name, url, sdl }) => ({ name, url, typeDefs: parse(sdl) }));
const result = composeServices(services);
const errors = (result.errors ?? []).map((error) => error.message);
process.stdout.write(
  JSON.stringify({ errors, supergraphSdl: result.supergraphSdl ?? null, publicSdl: result.publicSdl ?? null }) + "\n",
);
