import { Type } from "@sinclair/typebox";
import { validationFailed } from "../domain/errors.js";

/** Keyset paging over UUIDv7 ids: the cursor is the last id of a page, opaque to clients. */
const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 200;

export const PagingQuery = {
  cursor: Type.Optional(
    Type.String({ maxLength: 128, description: "`nextCursor` of the previous page" }),
  ),
  limit: Type.Optional(
    Type.String({
      pattern: "^[0-9]{1,3}$",
      description: `Page size, 1 to ${MAX_PAGE} (default ${DEFAULT_PAGE})`,
    }),
  ),
};

/** The page size asked for, and the id to continue below; bad values are 400s. */
export function pageOf(query: { cursor?: string; limit?: string }): {
  limit: number;
  before?: string;
} {
  const limit = query.limit === undefined ? DEFAULT_PAGE : Number(query.limit);
  if (limit < 1 || limit > MAX_PAGE) {
    throw validationFailed("limit", `must be between 1 and ${MAX_PAGE}`);
  }
  if (query.cursor === undefined) return { limit };
  const before = Buffer.from(query.cursor, "base64url").toString();
  if (!ID.test(before)) throw validationFailed("cursor", "is not a cursor this server issued");
  return { limit, before };
}

/** The cursor for the page after `rows`, or null when `rows` was the last page. */
export function nextCursor(rows: Array<{ id: string }>, limit: number): string | null {
  const last = rows[limit - 1];
  return rows.length > limit && last ? Buffer.from(last.id).toString("base64url") : null;
}
