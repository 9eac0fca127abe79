/**
 * One view of a request's inputs whether it came as multipart/form-data (file fields plus text fields)
 * or as JSON with base64 images, so each route reads its fields once. Uploads stay in memory.
 */
import type { FastifyRequest } from "fastify";
// Brings in the request.isMultipart()/parts() declarations.
import type {} from "@fastify/multipart";
import { ClipOodError, isClipOodError, messageOf } from "../../errors.js";
import { checkCount, LimitError } from "../limits.js";
import type { Limits } from "../limits.js";

export interface Upload {
  name: string;
  data: Buffer;
}

export interface RequestInput {
  /** Uploaded images of a file field (`image`, or `id`/`ood` for calibration); JSON: `images`/`id.images`/…. */
  files(field: string): Upload[];
  /** A scalar field as text. */
  text(field: string): string | undefined;
  /** A list field: a JSON array, repeated multipart fields, or one text field holding a JSON array. */
  list(field: string): string[] | undefined;
  /** A field as the client sent it (JSON only; multipart gives text). */
  raw(field: string): unknown;
}

const BASE64 = /^[A-Za-z0-9+/\r\n]*={0,2}$/;

function decodeBase64(value: unknown, where: string): Buffer {
  const text = typeof value === "string" ? value.replace(/^data:[^,]*;base64,/, "") : undefined;
  if (text === undefined || !BASE64.test(text)) {
    throw new ClipOodError("USAGE", `${where} is not base64 image data`, { hint: 'send {"name": "a.jpg", "data": "<base64 of the file>"}; URLs are never fetched' });
  }
  return Buffer.from(text, "base64");
}

function jsonUploads(value: unknown, field: string): Upload[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new ClipOodError("USAGE", `"${field}" must be an array of images`, { hint: '[{"name": "a.jpg", "data": "<base64>"}]' });
  return value.map((v: unknown, i) => {
    const where = `${field}[${i}]`;
    if (typeof v === "string") return { name: `${field}-${i + 1}`, data: decodeBase64(v, where) };
    if (typeof v === "object" && v !== null && "data" in v) {
      const o = v as { name?: unknown; data?: unknown };
      return { name: typeof o.name === "string" && o.name !== "" ? o.name : `${field}-${i + 1}`, data: decodeBase64(o.data, where) };
    }
    throw new ClipOodError("USAGE", `${where} is not an image object`, { hint: '{"name": "a.jpg", "data": "<base64>"}' });
  });
}

function asList(value: unknown, field: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) return value.map((v) => (typeof v === "string" ? v : JSON.stringify(v)));
  if (typeof value === "string") {
    if (value.trim().startsWith("[")) {
      try {
        return asList(JSON.parse(value) as unknown, field);
      } catch {
        throw new ClipOodError("USAGE", `"${field}" is not a valid JSON array`, { hint: `send "${field}" as a JSON array of strings` });
      }
    }
    return [value];
  }
  throw new ClipOodError("USAGE", `"${field}" must be a list of strings`, { hint: `send "${field}" as a JSON array of strings` });
}

function jsonInput(body: Record<string, unknown>): RequestInput {
  const at = (field: string): unknown => body[field];
  return {
    files(field) {
      // `image` fields are `images` in JSON; calibration's `id`/`ood` carry {images: […]}.
      if (field === "image") return jsonUploads(at("images"), "images");
      const v = at(field);
      return typeof v === "object" && v !== null && !Array.isArray(v) ? jsonUploads((v as { images?: unknown }).images, `${field}.images`) : [];
    },
    text(field) {
      const v = at(field);
      return typeof v === "string" ? v : typeof v === "number" || typeof v === "boolean" ? String(v) : undefined;
    },
    list: (field) => asList(at(field), field),
    raw: at,
  };
}

const TOO_LARGE = new Set(["FST_REQ_FILE_TOO_LARGE", "FST_PARTS_LIMIT", "FST_FILES_LIMIT", "FST_FIELDS_LIMIT", "FST_ERR_CTP_BODY_TOO_LARGE"]);

/** Reads the request body into memory, within the limits; images are not decoded here. */
export async function readInput(req: FastifyRequest, limits: Limits): Promise<RequestInput> {
  if (!req.isMultipart()) {
    const body = req.body ?? {};
    if (typeof body !== "object" || Array.isArray(body)) throw new ClipOodError("USAGE", "the request body must be a JSON object or multipart/form-data", { hint: "see /openapi.json" });
    const input = jsonInput(body as Record<string, unknown>);
    return input;
  }
  const files = new Map<string, Upload[]>();
  const fields = new Map<string, string[]>();
  let total = 0;
  try {
    for await (const part of req.parts()) {
      if (part.type === "file") {
        const data = await part.toBuffer();
        total += data.length;
        const list = files.get(part.fieldname) ?? [];
        list.push({ name: part.filename || `${part.fieldname}-${list.length + 1}`, data });
        files.set(part.fieldname, list);
        checkCount("maxImages", [...files.values()].reduce((a, l) => a + l.length, 0), limits, "images");
      } else {
        const value = typeof part.value === "string" ? part.value : String(part.value);
        total += value.length;
        fields.set(part.fieldname, [...(fields.get(part.fieldname) ?? []), value]);
      }
      if (total > limits.maxBodyBytes) throw new LimitError("maxBodyBytes", `the request body is over ${limits.maxBodyBytes} bytes`, 413);
    }
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code && TOO_LARGE.has(code)) throw new LimitError("maxBodyBytes", `the request body is over ${limits.maxBodyBytes} bytes`, 413);
    if (e instanceof LimitError || isClipOodError(e) || typeof (e as { statusCode?: unknown }).statusCode === "number") throw e;
    // The parser's own failures (no boundary, a body cut short) are the client's, not the server's.
    throw new ClipOodError("USAGE", `the multipart body cannot be read: ${messageOf(e)}`, { hint: "send multipart/form-data with its boundary, as browsers and curl -F do" });
  }
  return {
    files: (field) => files.get(field) ?? [],
    text: (field) => fields.get(field)?.[0],
    list(field) {
      const values = fields.get(field);
      if (!values) return undefined;
      return values.length === 1 ? asList(values[0], field) : values;
    },
    raw: (field) => fields.get(field)?.[0],
  };
}
