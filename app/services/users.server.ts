// User management (admin): list, create, update (role, password, disabled), remove. The last
// active admin can be neither demoted, disabled nor removed, so the console never locks itself out.
import { randomUUID } from "node:crypto";
import { and, asc, count, eq, isNull, ne } from "drizzle-orm";
import { z } from "zod";
import { sessions, users, type Role, type User } from "../../db/schema";
import type { Actor, ConsoleContext } from "../context.server";
import { recordAudit } from "./audit.server";
import { parseInput } from "./parse-input.server";
import { PasswordSchema, RoleSchema, UsernameSchema, hashPassword } from "./auth.server";
import { ServiceError } from "./errors";

export const UserCreateInput = z.strictObject({ username: UsernameSchema, password: PasswordSchema, role: RoleSchema });
export const UserUpdateInput = z.strictObject({
  username: UsernameSchema,
  role: RoleSchema.optional(),
  password: PasswordSchema.optional(),
  disabled: z.boolean({ error: "must be true or false" }).optional(),
});
export const UsernameInput = z.strictObject({ username: UsernameSchema });

export interface UserDto {
  username: string;
  role: Role;
  disabled: boolean;
  lastSignInAt: string | null;
  createdAt: string;
  updatedAt: string;
}

function toDto(u: User): UserDto {
  return { username: u.username, role: u.role, disabled: u.disabledAt != null, lastSignInAt: u.lastSignInAt, createdAt: u.createdAt, updatedAt: u.updatedAt };
}

export async function listUsers(ctx: Pick<ConsoleContext, "db">): Promise<UserDto[]> {
  return (await ctx.db.select().from(users).orderBy(asc(users.username))).map(toDto);
}

export async function createUser(ctx: Pick<ConsoleContext, "db">, actor: Actor, raw: unknown): Promise<UserDto> {
  const input = parseInput(UserCreateInput, raw);
  const passwordHash = await hashPassword(input.password);
  return ctx.db.transaction(async (tx) => {
    const [taken] = await tx.select({ id: users.id }).from(users).where(eq(users.username, input.username));
    if (taken) throw ServiceError.field("CONFLICT", "username", `is already taken (${input.username})`);
    const [row] = await tx.insert(users).values({ id: randomUUID(), username: input.username, passwordHash, role: input.role }).returning();
    await recordAudit(tx, actor, { action: "user.create", target: `user:${input.username}`, detail: { role: input.role } });
    return toDto(row);
  });
}

type Tx = Parameters<Parameters<ConsoleContext["db"]["transaction"]>[0]>[0];

async function otherActiveAdmins(tx: Tx, userId: string): Promise<number> {
  const [r] = await tx
    .select({ n: count() })
    .from(users)
    .where(and(eq(users.role, "admin"), isNull(users.disabledAt), ne(users.id, userId)));
  return r?.n ?? 0;
}

async function requireUserRow(tx: Tx, username: string): Promise<User> {
  const [row] = await tx.select().from(users).where(eq(users.username, username));
  if (!row) throw ServiceError.field("NOT_FOUND", "username", `does not name a user (${username})`);
  return row;
}

export async function updateUser(ctx: Pick<ConsoleContext, "db">, actor: Actor, raw: unknown): Promise<UserDto> {
  const input = parseInput(UserUpdateInput, raw);
  const passwordHash = input.password ? await hashPassword(input.password) : undefined;
  return ctx.db.transaction(async (tx) => {
    const row = await requireUserRow(tx, input.username);
    const losesAdmin = row.role === "admin" && !row.disabledAt && ((input.role && input.role !== "admin") || input.disabled === true);
    if (losesAdmin && (await otherActiveAdmins(tx, row.id)) === 0) {
      throw ServiceError.field("PRECONDITION_FAILED", input.role && input.role !== "admin" ? "role" : "disabled", "would leave the console without an active admin");
    }
    const set: Partial<User> = { updatedAt: new Date().toISOString() };
    if (input.role) set.role = input.role;
    if (passwordHash) set.passwordHash = passwordHash;
    if (input.disabled !== undefined) set.disabledAt = input.disabled ? (row.disabledAt ?? new Date().toISOString()) : null;
    const [updated] = await tx.update(users).set(set).where(eq(users.id, row.id)).returning();
    // A new password or a disabled account ends every session of that user at once.
    let ended = 0;
    if (passwordHash || input.disabled) ended = (await tx.delete(sessions).where(eq(sessions.userId, row.id))).rowsAffected;
    await recordAudit(tx, actor, {
      action: "user.update",
      target: `user:${row.username}`,
      detail: {
        ...(input.role && input.role !== row.role ? { role: { from: row.role, to: input.role } } : {}),
        ...(passwordHash ? { passwordChanged: true } : {}),
        ...(input.disabled !== undefined ? { disabled: input.disabled } : {}),
        ...(ended ? { sessionsEnded: ended } : {}),
      },
    });
    return toDto(updated);
  });
}

export async function removeUser(ctx: Pick<ConsoleContext, "db">, actor: Actor, raw: unknown): Promise<{ username: string }> {
  const { username } = parseInput(UsernameInput, raw);
  return ctx.db.transaction(async (tx) => {
    const row = await requireUserRow(tx, username);
    if (row.role === "admin" && !row.disabledAt && (await otherActiveAdmins(tx, row.id)) === 0) {
      throw ServiceError.field("PRECONDITION_FAILED", "username", "is the last active admin");
    }
    await tx.delete(sessions).where(eq(sessions.userId, row.id));
    await tx.delete(users).where(eq(users.id, row.id));
    await recordAudit(tx, actor, { action: "user.remove", target: `user:${username}`, detail: { role: row.role } });
    return { username };
  });
}
