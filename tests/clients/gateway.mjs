// A federation gateway in one process, as Hive Gateway runs one: the hub's SDL and a city
// graph composed by @theguild/federation-composition, the query planned and executed by
// @graphql-tools/federation (Hive Gateway's execution), the hub reached over HTTP with the
// client's headers, the city graph answered here from the residents it is given.
// Reads {hubUrl, sdl, headers, residents, query, variables} as JSON on stdin; prints the
// result ({data, errors}) as one JSON line, or {compositionErrors: [...]}.
import { composeServices } from "@theguild/federation-composition";
import { getStitchedSchemaFromSupergraphSdl } from "@graphql-tools/federation";
import { makeExecutableSchema } from "@graphql-tools/schema";
import { createDefaultExecutor } from "@graphql-tools/delegate";
import { execute, parse } from "graphql";

const CITY_SDL = `
extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])
type Person @key(fields: "id", resolvable: false) { id: ID! }
type Query { residentsOfDistrict(district: String!): [Person!]! }
`;

let input = "";
for await (const chunk of process.stdin) input += chunk;
const { hubUrl, sdl, headers, residents, query, variables } = JSON.parse(input);

const composed = composeServices([
  { name: "hub", url: hubUrl, typeDefs: parse(sdl) },
  { name: "city", url: "http://city.invalid/graphql", typeDefs: parse(CITY_SDL) },
]);
if (composed.errors?.length) {
  process.stdout.write(JSON.stringify({ compositionErrors: composed.errors.map((e) => e.message) }) + "\n");
  process.exit(0);
}

const city = makeExecutableSchema({
  typeDefs: "type Person { id: ID! } type Query { residentsOfDistrict(district: String!): [Person!]! }",
  resolvers: { Query: { residentsOfDistrict: () => residents.map((id) => ({ id })) } },
});
const gateway = getStitchedSchemaFromSupergraphSdl({
  supergraphSdl: composed.supergraphSdl,
  httpExecutorOpts: { headers }, // the client's headers, on every fetch from the hub
  onSubschemaConfig(config) {
    if (config.name.toLowerCase() === "city") config.executor = createDefaultExecutor(city);
  },
});
const result = await execute({ schema: gateway, document: parse(query), variableValues: variables ?? {} });
process.stdout.write(JSON.stringify(result) + "\n");
