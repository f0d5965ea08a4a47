// A graphql-yoga peer of the hub: the benchmark's queries over the hub's own SQLite files.
// See README.md. Usage:
//   node server.js --data-dir DIR --config peer-config.json --port P --today YYYY-MM-DD
//                  [--trail-dir DIR] [--bare]
import { createServer } from "node:http";
import { createHash, generateKeyPairSync, randomUUID, sign } from "node:crypto";
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";

import Database from "better-sqlite3";
import DataLoader from "dataloader";
import { GraphQLError, GraphQLObjectType, getNamedType, isLeafType, isObjectType } from "graphql";
import { createSchema, createYoga } from "graphql-yoga";
import { importSPKI, jwtVerify } from "jose";


const { values: args } = parseArgs({
  options: {
    "data-dir": { type: "string" },
    config: { type: "string" },
    port: { type: "string", default: "4000" },
    host: { type: "string", default: "127.0.0.1" },
    today: { type: "string" },
    "trail-dir": { type: "string" },
    bare: { type: "boolean", default: false },
  },
});
const DATA = args["data-dir"];
const BARE = args.bare;
const config = JSON.parse(readFileSync(args.config, "utf8"));
const codes = config.codes;
const TODAY_COMPACT = (args.today ?? new Date().toISOString().slice(0, 10)).replaceAll("-", "");

// ------------------------------------------------------------ the sources (read-only, synchronous)

function open(name) {
  const db = new Database(join(DATA, `${name}.sqlite`), { readonly: true, fileMustExist: true });
  return db;
}
const store = open("hub_store");
const workPermits = open("work_permit");
const insurance = open("social_insurance");
const cards = open("card_service");

// IN lists as one JSON array parameter: one prepared statement whatever the batch's size.
const IN = "(SELECT value FROM json_each(?))";
const SQL = {
  personsById: store.prepare(
    `SELECT id, surname, given_names, sex, birth_date, nationality FROM person WHERE id IN ${IN}`,
  ),
  personsAfter: store.prepare(
    "SELECT id, surname, given_names, sex, birth_date, nationality FROM person WHERE id > ? ORDER BY id LIMIT ?",
  ),
  passports: store.prepare(
    "SELECT person_id, number, nationality, valid_from, valid_to, current FROM person_passport" +
      ` WHERE person_id IN ${IN} ORDER BY person_id, current DESC, valid_from DESC`,
  ),
  links: store.prepare(
    "SELECT person_id, agency, owner_key FROM identity_link" +
      ` WHERE person_id IN ${IN} AND confidence = 'CONFIRMED' ORDER BY person_id, id`,
  ),
  currentPermits: workPermits.prepare(
    "SELECT SQRID, XKID, XKZH, ZT, RCLB, YXQQ, YXQZ, ZW, GZDD, STZ, TZSBH, TYSHXYDM, DWMC FROM (" +
      " SELECT *, row_number() OVER (PARTITION BY SQRID" +
      ` ORDER BY CASE WHEN ZT IN (${codes.endedPermitCodes.map((c) => `'${c}'`).join(", ")}) THEN 1 ELSE 0 END,` +
      ` YXQQ DESC, XKID DESC) AS rk FROM WP_XKZ WHERE SQRID IN ${IN}) WHERE rk = 1`,
  ),
  permitEvents: workPermits.prepare(
    `SELECT XKID, YWLX, SQRQ, BJRQ, JG, BZ FROM WP_YWJL WHERE XKID IN ${IN} ORDER BY XKID, SQRQ, BJRQ`,
  ),
  participations: insurance.prepare(
    "SELECT p.AAC001, p.AAE140, p.AAC008, p.AAE030, p.AAE031, e.AAB004, e.AAB998" +
      " FROM AC02 p LEFT JOIN AB01 e ON e.AAB001 = p.AAB001" +
      ` WHERE p.AAC001 IN ${IN} AND p.AAE100 = '1' ORDER BY p.AAE030 DESC, p.AAE140`,
  ),
  cards: cards.prepare(
    `SELECT SHBZHM, KH, KZT, FKRQ, YXQ, GZXKXX FROM SBK_KXX WHERE SHBZHM IN ${IN}` +
      ` ORDER BY CASE KZT ${codes.cardStatusPrecedence.map((v, i) => `WHEN '${v}' THEN ${i}`).join(" ")}` +
      ` ELSE ${codes.cardStatusPrecedence.length} END, FKRQ DESC`,
  ),
};
for (const statement of Object.values(SQL)) statement.raw(true);

