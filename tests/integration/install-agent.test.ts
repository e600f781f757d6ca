// scripts/install-agent.sh run against a throwaway root (--root: users through useradd --prefix,
// no systemctl): the unit, user, directories, permissions and files it promises, the NVIDIA
// advice, an in-place upgrade, refusals, and --uninstall (--purge) taking it all away again.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { ROOT } from "../support/console";

const execFileAsync = promisify(execFile);
const SCRIPT = join(ROOT, "scripts/install-agent.sh");
const AGENT_BUILD = join(ROOT, "agent/dist/dcc-agent.mjs");
const TOKEN = "dcce_" + "A1b2C3d4E5f6".repeat(4);

let base: string;
let root: string;
let fakeBin: string;

async function install(args: string[], extraPath = fakeBin): Promise<{ code: number; out: string }> {
  try {
    const r = await execFileAsync("bash", [SCRIPT, ...args], { env: { NODE_ENV: "production", PATH: `${extraPath}:${process.env.PATH}`, HOME: "/root" } });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, out: err.stdout + err.stderr };
  }
}

/** A minimal target system: passwd/group/shadow with a docker group, as a box with Docker has. */
async function freshRoot(dir: string): Promise<void> {
  await mkdir(join(dir, "etc"), { recursive: true });
  await writeFile(join(dir, "etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n");
  await writeFile(join(dir, "etc/group"), "root:x:0:\ndocker:x:994:\n");
  await writeFile(join(dir, "etc/shadow"), "root:*:19000:0:99999:7:::\n", { mode: 0o600 });
  await writeFile(join(dir, "etc/gshadow"), "root:*::\ndocker:!::\n", { mode: 0o600 });
}

const passwdEntry = async (name: string) =>
  (await readFile(join(root, "etc/passwd"), "utf8")).split("\n").find((l) => l.startsWith(`${name}:`))?.split(":");
const groupMembers = async (group: string) =>
  ((await readFile(join(root, "etc/group"), "utf8")).split("\n").find((l) => l.startsWith(`${group}:`))?.split(":")[3] ?? "").split(",").filter(Boolean);

beforeAll(async () => {
  expect(process.getuid?.(), "the install script (and so this test) runs as root").toBe(0);
  expect(existsSync(AGENT_BUILD), "npm run build makes agent/dist/dcc-agent.mjs").toBe(true);
  base = await mkdtemp(join(tmpdir(), "dcc-install-"));
  root = join(base, "root");
  await freshRoot(root);
  // A GPU box without the NVIDIA Container Toolkit: nvidia-smi lists a GPU, nvidia-ctk is missing.
  fakeBin = join(base, "bin");
  await mkdir(fakeBin);
  await writeFile(join(fakeBin, "nvidia-smi"), "#!/bin/sh\necho 'GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-00000000-1111-2222-3333-444444444444)'\n");
  await chmod(join(fakeBin, "nvidia-smi"), 0o755);
  await writeFile(join(base, "ca.pem"), "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
});

afterAll(async () => {
  if (base) await rm(base, { recursive: true, force: true });
});

describe("install-agent.sh", () => {
  it("installs the unit, the dcc-agent user and its directories into a throwaway root", async () => {
    const r = await install([
      "--root", root,
      "--console", "https://console.example.com",
      "--enroll", TOKEN,
      "--console-fingerprint", "SHA256:" + "a".repeat(43),
      "--ca-file", join(base, "ca.pem"),
      "--workspace-root", "/srv/dockerstore",
      "--name", "gpu-box-1",
    ]);
    expect(r.code, r.out).toBe(0);

    // The system user: no login, home = state dir, in the docker group.
    const user = await passwdEntry("dcc-agent");
    expect(user).toBeDefined();
    const [, , uid, gid, , home, shell] = user!;
    expect(Number(uid)).toBeLessThan(1000); // a system account
    expect(home).toBe("/var/lib/dcc-agent");
    expect(shell).toBe("/usr/sbin/nologin");
    expect(await groupMembers("docker")).toEqual(["dcc-agent"]);
    // Apps run as a system user of their own, distinct from the agent, in no extra group.
    const appUser = await passwdEntry("dcc-app");
    expect(appUser).toBeDefined();
    const [, , appUid, appGid, , , appShell] = appUser!;
    expect(Number(appUid)).toBeLessThan(1000);
    expect([appUid, appGid]).not.toContain(uid);
    expect(appShell).toBe("/usr/sbin/nologin");

    // Directories: state 0700 and workspace root owned by the agent; its binary owned by root.
    const st = await stat(join(root, "var/lib/dcc-agent"));
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([Number(uid), Number(gid), 0o700]);
    const ws = await stat(join(root, "srv/dockerstore"));
    expect([ws.uid, ws.gid, ws.mode & 0o777]).toEqual([Number(uid), Number(gid), 0o755]);
    const bin = await stat(join(root, "opt/dcc-agent/dcc-agent.mjs"));
    expect([bin.uid, bin.mode & 0o777]).toEqual([0, 0o755]);
    expect(await readFile(join(root, "opt/dcc-agent/dcc-agent.mjs"))).toEqual(await readFile(AGENT_BUILD));

    // Configuration: 0600, root's; the token alone in its own file until enrolment.
    const envFile = join(root, "etc/dcc-agent/agent.env");
    const tokenFile = join(root, "etc/dcc-agent/enroll.env");
    for (const f of [envFile, tokenFile]) {
      const s = await stat(f);
      expect([s.uid, s.mode & 0o777], f).toEqual([0, 0o600]);
    }
    const env = await readFile(envFile, "utf8");
    expect(env).toContain("DCC_CONSOLE_URL=https://console.example.com\n");
    expect(env).toContain("DCC_AGENT_STATE_DIR=/var/lib/dcc-agent\n");
    expect(env).toContain("DCC_WORKSPACE_ROOT=/srv/dockerstore\n");
    expect(env).toContain(`DCC_APP_UID=${appUid}\nDCC_APP_GID=${appGid}\n`);
    expect(env).toContain("DCC_HOST_NAME=gpu-box-1\n");
    expect(env).toContain("DCC_CA_FILE=/etc/dcc-agent/ca.pem\n");
    expect(env).not.toContain(TOKEN);
    expect(await readFile(tokenFile, "utf8")).toBe(`DCC_ENROLL_TOKEN=${TOKEN}\n`);
    expect(await readFile(join(root, "etc/dcc-agent/ca.pem"), "utf8")).toContain("BEGIN CERTIFICATE");

    // The unit: the user, the hardening and the only writable paths it promises.
    const unitPath = join(root, "etc/systemd/system/dcc-agent.service");
    const unit = await readFile(unitPath, "utf8");
    const node = process.execPath;
    for (const line of [
      "User=dcc-agent",
      "Group=dcc-agent",
      "SupplementaryGroups=docker",
      "EnvironmentFile=/etc/dcc-agent/agent.env",
      "EnvironmentFile=-/etc/dcc-agent/enroll.env",
      `ExecStart=${node} /opt/dcc-agent/dcc-agent.mjs`,
      "NoNewPrivileges=yes",
      "ProtectSystem=strict",
      "ReadWritePaths=/var/lib/dcc-agent /srv/dockerstore",
      "PrivateTmp=yes",
      "ProtectHome=yes",
      // Only what handing workspaces to the app user and cleaning up after it takes.
      "CapabilityBoundingSet=CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE",
      "AmbientCapabilities=CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE",
      "RestartPreventExitStatus=2 3",
      "WantedBy=multi-user.target",
    ]) {
      expect(unit.split("\n"), line).toContain(line);
    }
    // systemd itself accepts every key (an unknown or misspelt one would be reported).
    const verifyDir = join(base, "verify");
    await mkdir(verifyDir);
    await writeFile(join(verifyDir, "dcc-agent.service"), unit);
    const v = await execFileAsync("systemd-analyze", ["verify", join(verifyDir, "dcc-agent.service")]).then(
      (x) => x.stderr,
      (e: { stderr: string }) => `failed: ${e.stderr}`,
    );
    expect(v.trim()).toBe("");

    // The installed agent runs under the Node it was checked against.
    const version = await execFileAsync(node, [join(root, "opt/dcc-agent/dcc-agent.mjs"), "--version"]);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);

    // A GPU without the Container Toolkit: says so and how to add it.
    expect(r.out).toMatch(/1 NVIDIA GPU\(s\) but the NVIDIA Container Toolkit is not installed/);
    expect(r.out).toContain("apt-get install -y nvidia-container-toolkit");
    expect(r.out).toContain("nvidia-ctk runtime configure --runtime=docker");
    expect(r.out).toMatch(new RegExp(`app containers on this host run as dcc-app \\(uid ${appUid}\\), the agent as dcc-agent \\(uid ${uid}\\)`));
  });

  it("upgrades an enrolled agent in place and drops the spent token", async () => {
    await writeFile(join(root, "var/lib/dcc-agent/identity.json"), "{}");
    const r = await install(["--root", root]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain("already enrolled");
    expect(existsSync(join(root, "etc/dcc-agent/enroll.env"))).toBe(false);
    expect(await readFile(join(root, "etc/dcc-agent/agent.env"), "utf8")).toContain("DCC_CONSOLE_URL=https://console.example.com\n");
    expect((await readFile(join(root, "etc/passwd"), "utf8")).match(/^dcc-agent:/gm)).toHaveLength(1);
  });

  it("with --gateway-domain: writes the gateway settings and grants only the capabilities it needs", async () => {
    const gw = join(base, "gw");
    await freshRoot(gw);
    const r = await install(["--root", gw, "--console", "https://c.example.com", "--token", TOKEN, "--gateway-domain", "apps.example.com", "--gateway-tls", "internal"]);
    expect(r.code, r.out).toBe(0);
    const env = await readFile(join(gw, "etc/dcc-agent/agent.env"), "utf8");
    expect(env).toContain("DCC_GATEWAY_DOMAIN=apps.example.com\n");
    expect(env).toContain("DCC_GATEWAY_TLS=internal\n");
    const unit = (await readFile(join(gw, "etc/systemd/system/dcc-agent.service"), "utf8")).split("\n");
    expect(unit).toContain("CapabilityBoundingSet=CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE CAP_NET_BIND_SERVICE CAP_NET_ADMIN CAP_NET_RAW");
    expect(unit).toContain("AmbientCapabilities=CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE CAP_NET_BIND_SERVICE CAP_NET_ADMIN CAP_NET_RAW");
    expect(unit).toContain("NoNewPrivileges=yes");
    for (const [flag, value] of [["--gateway-domain", "Apps.Example.com"], ["--gateway-domain", "x;touch /tmp/p"], ["--gateway-tls", "self"]]) {
      const other = join(base, `gw-bad-${flag}-${value.length}`);
      await freshRoot(other);
      const bad = await install(["--root", other, "--console", "https://c.example.com", "--token", TOKEN, flag!, value!]);
      expect(bad.code, bad.out).toBe(1);
      expect(bad.out).toContain(flag);
      expect(existsSync(join(other, "etc/systemd/system/dcc-agent.service"))).toBe(false);
    }
  });

  it("refuses what it cannot install safely", async () => {
    const other = join(base, "other");
    await freshRoot(other);
    const noToken = await install(["--root", other, "--console", "https://c.example.com"]);
    expect(noToken.code).toBe(1);
    expect(noToken.out).toMatch(/--token .* is required/);
    const badUrl = await install(["--root", other, "--console", "https://c.example.com\nDCC_ALLOW_INSECURE_GIT=1", "--token", TOKEN]);
    expect(badUrl.code).toBe(1);
    expect(badUrl.out).toMatch(/--console must be/);
    const badRoot = await install(["--root", other, "--console", "https://c.example.com", "--token", TOKEN, "--workspace-root", "/var/lib/dcc-agent/ws"]);
    expect(badRoot.code).toBe(1);
    // An old Node is refused.
    const oldNode = join(base, "old-node");
    await writeFile(oldNode, "#!/bin/sh\ncase \"$1\" in -p) echo 18;; *) echo v18.20.0;; esac\n");
    await chmod(oldNode, 0o755);
    const old = await install(["--root", other, "--console", "https://c.example.com", "--token", TOKEN, "--node", oldNode]);
    expect(old.code).toBe(1);
    expect(old.out).toMatch(/too old: the agent needs 20 or newer/);
    // No Docker on the box: no docker group.
    await writeFile(join(other, "etc/group"), "root:x:0:\n");
    const noDocker = await install(["--root", other, "--console", "https://c.example.com", "--token", TOKEN]);
    expect(noDocker.code).toBe(1);
    expect(noDocker.out).toMatch(/no docker group/);
    expect(existsSync(join(other, "etc/systemd/system/dcc-agent.service"))).toBe(false);
    expect(await readFile(join(other, "etc/passwd"), "utf8")).not.toContain("dcc-agent");
  });

  it("--uninstall removes the unit, config, binary and user; --purge also the data", async () => {
    await writeFile(join(root, "srv/dockerstore/keep.txt"), "app data");
    const r = await install(["--root", root, "--uninstall"]);
    expect(r.code, r.out).toBe(0);
    expect(existsSync(join(root, "etc/systemd/system/dcc-agent.service"))).toBe(false);
    expect(existsSync(join(root, "etc/dcc-agent"))).toBe(false);
    expect(existsSync(join(root, "opt/dcc-agent"))).toBe(false);
    expect(await passwdEntry("dcc-agent")).toBeUndefined();
    expect(await passwdEntry("dcc-app")).toBeUndefined();
    expect(await groupMembers("docker")).toEqual([]);
    expect((await readFile(join(root, "etc/group"), "utf8")).split("\n").some((l) => l.startsWith("dcc-agent:"))).toBe(false);
    // Without --purge the agent's keys and the app data stay.
    expect(existsSync(join(root, "var/lib/dcc-agent/identity.json"))).toBe(true);
    expect(existsSync(join(root, "srv/dockerstore/keep.txt"))).toBe(true);

    const purge = await install(["--root", root, "--uninstall", "--purge", "--workspace-root", "/srv/dockerstore"]);
    expect(purge.code, purge.out).toBe(0);
    expect(existsSync(join(root, "var/lib/dcc-agent"))).toBe(false);
    expect(existsSync(join(root, "srv/dockerstore"))).toBe(false);
  });
});
