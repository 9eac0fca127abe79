/**
 * The service's refusals that are neither the client's input (ClipOodError) nor a limit: the HTTP layer
 * answers them 404 and 409. Apart from service.ts so that its helpers (data-roots.ts) can throw them.
 */
export class NotFoundError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NotFoundError";
  }
}

export class ConflictError extends Error {
  constructor(
    message: string,
    readonly hint = "choose another name, or DELETE the existing one first",
  ) {
    super(message);
    this.name = "ConflictError";
  }
}
