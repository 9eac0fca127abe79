/**
 * What one request may ask of the server. Every limit has a name that error responses carry, so a
 * client learns which one it hit and what the server allows.
 */
export interface Limits {
  /** Request body bytes (JSON, or all multipart parts together). */
  maxBodyBytes: number;
  /** Decoded pixels per image (width × height): decompression bombs are refused before decoding. */
  maxPixels: number;
  /** Images per request. */
  maxImages: number;
  /** Classes per request. */
  maxClasses: number;
  /** Characters per class name, description, template or search text. */
  maxPromptLength: number;
  /** Requests waiting for the inference pool; beyond it the server answers 503 with Retry-After. */
  maxQueue: number;
  /** Requests running inference at once. */
  concurrency: number;
  /** Milliseconds a request may take, queueing included, before it is answered 504. */
  requestTimeoutMs: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxBodyBytes: 50 * 1024 * 1024,
  maxPixels: 50_000_000,
  maxImages: 64,
  maxClasses: 2000,
  maxPromptLength: 1000,
  maxQueue: 32,
  concurrency: 2,
  requestTimeoutMs: 120_000,
});

export type LimitName = keyof Limits;

/** A request over a limit: 413 for sizes, 400 for counts and lengths. */
export class LimitError extends Error {
  constructor(
    readonly limit: LimitName,
    message: string,
    readonly status: 400 | 413 = 400,
  ) {
    super(message);
    this.name = "LimitError";
  }
}

export function checkCount(limit: "maxImages" | "maxClasses", count: number, limits: Limits, what: string): void {
  if (count > limits[limit]) throw new LimitError(limit, `${count} ${what} in one request; the server takes at most ${limits[limit]}`);
}

export function checkLength(text: string, limits: Limits, what: string): void {
  if (text.length > limits.maxPromptLength) {
    throw new LimitError("maxPromptLength", `${what} is ${text.length} characters long; the server takes at most ${limits.maxPromptLength}`);
  }
}
