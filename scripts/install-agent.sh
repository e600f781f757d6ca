#!/usr/bin/env bash
# Installs the Docker Control Center agent on a GPU box as a hardened systemd service running as
# the system user dcc-agent (member of the docker group, owner of the workspace root and of its
# state dir; app containers run as its uid, so it can always clean up what they write), enrols it
# with a one-time token, and checks Node and the NVIDIA Container Toolkit. --uninstall removes it.
set -euo pipefail

SERVICE=dcc-agent
AGENT_USER=dcc-agent
APP_USER=dcc-app
INSTALL_DIR=/opt/dcc-agent
STATE_DIR=/var/lib/dcc-agent
WORKSPACE_ROOT=/opt/dockerstore
CONF_DIR=/etc/dcc-agent
UNIT=/etc/systemd/system/$SERVICE.service
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  cat <<EOF
Usage: sudo $0 --console URL --token TOKEN [options]
       sudo $0 --uninstall [--purge]

Installs the agent (the single-file build agent/dist/dcc-agent.mjs, made by \`npm run build\`) as
the systemd service $SERVICE, running as the system user $AGENT_USER:

  $INSTALL_DIR/dcc-agent.mjs          the agent (root-owned: the agent cannot change itself)
  $STATE_DIR                     its keys, enrolment, git dirs, compose files (0700)
  $WORKSPACE_ROOT                     app workspaces, mounted at /app in the containers
  $CONF_DIR/agent.env              console address and paths (0600)
  $UNIT   the unit, hardened (ProtectSystem=strict, NoNewPrivileges, ...)

The enrolment token is written once to $CONF_DIR/enroll.env (0600), read at the first
start, and removed as soon as the agent has enrolled. The arguments of the console's enrolment
one-liner work as they are: --console, --enroll (= --token), --console-fingerprint.

Options:
  --console URL             the console (https://console.example.com or wss://…/agent)
  --token, --enroll TOKEN   one-time enrolment token (hosts.createEnrollment); not needed to
                            upgrade an agent that is already enrolled
  --console-fingerprint FP  refuse to enrol unless the console's key has this fingerprint
  --ca-file FILE            extra CA certificate(s) for wss:// (copied to $CONF_DIR/ca.pem)
  --workspace-root DIR      app workspaces (default $WORKSPACE_ROOT)
  --state-dir DIR           the agent's state (default $STATE_DIR)
  --name NAME               host name shown in the console (default: hostname)
  --allow-insecure-ws       allow plain ws:// to a non-loopback console (labs only)
  --allow-insecure-git      accept http:// and private git hosts (labs only)
  --gateway-domain DOMAIN   serve every app at https://<app>.DOMAIN through Caddy (installs Debian's
                            caddy; point a wildcard DNS record *.DOMAIN at this host; opens 80/443)
  --gateway-tls MODE        acme (Let's Encrypt, default) or internal (Caddy's own CA, labs)
  --agent-file FILE         the agent build to install (default: agent/dist/dcc-agent.mjs)
  --node PATH               Node.js ≥ 20 to run it with (default: node on PATH)
  --no-start                install and enable, but do not start (enrols at the first start)
  --root DIR                install into DIR as if it were / (an image being built, a test):
                            users via useradd --prefix, no systemctl, nothing started
  --uninstall               stop and remove the service, its unit, config, binary and user
  --purge                   with --uninstall: also delete $STATE_DIR and the workspace root
                            (app data!). App containers are not touched: deinstall the apps
                            from the console first, or remove them with
                            docker ps -aq --filter label=dcc.managed=true | xargs docker rm -f
  --help                    this text
EOF
}

log() { printf '[install-agent] %s\n' "$*"; }
warn() { printf '[install-agent] WARNING: %s\n' "$*" >&2; }
die() { printf '[install-agent] ERROR: %s\n' "$*" >&2; exit 1; }

CONSOLE="" TOKEN="" FINGERPRINT="" CA_FILE="" NAME="" AGENT_FILE="$HERE/../agent/dist/dcc-agent.mjs" NODE=""
ROOT="" UNINSTALL=0 PURGE=0 WS_GIVEN=0 STATE_GIVEN=0 NO_START=0 INSECURE_WS=0 INSECURE_GIT=0
GATEWAY_DOMAIN="" GATEWAY_TLS="acme"
need() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --console) need "$@"; CONSOLE=$2; shift 2 ;;
    --token | --enroll) need "$@"; TOKEN=$2; shift 2 ;;
    --console-fingerprint) need "$@"; FINGERPRINT=$2; shift 2 ;;
    --ca-file) need "$@"; CA_FILE=$2; shift 2 ;;
    --workspace-root) need "$@"; WORKSPACE_ROOT=$2; WS_GIVEN=1; shift 2 ;;
    --state-dir) need "$@"; STATE_DIR=$2; STATE_GIVEN=1; shift 2 ;;
    --name) need "$@"; NAME=$2; shift 2 ;;
    --allow-insecure-ws) INSECURE_WS=1; shift ;;
    --allow-insecure-git) INSECURE_GIT=1; shift ;;
    --gateway-domain) need "$@"; GATEWAY_DOMAIN=$2; shift 2 ;;
    --gateway-tls) need "$@"; GATEWAY_TLS=$2; shift 2 ;;
    --agent-file) need "$@"; AGENT_FILE=$2; shift 2 ;;
    --node) need "$@"; NODE=$2; shift 2 ;;
    --no-start) NO_START=1; shift ;;
    --root) need "$@"; ROOT=$(cd "$2" 2>/dev/null && pwd) || die "--root $2 is not a directory"; shift 2 ;;
    --uninstall) UNINSTALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ "$ROOT" == "/" ]] && ROOT=""

# Values that end up in a unit or an environment file: one line, no quotes, no shell syntax.
safe_path() { [[ "$2" =~ ^/[A-Za-z0-9._/-]+$ && "$2" != *..* ]] || die "$1 must be an absolute path of letters, digits, . _ - / (got '$2')"; }
safe_path --workspace-root "$WORKSPACE_ROOT"
safe_path --state-dir "$STATE_DIR"
WORKSPACE_ROOT=${WORKSPACE_ROOT%/} STATE_DIR=${STATE_DIR%/}
case "$WORKSPACE_ROOT/" in "$STATE_DIR"/*) die "the workspace root must not be inside the state dir" ;; esac
case "$STATE_DIR/" in "$WORKSPACE_ROOT"/*) die "the state dir must not be inside the workspace root (a container could mount it)" ;; esac

# Paths on the target system, under --root when given.
T() { printf '%s%s' "$ROOT" "$1"; }
run() { # a side effect on the real system: skipped under --root
  if [[ -n "$ROOT" ]]; then log "(--root) skipped: $*"; else "$@"; fi
}

[[ $(id -u) -eq 0 ]] || die "run as root (sudo): it creates a system user and a systemd unit"

# ------------------------------------------------------------------ uninstall
if ((UNINSTALL)); then
  # The dirs the install used, unless given again.
  env_file="$(T "$CONF_DIR")/agent.env"
  if [[ -f "$env_file" ]]; then
    v=$(sed -n 's/^DCC_AGENT_STATE_DIR=//p' "$env_file"); [[ -z "$v" ]] || ((STATE_GIVEN)) || STATE_DIR=$v
    v=$(sed -n 's/^DCC_WORKSPACE_ROOT=//p' "$env_file"); [[ -z "$v" ]] || ((WS_GIVEN)) || WORKSPACE_ROOT=$v
    safe_path DCC_AGENT_STATE_DIR "$STATE_DIR"
    safe_path DCC_WORKSPACE_ROOT "$WORKSPACE_ROOT"
  fi
  if [[ -z "$ROOT" ]] && command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now "$SERVICE" 2>/dev/null || true
  fi
  rm -f "$(T "$UNIT")"
  rm -rf "$(T "$CONF_DIR")" "$(T "$INSTALL_DIR")"
  run systemctl daemon-reload
  for u in "$AGENT_USER" "$APP_USER"; do
    if grep -q "^$u:" "$(T /etc/passwd)" 2>/dev/null; then
      if [[ -n "$ROOT" ]]; then userdel --prefix "$ROOT" "$u"; else userdel "$u"; fi
      log "removed user $u"
    fi
    if grep -q "^$u:" "$(T /etc/group)" 2>/dev/null; then
      if [[ -n "$ROOT" ]]; then groupdel --prefix "$ROOT" "$u"; else groupdel "$u"; fi
    fi
  done
  if ((PURGE)); then
    rm -rf "$(T "$STATE_DIR")" "$(T "$WORKSPACE_ROOT")"
    log "purged $STATE_DIR and $WORKSPACE_ROOT"
  else
    log "kept $STATE_DIR (keys, enrolment) and $WORKSPACE_ROOT (app data); --purge deletes them"
  fi
  log "uninstalled. Containers of apps (label dcc.managed=true) were left alone."
  exit 0
fi

# ------------------------------------------------------------------ checks
[[ -f "$AGENT_FILE" ]] || die "agent build $AGENT_FILE not found: run \`npm ci && npm run build\` first, or pass --agent-file"
[[ "$(head -n 1 "$AGENT_FILE")" == "#!/usr/bin/env node" ]] || die "$AGENT_FILE does not look like the agent build"

NODE=${NODE:-$(command -v node || true)}
[[ -n "$NODE" && -x "$NODE" ]] || die "Node.js 20 or newer is required and was not found. Install it, e.g.:
    Debian/Ubuntu (NodeSource): curl -fsSL https://deb.nodesource.com/setup_20.x | sudo bash - && sudo apt-get install -y nodejs
  or pass --node /path/to/node"
NODE=$(readlink -f "$NODE")
node_major=$("$NODE" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
((node_major >= 20)) || die "Node.js $("$NODE" -v 2>/dev/null || echo '?') at $NODE is too old: the agent needs 20 or newer"
log "node: $NODE ($("$NODE" -v))"

# The docker group is how the agent reaches the Docker socket without being root.
grep -q '^docker:' "$(T /etc/group)" 2>/dev/null || die "no docker group: install the Docker engine first (apt-get install docker.io docker-compose, or Docker's own packages)"
if docker info >/dev/null 2>&1; then
  log "docker: engine $(docker info --format '{{.ServerVersion}}' 2>/dev/null)"
else
  warn "the Docker engine does not answer \`docker info\`; the agent reports lifecycle failures until it does"
fi

# NVIDIA: GPU apps need the Container Toolkit and the nvidia runtime registered with Docker.
nvidia_check() {
  local gpus toolkit runtime
  gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
  toolkit=$(command -v nvidia-ctk || command -v nvidia-container-runtime || true)
  runtime=$(docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -o '"nvidia"' || true)
  if [[ -z "$toolkit" || -z "$runtime" ]]; then
    if [[ "${gpus:-0}" -gt 0 ]]; then
      warn "found $gpus NVIDIA GPU(s) but the NVIDIA Container Toolkit is $([[ -z "$toolkit" ]] && echo "not installed" || echo "not registered with Docker"): GPU apps cannot start here."
    else
      log "no NVIDIA GPU or Container Toolkit found: this host takes apps that need no GPU."
    fi
    [[ "${gpus:-0}" -gt 0 || -n "$toolkit" ]] || return 0
    cat >&2 <<'EOF'
  To add it (Debian/Ubuntu, as NVIDIA documents it):
    curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey \
      | sudo gpg --dearmor -o /usr/share/keyrings/nvidia-container-toolkit-keyring.gpg
    curl -fsSL https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list \
      | sed 's#deb https://#deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] https://#g' \
      | sudo tee /etc/apt/sources.list.d/nvidia-container-toolkit.list
    sudo apt-get update && sudo apt-get install -y nvidia-container-toolkit
    sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker
  Then restart the agent (systemctl restart dcc-agent) so it reports its GPUs.
EOF
  else
    log "nvidia: ${gpus:-0} GPU(s), toolkit $toolkit, docker runtime registered"
  fi
}
nvidia_check

enrolled=0
[[ -f "$(T "$STATE_DIR")/identity.json" ]] && enrolled=1
if ((enrolled)); then
  log "already enrolled ($STATE_DIR/identity.json): upgrading in place"
  [[ -z "$TOKEN" ]] || log "the enrolment token is not needed and is not stored"
  TOKEN=""
  rm -f "$(T "$CONF_DIR")/enroll.env"
else
  [[ -n "$TOKEN" ]] || die "--token (or --enroll) is required for a first install: create one with hosts.createEnrollment"
  [[ "$TOKEN" =~ ^[A-Za-z0-9._~+/=-]{16,512}$ ]] || die "--token does not look like an enrolment token"
fi
[[ -n "$CONSOLE" ]] || CONSOLE=$(sed -n 's/^DCC_CONSOLE_URL=//p' "$(T "$CONF_DIR")/agent.env" 2>/dev/null || true)
[[ -n "$CONSOLE" ]] || die "--console URL is required"
url_re='^(https|wss|http|ws)://[][A-Za-z0-9.:_~%/-]+$'
[[ "$CONSOLE" =~ $url_re ]] || die "--console must be an https://, wss://, http:// or ws:// URL"
[[ -z "$FINGERPRINT" || "$FINGERPRINT" =~ ^SHA256:[A-Za-z0-9+/]{43}$ ]] || die "--console-fingerprint must look like SHA256:<43 base64 characters>"
[[ -z "$NAME" || "$NAME" =~ ^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$ ]] || die "--name must be letters, digits, dots, hyphens, underscores"
[[ -z "$CA_FILE" || -f "$CA_FILE" ]] || die "--ca-file $CA_FILE not found"
[[ -z "$GATEWAY_DOMAIN" || "$GATEWAY_DOMAIN" =~ ^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] || die "--gateway-domain must be a lower-case DNS name such as apps.example.com"
[[ "$GATEWAY_TLS" == acme || "$GATEWAY_TLS" == internal ]] || die "--gateway-tls must be acme or internal"
if [[ -n "$GATEWAY_DOMAIN" ]]; then
  if command -v caddy >/dev/null 2>&1 || [[ -x "$(T /usr/bin/caddy)" ]]; then
    log "caddy: $(caddy version 2>/dev/null || echo present)"
  elif [[ -z "$ROOT" ]]; then
    log "installing caddy (the gateway) from the distribution"
    apt-get install -y --no-install-recommends caddy >/dev/null || die "could not install caddy: apt-get install caddy, then run this again"
  else
    warn "caddy is not installed under $ROOT: the gateway will not start until it is"
  fi
  # The agent runs Caddy itself; the distribution's own caddy service stays off.
  run systemctl disable --now caddy 2>/dev/null || true
fi

# ------------------------------------------------------------------ user
prefix=()
[[ -n "$ROOT" ]] && prefix=(--prefix "$ROOT")
if grep -q "^$AGENT_USER:" "$(T /etc/passwd)" 2>/dev/null; then
  log "user $AGENT_USER exists"
else
  useradd "${prefix[@]}" --system --user-group --home-dir "$STATE_DIR" --no-create-home \
    --shell /usr/sbin/nologin --comment "Docker Control Center agent" "$AGENT_USER"
  log "created system user $AGENT_USER"
fi
if [[ -n "$ROOT" ]]; then usermod --prefix "$ROOT" -a -G docker "$AGENT_USER"; else usermod -a -G docker "$AGENT_USER"; fi
uid=$(awk -F: -v u="$AGENT_USER" '$1 == u { print $3 }' "$(T /etc/passwd)")
gid=$(awk -F: -v u="$AGENT_USER" '$1 == u { print $4 }' "$(T /etc/passwd)")
[[ "$uid" =~ ^[0-9]+$ && "$gid" =~ ^[0-9]+$ ]] || die "could not read $AGENT_USER's uid/gid"
# App containers run as a user of their own, not the agent's: a process escaping a container then
# holds neither the agent's keys (its state dir is 0700) nor its compose files. The agent hands
# each workspace to that user and can still clean up after it (CAP_CHOWN, CAP_FOWNER and
# CAP_DAC_OVERRIDE, below).
if grep -q "^$APP_USER:" "$(T /etc/passwd)" 2>/dev/null; then
  log "user $APP_USER exists"
else
  useradd "${prefix[@]}" --system --user-group --home-dir /nonexistent --no-create-home \
    --shell /usr/sbin/nologin --comment "Docker Control Center apps" "$APP_USER"
  log "created system user $APP_USER"
fi
app_uid=$(awk -F: -v u="$APP_USER" '$1 == u { print $3 }' "$(T /etc/passwd)")
app_gid=$(awk -F: -v u="$APP_USER" '$1 == u { print $4 }' "$(T /etc/passwd)")
[[ "$app_uid" =~ ^[0-9]+$ && "$app_gid" =~ ^[0-9]+$ && "$app_uid" != 0 && "$app_uid" != "$uid" ]] || die "could not read a uid/gid of $APP_USER distinct from $AGENT_USER's"
log "app containers on this host run as $APP_USER (uid $app_uid), the agent as $AGENT_USER (uid $uid)"

# ------------------------------------------------------------------ files
install -d -m 0755 -o root -g root "$(T "$INSTALL_DIR")" "$(T "$CONF_DIR")" "$(T /etc/systemd/system)"
install -m 0755 -o root -g root "$AGENT_FILE" "$(T "$INSTALL_DIR")/dcc-agent.mjs.new"
mv -f "$(T "$INSTALL_DIR")/dcc-agent.mjs.new" "$(T "$INSTALL_DIR")/dcc-agent.mjs"
install -d -m 0700 -o "$uid" -g "$gid" "$(T "$STATE_DIR")"
install -d -m 0755 -o "$uid" -g "$gid" "$(T "$WORKSPACE_ROOT")"
# Existing dirs keep their contents; make sure the agent owns them (they were made above if new).
chown "$uid:$gid" "$(T "$STATE_DIR")" "$(T "$WORKSPACE_ROOT")"
chmod 0700 "$(T "$STATE_DIR")"

ca_line=""
if [[ -n "$CA_FILE" ]]; then
  install -m 0644 -o root -g root "$CA_FILE" "$(T "$CONF_DIR")/ca.pem"
  ca_line="DCC_CA_FILE=$CONF_DIR/ca.pem"
fi
umask 077
{
  echo "# Written by scripts/install-agent.sh; read by $UNIT."
  echo "DCC_CONSOLE_URL=$CONSOLE"
  echo "DCC_AGENT_STATE_DIR=$STATE_DIR"
  echo "DCC_WORKSPACE_ROOT=$WORKSPACE_ROOT"
  echo "DCC_APP_UID=$app_uid"
  echo "DCC_APP_GID=$app_gid"
  [[ -z "$FINGERPRINT" ]] || echo "DCC_CONSOLE_FINGERPRINT=$FINGERPRINT"
  [[ -z "$NAME" ]] || echo "DCC_HOST_NAME=$NAME"
  [[ -z "$ca_line" ]] || echo "$ca_line"
  ((INSECURE_WS)) && echo "DCC_ALLOW_INSECURE_WS=1"
  ((INSECURE_GIT)) && echo "DCC_ALLOW_INSECURE_GIT=1"
  [[ -z "$GATEWAY_DOMAIN" ]] || printf 'DCC_GATEWAY_DOMAIN=%s\nDCC_GATEWAY_TLS=%s\n' "$GATEWAY_DOMAIN" "$GATEWAY_TLS"
  true
} >"$(T "$CONF_DIR")/agent.env.new"
chmod 0600 "$(T "$CONF_DIR")/agent.env.new"
mv -f "$(T "$CONF_DIR")/agent.env.new" "$(T "$CONF_DIR")/agent.env"
if [[ -n "$TOKEN" ]]; then
  printf 'DCC_ENROLL_TOKEN=%s\n' "$TOKEN" >"$(T "$CONF_DIR")/enroll.env"
  chmod 0600 "$(T "$CONF_DIR")/enroll.env"
fi
umask 022

# Handing workspaces to the app user and removing what it wrote: chown, and owner/permission
# checks on files that user owns. The gateway binds 80/443 and installs the container guard
# (iptables): those capabilities only when it is on.
caps="CAP_CHOWN CAP_FOWNER CAP_DAC_OVERRIDE"
[[ -z "$GATEWAY_DOMAIN" ]] || caps="$caps CAP_NET_BIND_SERVICE CAP_NET_ADMIN CAP_NET_RAW"
cat >"$(T "$UNIT")" <<EOF
# Docker Control Center agent; written by scripts/install-agent.sh.
[Unit]
Description=Docker Control Center agent
After=network-online.target docker.service
Wants=network-online.target docker.service

[Service]
Type=simple
User=$AGENT_USER
Group=$AGENT_USER
SupplementaryGroups=docker
EnvironmentFile=$CONF_DIR/agent.env
# The one-time enrolment token, present until the agent has enrolled.
EnvironmentFile=-$CONF_DIR/enroll.env
ExecStart=$NODE $INSTALL_DIR/dcc-agent.mjs
Restart=on-failure
RestartSec=5
# 2: configuration or enrolment refused, 3: this host was revoked. Restarting would not help.
RestartPreventExitStatus=2 3
TimeoutStopSec=30

# Hardening. It needs: its state dir and the workspace root, the Docker socket, the network,
# and /dev/nvidia* for nvidia-smi (so no PrivateDevices). Node's JIT needs W+X memory.
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=$STATE_DIR $WORKSPACE_ROOT
ProtectHome=yes
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
RestrictNamespaces=yes
LockPersonality=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
SystemCallArchitectures=native
CapabilityBoundingSet=$caps
AmbientCapabilities=$caps
UMask=0022

[Install]
WantedBy=multi-user.target
EOF
chmod 0644 "$(T "$UNIT")"
log "wrote $UNIT"

if [[ -n "$ROOT" ]]; then
  log "installed under $ROOT (nothing started). On the real system: systemctl daemon-reload && systemctl enable --now $SERVICE"
  exit 0
fi

systemctl daemon-reload
if ((NO_START)); then
  systemctl enable "$SERVICE"
  log "enabled, not started: it enrols at its first start (systemctl start $SERVICE); then remove $CONF_DIR/enroll.env"
  exit 0
fi
systemctl enable "$SERVICE"
systemctl restart "$SERVICE"
if [[ -n "$TOKEN" ]]; then
  log "waiting for the agent to enrol…"
  for _ in $(seq 1 60); do
    [[ -f "$STATE_DIR/identity.json" ]] && break
    systemctl is-active --quiet "$SERVICE" || break
    sleep 1
  done
  if [[ -f "$STATE_DIR/identity.json" ]]; then
    rm -f "$CONF_DIR/enroll.env"
    log "enrolled; removed the enrolment token ($CONF_DIR/enroll.env)"
  else
    warn "the agent has not enrolled yet; see: journalctl -u $SERVICE -n 50. $CONF_DIR/enroll.env stays until it has (a used token is worthless)."
    exit 1
  fi
fi
log "running: systemctl status $SERVICE; logs: journalctl -u $SERVICE -f"
