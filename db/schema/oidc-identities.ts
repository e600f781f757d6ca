import { sql } from "drizzle-orm";
import { index, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { users } from "./users";

/**
 * A person at an identity provider, linked to a console user by issuer + subject (never by e-mail
 * or user name). `groups` is what the provider said at the last sign-in (roles derive from it).
 */
export const oidcIdentities = sqliteTable(
  "oidc_identities",
  {
    id: text("id").primaryKey(),
    issuer: text("issuer").notNull(),
    subject: text("subject").notNull(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    email: text("email"),
    groups: text("groups", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
    createdAt: text("created_at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`),
    lastSignInAt: text("last_sign_in_at"),
  },
  (t) => [uniqueIndex("oidc_identities_issuer_subject").on(t.issuer, t.subject), index("oidc_identities_user").on(t.userId)],
);

export type OidcIdentity = typeof oidcIdentities.$inferSelect;