// ------------------------------------------------------------ sealed ids and cursors (opaque/)

// The hub seals them (AES-SIV, opaque/); bench/peer_config.py exports every one the benchmark
// can meet, and the peer looks them up both ways instead of sealing them itself.
const sealed = config.sealed;
const opened = Object.fromEntries(
  Object.entries(sealed).map(([kind, byKey]) => [
    kind,
    new Map(Object.entries(byKey).map(([key, text]) => [text, key])),
  ]),
);
const encodeId = (type, key) => sealed[type][String(key)];
const encodeCursor = (kind, position) => sealed[`${kind}Cursor`][String(position[0])];

function clientError(message, field) {
  return new GraphQLError(`${field} ${message}`, { extensions: { code: "BAD_USER_INPUT" } });
}

function decodeId(globalId, expected) {
  for (const [type, byText] of Object.entries(opened)) {
    const key = typeof globalId === "string" ? byText.get(globalId) : undefined;
    if (key === undefined || type.endsWith("Cursor")) continue;
    if (type !== expected) throw clientError(`is the id of a ${type}, not of a ${expected}`, "id");
    return key;
  }
  throw clientError("is not an id this hub issued", "id");
}

function decodeCursor(kind, cursor) {
  if (cursor == null) return null;
  const key = typeof cursor === "string" ? opened[`${kind}Cursor`]?.get(cursor) : undefined;
  if (key === undefined) throw clientError("is not a cursor this connection issued", "after");
  return [Number(key)];
}

// ------------------------------------------------------------ legacy values -> the graph's

const text = (v) => (v ? v.trim() || null : null);
const compactDay = (v) => {
  if (v == null) return null;
  const s = String(v).trim();
  return s ? `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}` : null;
};

const compare = (a, b) => (a === b ? 0 : (a ?? "") < (b ?? "") ? -1 : 1);

function groupBy(rows, keyOf) {
  const out = new Map();
  for (const row of rows) {
    const key = keyOf(row);
    let list = out.get(key);
    if (!list) out.set(key, (list = []));
    list.push(row);
  }
  return out;
}

function person(r) {
  const [id, surname, givenNames, sex, birthDate, nationality] = r;
  return { _id: id, surname, givenNames, sex, birthDate, nationality };
}

function permit(r) {
  const [, xkid, xkzh, zt, rclb, yxqq, yxqz, zw, gzdd, stz, tzsbh, credit, dwmc] = r;
  let status = codes.permitStatus[zt];
  if (zt === "30" && yxqz && String(yxqz) < TODAY_COMPACT) status = "EXPIRED";
  const creditCode = text(credit);
  return {
    _xkid: xkid,
    number: xkzh.trim(),
    status,
    category: codes.category[rclb],
    validFrom: compactDay(yxqq),
    validTo: compactDay(yxqz),
    procedure: codes.procedure[stz],
    position: text(zw),
    workDistrict: text(gzdd),
    notificationLetterNumber: text(tzsbh),
    employer: creditCode ? { creditCode, name: text(dwmc) ?? creditCode } : null,
  };
}

// ------------------------------------------------------------ per-request loaders

function loaders() {
  const many = (statement, keyIndex, keyOf = (k) => k) =>
    new DataLoader(async (keys) => {
      const rows = statement.all(JSON.stringify(keys.map(keyOf)));
      const grouped = groupBy(rows, (r) => (typeof r[keyIndex] === "string" ? r[keyIndex].trim() : r[keyIndex]));
      return keys.map((k) => grouped.get(keyOf(k)) ?? []);
    });
  return {
    persons: new DataLoader(async (ids) => {
      const byId = new Map(SQL.personsById.all(JSON.stringify(ids)).map((r) => [r[0], person(r)]));
      return ids.map((id) => byId.get(id) ?? null);
    }),
    passports: many(SQL.passports, 0),
    links: many(SQL.links, 0),
    permits: many(SQL.currentPermits, 0, Number),
    events: many(SQL.permitEvents, 0),
    participations: many(SQL.participations, 0, Number),
    cards: many(SQL.cards, 0),
  };
}

