/**
 * A Redis user that may only read keys under a prefix, as score's user in
 * deploy/redis/users.acl reads models and feedback (no scripts, no writes).
 *
 * @module
 */

/** The commands a test's admin client needs here (ioredis' `call`). */
interface _Admin {
  call(...args: string[]): Promise<unknown>;
}

/**
 * Creates the user; disposing it deletes the user.
 *
 * @param admin a client allowed to run ACL commands
 * @param prefix the keys it may read
 * @returns its name and password, and `denied()`: whether Redis's ACL log
 *   holds a command it was refused
 */
export async function readOnlyUser(admin: _Admin, prefix: string) {
  const username = `reader-${crypto.randomUUID().slice(0, 8)}`;
  const password = crypto.randomUUID();
  // -@dangerous comes after the categories it trims; INFO (ioredis' ready
  // check) is added back after it, as in users.acl.
  await admin.call(
    "ACL",
    "SETUSER",
    username,
    "on",
    `>${password}`,
    "resetkeys",
    "-@all",
    "+@connection",
    "+@read",
    "-@dangerous",
    "+info",
    `%R~${prefix}*`,
  );
  return {
    username,
    password,
    /** The ACL log's entries of this user, as JSON ("" when none). */
    async denied(): Promise<string> {
      const log = JSON.stringify(await admin.call("ACL", "LOG"));
      return log.includes(username) ? log.slice(0, 800) : "";
    },
    async [Symbol.asyncDispose](): Promise<void> {
      await admin.call("ACL", "DELUSER", username).catch(() => {});
    },
  };
}
