// Secrets at rest, each value sealed with the console's secret key (app/services/secret-box.server.ts)
// and bound to its purpose: an app secret to `app-secret:<app id>:<name>`, a registry password to
// `registry:<host>`. Plaintext never enters the database.
import { sql } from "drizzle-orm";
import { primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { apps } from "./apps";

export const appSecrets = sqliteTable(
  "app_secrets",
  {
    appId: text("app_id")
      .notNull()
      .references(() => apps.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    sealed: text("sealed").notNull(),
    updatedAt: text("updated_at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`),
  },
  (t) => [primaryKey({ columns: [t.appId, t.name] })],
);

/** Console-wide logins for private image registries (admin). */
export const registryCredentials = sqliteTable("registry_credentials", {
  host: text("host").primaryKey(),
  username: text("username").notNull(),
  passwordSealed: text("password_sealed").notNull(),
  createdBy: text("created_by").notNull(),
  updatedAt: text("updated_at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`),
});