async function ownerKeys(ctx, parent, agency) {
  const links = await ctx.loaders.links.load(parent._id);
  const keys = [];
  for (const [, a, key] of links) if (a === agency && !keys.includes(key)) keys.push(key);
  return keys;
}

async function rowsOf(loader, keys) {
  const lists = await loader.loadMany(keys);
  return lists.flat();
}

// ------------------------------------------------------------ the schema (the hub's SDL, the part served)

const enumOf = (name, table) => `enum ${name} { ${[...new Set(Object.values(table))].join(" ")} }`;
const typeDefs = `
  scalar Date
  directive @oneOf on INPUT_OBJECT
  ${enumOf("WorkPermitStatus", codes.permitStatus)}
  ${enumOf("TalentCategory", codes.category)}
  ${enumOf("PermitProcedure", codes.procedure)}
  ${enumOf("PermitEventKind", codes.eventKind)}
  ${enumOf("PermitEventOutcome", codes.eventOutcome)}
  ${enumOf("InsuranceType", codes.insuranceType)}
  ${enumOf("InsuranceStatus", codes.insuranceStatus)}
  ${enumOf("CardStatus", codes.cardStatus)}
  enum Sex { MALE FEMALE UNKNOWN UNSTATED }
  input PassportInput { number: String! nationality: String! }
  input PersonLookup @oneOf {
    id: ID workPermitNumber: String socialSecurityNumber: String cardNumber: String
    passport: PassportInput residencePermitNumber: String
  }
  type Query {
    person(lookup: PersonLookup!): Person
    persons(first: Int = null, after: String = null): PersonConnection!
  }
  type PersonConnection { edges: [PersonEdge!]! pageInfo: PageInfo! totalCount: Int! }
  type PersonEdge { cursor: String! node: Person! }
  type PageInfo { hasNextPage: Boolean! endCursor: String }
  type PersonName { surname: String! givenNames: String full: String! }
  type Passport { number: String! nationality: String! validFrom: Date validTo: Date current: Boolean! }
  type Person {
    id: ID! sex: Sex! birthDate: Date! nationality: String! name: PersonName! passports: [Passport!]!
    workPermit: WorkPermit
    socialSecurityNumber: String
    insuranceParticipations: [InsuranceParticipation!]
    socialSecurityCard: SocialSecurityCard
    # Selected by bench/every_agency.graphql, denied to WORK_PERMIT_AUTHORITY; not served here.
    electronicCard: ElectronicCard
    visas: [Visa!]
    entries(first: Int = null, after: String = null): EntryConnection
    residencePermit: ResidencePermit
    benefitPayments(first: Int = null, after: String = null): BenefitPaymentConnection
  }
  type Employer { id: ID! creditCode: String! name: String! }
  type WorkPermit {
    id: ID! number: String! status: WorkPermitStatus! category: TalentCategory! validFrom: Date validTo: Date
    position: String workDistrict: String procedure: PermitProcedure! notificationLetterNumber: String
    employer: Employer history: [PermitEvent!]
  }
  type PermitEvent {
    kind: PermitEventKind! appliedOn: Date! decidedOn: Date outcome: PermitEventOutcome! remark: String
  }
  type InsuranceParticipation {
    type: InsuranceType! status: InsuranceStatus! startedOn: Date! endedOn: Date employer: Employer
  }
  type SocialSecurityCard {
    number: String! status: CardStatus! issuedOn: Date validTo: Date carriesWorkPermit: Boolean!
    workPermitNumber: String
  }
  type ElectronicCard {
    id: ID! status: String! serviceLevel: String! signedAt: String verificationMethod: String
    cardNumber: String workPermitNumber: String
  }
  type Visa { number: String! type: String! issuedOn: Date validTo: Date notificationLetterNumber: String }
  type Entry { enteredOn: Date! port: String! visaNumber: String }
  type EntryEdge { cursor: String! node: Entry! }
  type EntryConnection { edges: [EntryEdge!]! pageInfo: PageInfo! }
  type ResidencePermit {
    number: String! purpose: String! issuedOn: Date validTo: Date issuingOffice: String status: String!
    verifiedBy: String
  }
  type BenefitPayment {
    benefitCode: String! benefitName: String! amount: String! paidOn: String status: String! reason: String
  }
  type BenefitPaymentEdge { cursor: String! node: BenefitPayment! }
  type BenefitPaymentConnection { edges: [BenefitPaymentEdge!]! pageInfo: PageInfo! }
`;

