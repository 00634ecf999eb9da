import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import type { FastifyRequest } from "fastify";
import { AuthError } from "../../domain/errors.js";
import type { User } from "../../domain/user.js";
import {
  type AdminActor,
  deleteUser,
  revokeUserSessions,
  updateUser,
} from "../../flows/admin-users.js";
import type { Services } from "../../services.js";
import { clientInfo } from "../credentials.js";
import { authOf, requireAdmin, requireAuth } from "../guards.js";
import { nextCursor, PagingQuery, pageOf } from "../paging.js";
import { authSecurity, problemResponses, Text, UserView } from "../schemas.js";
import { userView } from "../token-reply.js";

const AdminUserView = Type.Object(
  {
    ...UserView.properties,
    disabled: Type.Boolean({ description: "Disabled accounts cannot sign in or refresh" }),
    updatedAt: Type.String({ format: "date-time" }),
  },
  { $id: "AdminUser", description: "The contract's user object plus admin-only fields" },
);

const UserParams = Type.Object({ id: Text({ maxLength: 64 }) });
const Name = (description: string) =>
  Type.String({ minLength: 1, maxLength: 32, pattern: "^[a-z][a-z0-9_-]*$", description });

const AdminChangeBody = Type.Object(
  {
    role: Type.Optional(
      Name("`admin` reaches these routes; any other role is your product's to interpret"),
    ),
    tier: Type.Optional(Name("One of the configured tiers (their `limits` apply)")),
    subscriptionStatus: Type.Optional(Name("Free-form, e.g. `active`, `past_due`, `none`")),
    disabled: Type.Optional(
      Type.Boolean({
        description:
          "true ends every session of the user at once (API tokens answer 403 `account_disabled`); false deletes their API tokens",
      }),
    ),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const adminRoutes: FastifyPluginAsyncTypebox<{ svc: Services }> = async (app, { svc }) => {
  const tags = ["admin"];
  const onRequest = [requireAuth(svc), requireAdmin()];
  const security = authSecurity;
  const view = (user: User) => ({
    ...userView(user, svc.config),
    disabled: user.disabled,
    updatedAt: new Date(user.updatedAt).toISOString(),
  });
  const actor = (request: FastifyRequest): AdminActor => ({
    userId: authOf(request).user.id,
    client: clientInfo(request),
  });
  app.addSchema(AdminUserView);

  app.get(
    "/admin/users",
    {
      onRequest,
      schema: {
        tags,
        security,
        summary: "List users, newest first, by cursor; `search` matches email or username",
        querystring: Type.Object(
          {
            search: Type.Optional(
              Text({
                maxLength: 254,
                description:
                  "Case-insensitive substring of the email or the username (for a guest: its name or the email it gave)",
              }),
            ),
            q: Type.Optional(Text({ maxLength: 254, description: "Alias of `search`" })),
            ...PagingQuery,
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            users: Type.Array(Type.Ref(AdminUserView)),
            nextCursor: Type.Union([Type.String(), Type.Null()], {
              description: "Pass as `cursor` for the next page; null on the last page",
            }),
          }),
          ...problemResponses(400, 401, 403),
        },
      },
    },
    async (request) => {
      const { limit, before } = pageOf(request.query);
      const search = request.query.search ?? request.query.q;
      const rows = await svc.store.users.list({ search, before, limit: limit + 1 });
      return { users: rows.slice(0, limit).map(view), nextCursor: nextCursor(rows, limit) };
    },
  );

  app.get(
    "/admin/users/:id",
    {
      onRequest,
      schema: {
        tags,
        security,
        summary: "One user",
        params: UserParams,
        response: { 200: Type.Ref(AdminUserView), ...problemResponses(401, 403, 404) },
      },
    },
    async (request) => {
      const user = await svc.store.users.findById(request.params.id);
      if (!user) throw new AuthError("not_found", "No such user");
      return view(user);
    },
  );

  app.patch(
    "/admin/users/:id",
    {
      onRequest,
      schema: {
        tags,
        security,
        summary: "Change a user's role, tier, subscriptionStatus or disabled flag",
        description:
          "Disabling revokes every session of the user at once, on every node (login and API " +
          "tokens then answer 403 `account_disabled`); enabling again deletes the API tokens " +
          "and restores no session. Demoting or disabling the last enabled admin is " +
          "409 `conflict`. Access tokens already issued keep their role/tier claims until they " +
          "expire; Latchkey's own checks read the stored values.",
        params: UserParams,
        body: AdminChangeBody,
        response: { 200: Type.Ref(AdminUserView), ...problemResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => view(await updateUser(svc, actor(request), request.params.id, request.body)),
  );

  app.delete(
    "/admin/users/:id",
    {
      onRequest,
      schema: {
        tags,
        security,
        summary: "Delete a user with every session, API token and MFA secret",
        description: "Deleting the last enabled admin is 409 `conflict`.",
        params: UserParams,
        response: { 204: Type.Null(), ...problemResponses(401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      await deleteUser(svc, actor(request), request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.post(
    "/admin/users/:id/sessions/revoke",
    {
      onRequest,
      schema: {
        tags,
        security,
        summary: "Revoke every session of a user (refused on every node within a second)",
        params: UserParams,
        response: { 204: Type.Null(), ...problemResponses(401, 403, 404) },
      },
    },
    async (request, reply) => {
      await revokeUserSessions(svc, actor(request), request.params.id);
      return reply.code(204).send(null);
    },
  );
};
