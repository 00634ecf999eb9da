import type { Problem } from "./types.js";

/** A problem+json answer from Latchkey; `code` is the contract's stable error code. */
export class LatchkeyError extends Error {
  override name = "LatchkeyError";
  readonly status: number;
  readonly code: string;

  constructor(readonly problem: Problem) {
    super(problem.detail || problem.title);
    this.status = problem.status;
    this.code = problem.code;
  }

  /** Reads a failed response; anything that is not problem+json becomes `http_<status>`. */
  static async from(res: Response): Promise<LatchkeyError> {
    const body = (await res.json().catch(() => null)) as Partial<Problem> | null;
    return new LatchkeyError({
      type: body?.type ?? "about:blank",
      title: body?.title ?? res.statusText,
      status: res.status,
      detail: body?.detail ?? `HTTP ${res.status}`,
      code: body?.code ?? `http_${res.status}`,
      ...(body?.errors ? { errors: body.errors } : {}),
    });
  }
}

/** A problem as the response that carried it, for `fetch` to answer with. */
export function problemResponse(problem: Problem): Response {
  return new Response(JSON.stringify(problem), {
    status: problem.status,
    headers: { "content-type": "application/problem+json" },
  });
}