const notServed = () => {
  throw new GraphQLError("not served by the peer", { extensions: { code: "NOT_SERVED" } });
};

const resolvers = {
  Query: {
    person: async (_root, { lookup }, ctx, info) => {
      if (lookup.id == null) notServed();
      const id = Number(decodeId(lookup.id, "Person"));
      const found = await ctx.loaders.persons.load(id);
      if (found) ctx.persons.push([info.path, id]);
      return found;
    },
    persons: (_root, { first, after }, ctx, info) => {
      const size = first ?? 20;
      if (size < 0 || size > 100) throw clientError("must be between 0 and 100", "first");
      const position = decodeCursor("persons", after);
      const rows = SQL.personsAfter.all(position ? position[0] : 0, size + 1);
      const kept = rows.slice(0, size).map(person);
      for (const p of kept) ctx.loaders.persons.prime(p._id, p);
      return { kept, hasNextPage: rows.length > size };
    },
  },
  PersonConnection: {
    edges: (c) => c.kept,
    pageInfo: (c) => ({
      hasNextPage: c.hasNextPage,
      endCursor: c.kept.length ? encodeCursor("persons", [c.kept[c.kept.length - 1]._id]) : null,
    }),
    totalCount: notServed,
  },
  PersonEdge: {
    cursor: (p) => encodeCursor("persons", [p._id]),
    node: (p, _args, ctx, info) => {
      ctx.persons.push([info.path, p._id]);
      return p;
    },
  },
  Person: {
    id: (p) => encodeId("Person", p._id),
    name: (p) => ({
      surname: p.surname,
      givenNames: p.givenNames,
      full: p.givenNames ? `${p.surname}, ${p.givenNames}` : p.surname,
    }),
    passports: async (p, _a, ctx) =>
      (await ctx.loaders.passports.load(p._id)).map(([, number, nationality, validFrom, validTo, current]) => ({
        number,
        nationality,
        validFrom,
        validTo,
        current: Boolean(current),
      })),
    workPermit: async (p, _a, ctx) => {
      const rows = await rowsOf(ctx.loaders.permits, (await ownerKeys(ctx, p, "WORK_PERMIT_SYSTEM")).map(Number));
      return rows.length ? permit(rows[rows.length - 1]) : null;
    },
    insuranceParticipations: async (p, _a, ctx) => {
      const keys = await ownerKeys(ctx, p, "SOCIAL_INSURANCE");
      const rows = await rowsOf(ctx.loaders.participations, keys.map(Number));
      // Across the person's insured records: newest start first, then by insurance type (the SQL's order).
      if (keys.length > 1) rows.sort((a, b) => compare(b[3], a[3]) || compare(a[1], b[1]));
      return rows.map(([, aae140, aac008, aae030, aae031, aab004, aab998]) => {
        const credit = text(aab998);
        return {
          type: codes.insuranceType[aae140],
          status: codes.insuranceStatus[aac008],
          startedOn: compactDay(aae030),
          endedOn: compactDay(aae031),
          employer: credit ? { creditCode: credit, name: text(aab004) ?? credit } : null,
        };
      });
    },
    socialSecurityCard: async (p, _a, ctx) => {
      const keys = await ownerKeys(ctx, p, "CARD_SERVICE");
      const rows = await rowsOf(ctx.loaders.cards, keys);
      if (keys.length > 1) {
        const rank = (r) => {
          const i = codes.cardStatusPrecedence.indexOf(r[2]);
          return i < 0 ? codes.cardStatusPrecedence.length : i;
        };
        rows.sort((a, b) => rank(a) - rank(b) || compare(b[3], a[3]));
      }
      if (!rows.length) return null;
      const [, kh, kzt, fkrq, yxq, gzxkxx] = rows[0];
      const loaded = gzxkxx && gzxkxx.trim() ? JSON.parse(gzxkxx).XKZH.trim() : null;
      return {
        number: kh.trim(),
        status: codes.cardStatus[kzt],
        issuedOn: text(fkrq),
        validTo: text(yxq),
        carriesWorkPermit: loaded !== null,
        workPermitNumber: loaded,
      };
    },
    socialSecurityNumber: notServed,
    electronicCard: notServed,
    visas: notServed,
    entries: notServed,
    residencePermit: notServed,
    benefitPayments: notServed,
  },
  WorkPermit: {
    id: (w) => encodeId("WorkPermit", w._xkid),
    history: async (w, _a, ctx) =>
      (await ctx.loaders.events.load(w._xkid)).map(([, ywlx, sqrq, bjrq, jg, bz]) => ({
        kind: codes.eventKind[ywlx],
        appliedOn: compactDay(sqrq),
        decidedOn: compactDay(bjrq),
        outcome: codes.eventOutcome[jg],
        remark: text(bz),
      })),
  },
  Employer: { id: (e) => encodeId("Employer", e.creditCode) },
};

