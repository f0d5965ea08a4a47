// AES-SIV (RFC 5297) with a 64-byte key (AES-256-SIV), as `cryptography`'s AESSIV seals the
// hub's global ids and cursors (opaque/sealing.py): output = V (16 bytes) || AES-CTR(V', P),
// one associated-data item, the purpose. Node's crypto has no SIV mode: it is built here from
// AES-256-CBC (for CMAC) and AES-256-CTR, both from node:crypto.
import { createCipheriv, timingSafeEqual } from "node:crypto";

const ZERO = Buffer.alloc(16);

function dbl(block) {
  const out = Buffer.alloc(16);
  let carry = 0;
  for (let i = 15; i >= 0; i--) {
    const b = block[i];
    out[i] = ((b << 1) | carry) & 0xff;
    carry = b >> 7;
  }
  if (block[0] & 0x80) out[15] ^= 0x87;
  return out;
}

function xor(a, b) {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i];
  return out;
}

class Cmac {
  constructor(key) {
    this.key = key;
    const l = this.#cbc(ZERO);
    this.k1 = dbl(l);
    this.k2 = dbl(this.k1);
  }

  #cbc(data) {
    const cipher = createCipheriv("aes-256-cbc", this.key, ZERO);
    cipher.setAutoPadding(false);
    const out = cipher.update(data);
    return out.subarray(out.length - 16);
  }

  mac(message) {
    let blocks;
    if (message.length > 0 && message.length % 16 === 0) {
      blocks = Buffer.from(message);
      const last = blocks.length - 16;
      for (let i = 0; i < 16; i++) blocks[last + i] ^= this.k1[i];
    } else {
      const padded = Buffer.alloc(message.length + (16 - (message.length % 16)));
      message.copy(padded);
      padded[message.length] = 0x80;
      const last = padded.length - 16;
      for (let i = 0; i < 16; i++) padded[last + i] ^= this.k2[i];
      blocks = padded;
    }
    return this.#cbc(blocks);
  }
}

export class Sealer {
  constructor(secret) {
    if (secret.length !== 64) throw new Error("the sealing secret must be 64 bytes (AES-256-SIV)");
    this.cmac = new Cmac(secret.subarray(0, 32));
    this.ctrKey = secret.subarray(32);
  }

  #s2v(ad, plaintext) {
    let d = this.cmac.mac(ZERO);
    d = xor(dbl(d), this.cmac.mac(ad));
    let t;
    if (plaintext.length >= 16) {
      t = Buffer.from(plaintext);
      const off = t.length - 16;
      for (let i = 0; i < 16; i++) t[off + i] ^= d[i];
    } else {
      const padded = Buffer.alloc(16);
      plaintext.copy(padded);
      padded[plaintext.length] = 0x80;
      t = xor(dbl(d), padded);
    }
    return this.cmac.mac(t);
  }

  #ctr(v, data) {
    const q = Buffer.from(v);
    q[8] &= 0x7f;
    q[12] &= 0x7f;
    const cipher = createCipheriv("aes-256-ctr", this.ctrKey, q);
    return Buffer.concat([cipher.update(data), cipher.final()]);
  }

  /** The text the hub hands out for `value` (bytes) under `purpose` (bytes): url-safe base64, unpadded. */
  seal(purpose, value) {
    const v = this.#s2v(purpose, value);
    return Buffer.concat([v, this.#ctr(v, value)]).toString("base64url");
  }

  /** The value sealed under `purpose`, or null for any text the hub did not seal so. */
  open(purpose, text) {
    if (typeof text !== "string" || !text || text.length > 512) return null;
    const sealed = Buffer.from(text, "base64url");
    if (sealed.length < 16) return null;
    const v = sealed.subarray(0, 16);
    const plaintext = this.#ctr(v, sealed.subarray(16));
    return timingSafeEqual(v, this.#s2v(purpose, plaintext)) ? plaintext : null;
  }
}