const schema = createSchema({ typeDefs, resolvers });

// ------------------------------------------------------------ grants: the role's field allow-list

const guarded = new Set(config.guarded);
const openTypes = new Set(config.openTypes);
const grants = new Map(
  config.grants.map((g) => [
    `${g.role}\u0000${g.purpose ?? ""}`,
    { ...g, readable: new Set(g.readable), types: new Set(g.types) },
  ]),
);
const reaches = (grant, typeName) => grant.types.has(typeName) || openTypes.has(typeName);
const callerOf = (ctx) => `${ctx.claims.role}${ctx.purpose ? ` for ${ctx.purpose}` : ""}`;
const forbidden = (message) => new GraphQLError(message, { extensions: { code: "FORBIDDEN" } });

if (!BARE) {
  // Each field that needs a grant checks the request's grant before it resolves (a denied
  // field is null with FORBIDDEN, as the hub answers); each field leading to an object checks
  // that the grant reaches its type. Fields that need neither keep graphql-js's own resolver.
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith("__")) continue;
    for (const field of Object.values(type.getFields())) {
      const key = `${type.name}.${field.name}`;
      const target = getNamedType(field.type);
      const needsGrant = guarded.has(key);
      const leadsToObject = isObjectType(target) && !openTypes.has(target.name);
      if (!needsGrant && !leadsToObject) continue;
      const resolve = field.resolve ?? ((source) => source[field.name]);
      field.resolve = (source, fieldArgs, ctx, info) => {
        if (needsGrant && !ctx.grant.readable.has(key)) {
          throw forbidden(`${key} is not granted to ${callerOf(ctx)}`);
        }
        if (leadsToObject && !reaches(ctx.grant, target.name)) {
          throw forbidden(`${target.name} is not granted to ${callerOf(ctx)}`);
        }
        return resolve(source, fieldArgs, ctx, info);
      };
    }
  }
}

// ------------------------------------------------------------ the audit trail

// Durability: the hub's audit trail is SQLite in WAL mode (adapters/base.py open_engine:
// PRAGMA journal_mode=WAL) with SQLite's default synchronous=FULL (2), each commit group
// fsync'd before the responses waiting on it leave, its checkpoint then appended to the
// witness file and fsync'd. The peer sets the same two PRAGMAs explicitly.
class Trail {
  constructor(directory) {
    mkdirSync(directory, { recursive: true, mode: 0o700 });
    this.db = new Database(join(directory, "peer-audit.sqlite"));
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = FULL");
    this.durability = {
      journal_mode: this.db.pragma("journal_mode", { simple: true }),
      synchronous: this.db.pragma("synchronous", { simple: true }),
    };
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS audit_record (
        seq INTEGER PRIMARY KEY, at VARCHAR(40) NOT NULL, request_id VARCHAR(40) NOT NULL,
        client TEXT NOT NULL, role VARCHAR(40) NOT NULL, purpose VARCHAR(60), case_reference VARCHAR(100),
        person_id INTEGER NOT NULL, fields TEXT NOT NULL, restricted_until DATE,
        prev_hash VARCHAR(64) NOT NULL, hash VARCHAR(64) NOT NULL);
      CREATE INDEX IF NOT EXISTS ix_audit_record_person_id ON audit_record (person_id);
      CREATE TABLE IF NOT EXISTS audit_checkpoint (
        id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER NOT NULL, hash VARCHAR(64) NOT NULL,
        signature VARCHAR(200) NOT NULL, sealed_at VARCHAR(40) NOT NULL);`);
    this.head = this.db.prepare("SELECT seq, hash FROM audit_record ORDER BY seq DESC LIMIT 1").raw(true);
    this.insert = this.db.prepare(
      "INSERT INTO audit_record VALUES (@seq, @at, @request_id, @client, @role, @purpose, @case_reference," +
        " @person_id, @fields, @restricted_until, @prev_hash, @hash)",
    );
    this.checkpoint = this.db.prepare(
      "INSERT INTO audit_checkpoint (seq, hash, signature, sealed_at) VALUES (?, ?, ?, ?)",
    );
    this.witnessPath = join(directory, "peer-audit-witness.jsonl");
    // The peer's own checkpoint key (a competitor has its own; the hub's stays the hub's).
    const pair = generateKeyPairSync("ed25519");
    this.key = pair.privateKey;
    writeFileSync(join(directory, "peer-audit-key.pub.pem"), pair.publicKey.export({ type: "spki", format: "pem" }));
    this.pending = [];
    this.scheduled = false;
    this.commit = this.db.transaction((entries) => {
      const head = this.head.get();
      let [seq, prev] = head ?? [0, "0".repeat(64)];
      for (const entry of entries) {
        seq += 1;
        const hash = createHash("sha256").update(`${prev}\n`).update(canonical(entry)).digest("hex");
        this.insert.run({ ...entry, seq, fields: JSON.stringify(entry.fields), prev_hash: prev, hash });
        prev = hash;
      }
      const signature = sign(null, Buffer.from(`${seq}:${prev}`), this.key).toString("base64");
      const sealedAt = isoNow();
      this.checkpoint.run(seq, prev, signature, sealedAt);
      return { seq, hash: prev, signature, sealed_at: sealedAt };
    });
  }

  /** Resolves once the entries are durable (group commit: all entries of one loop turn). */
  append(entries) {
    if (!entries.length) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.pending.push({ entries, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  flush() {
    const batch = this.pending;
    this.pending = [];
    this.scheduled = false;
    try {
      const checkpoint = this.commit(batch.flatMap((b) => b.entries));
      const descriptor = openSync(this.witnessPath, "a", 0o600);
      try {
        writeSync(descriptor, `${JSON.stringify(checkpoint)}\n`);
        fsyncSync(descriptor);
      } finally {
        closeSync(descriptor);
      }
      for (const b of batch) b.resolve();
    } catch (error) {
      for (const b of batch) b.reject(error);
    }
  }
}

function isoNow() {
  // Python's datetime.isoformat() of an aware UTC time: microseconds (none when they are 0), +00:00.
  return new Date().toISOString().replace(/\.(\d{3})Z$/, (_m, ms) => (ms === "000" ? "+00:00" : `.${ms}000+00:00`));
}

function canonical(entry) {
  // orjson.dumps(..., OPT_SORT_KEYS) of audit/chain.py AuditEntry.canonical().
  return JSON.stringify({
    at: entry.at,
    case_reference: entry.case_reference,
    client: entry.client,
    fields: entry.fields,
    person_id: entry.person_id,
    purpose: entry.purpose,
    request_id: entry.request_id,
    restricted_until: entry.restricted_until,
    role: entry.role,
  });
}

/** The field paths one response showed of each person (as schema/access.py notes them). */
function auditFields(ctx, data) {
  const entries = [];
  const fieldsOf = new Map();
  for (const [path, personId] of ctx.persons) {
    let value = data;
    for (const key of pathKeys(path)) value = value?.[key];
    if (value == null) continue;
    let fields = fieldsOf.get(personId);
    if (!fields) fieldsOf.set(personId, (fields = new Set()));
    walk(ctx, value, schema.getType("Person"), "Person", fields);
  }
  const at = isoNow();
  for (const [personId, fields] of [...fieldsOf].sort((a, b) => a[0] - b[0])) {
    entries.push({
      at,
      request_id: ctx.requestId,
      client: ctx.claims.sub,
      role: ctx.claims.role,
      purpose: ctx.purpose,
      case_reference: ctx.caseReference,
      person_id: personId,
      fields: [...fields].sort(),
      restricted_until: null,
    });
  }
  return entries;
}

function pathKeys(path) {
  const keys = [];
  for (let p = path; p; p = p.prev) keys.push(p.key);
  return keys.reverse();
}

function walk(ctx, object, type, prefix, fields) {
  const defs = type.getFields();
  for (const [name, value] of Object.entries(object)) {
    const def = defs[name];
    if (!def) continue;
    const key = `${type.name}.${name}`;
    if (guarded.has(key) && !ctx.grant.readable.has(key)) continue; // denied: nothing was shown
    const path = `${prefix}.${name}`;
    const target = getNamedType(def.type);
    if (value === null || (Array.isArray(value) && value.length === 0) || isLeafType(target)) {
      fields.add(path);
    } else if (target instanceof GraphQLObjectType && reaches(ctx.grant, target.name)) {
      for (const item of Array.isArray(value) ? value : [value]) walk(ctx, item, target, path, fields);
    }
  }
}

const trail = BARE ? null : new Trail(args["trail-dir"] ?? join(DATA, "peer"));

// ------------------------------------------------------------ the server

const tokenKey = BARE ? null : await importSPKI(config.token.publicKeyPem, "EdDSA");

class Refused extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function callerContext(request) {
  const requestId = randomUUID().replaceAll("-", "");
  if (BARE) return { loaders: loaders(), persons: [], requestId };
  const header = request.headers.get("authorization") ?? "";
  if (!header.startsWith("Bearer ")) throw new Refused(401, "UNAUTHENTICATED", "a signed token is required");
  let claims;
  try {
    ({ payload: claims } = await jwtVerify(header.slice(7), tokenKey, {
      issuer: config.token.issuer,
      algorithms: ["EdDSA"],
      requiredClaims: ["exp", "iss", "sub", "iat"],
    }));
  } catch {
    throw new Refused(401, "UNAUTHENTICATED", "the token is not one this hub signed");
  }
  const purpose = request.headers.get("x-purpose");
  const purposes = Array.isArray(claims.purposes) ? claims.purposes : [];
  if (purpose != null && !purposes.includes(purpose)) {
    throw new Refused(403, "FORBIDDEN", "the token does not carry this purpose");
  }
  const grant = grants.get(`${claims.role}\u0000${purpose ?? ""}`);
  if (!grant) throw new Refused(403, "FORBIDDEN", "no grant for this role and purpose");
  return {
    loaders: loaders(),
    persons: [],
    requestId,
    claims,
    purpose,
    grant,
    caseReference: request.headers.get("x-case-reference"),
  };
}

const auditPlugin = {
  onExecute({ setExecuteFn, executeFn }) {
    setExecuteFn(async (execArgs) => {
      const result = await executeFn(execArgs);
      const ctx = execArgs.contextValue;
      if (!result.data || !ctx.persons.length) return result;
      try {
        await trail.append(auditFields(ctx, result.data));
      } catch {
        return {
          data: null,
          errors: [
            new GraphQLError("The access could not be recorded in the audit trail, so no data is returned.", {
              extensions: { code: "AUDIT_NOT_RECORDED" },
            }),
          ],
        };
      }
      return result;
    });
  },
};

const yoga = createYoga({
  schema,
  graphqlEndpoint: "/graphql",
  graphiql: false,
  landingPage: false,
  maskedErrors: false,
  logging: false,
  context: async ({ request }) => {
    try {
      return await callerContext(request);
    } catch (error) {
      if (error instanceof Refused) {
        throw new GraphQLError(error.message, {
          extensions: { code: error.code, http: { status: error.status } },
        });
      }
      throw error;
    }
  },
  plugins: BARE ? [] : [auditPlugin],
});

const server = createServer(yoga);
server.keepAliveTimeout = 60_000;
server.listen(Number(args.port), args.host, () => {
  const mode = BARE ? "bare (no token, grants or audit)" : "token, grants and audit";
  const durability = trail ? ` audit durability: ${JSON.stringify(trail.durability)}` : "";
  console.log(`peer listening on http://${args.host}:${args.port}/graphql, ${mode};${durability}`);
});
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
