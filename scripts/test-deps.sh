#!/usr/bin/env bash
# Installs and starts what integration/browser tests need: git, Docker engine + compose v1, chromium, caddy (the gateway), and the local dcc-test/busybox:1 image.
set -euo pipefail

TEST_IMAGE="dcc-test/busybox:1"
DOCKERD_LOG="/var/log/dcc-dockerd.log"
export DEBIAN_FRONTEND=noninteractive

log() { printf '[test-deps] %s\n' "$*"; }
die() { printf '[test-deps] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- packages
find_dockerd() {
  # Debian's docker.io installs /usr/sbin/dockerd; accept /usr/bin too.
  local p
  for p in /usr/sbin/dockerd /usr/bin/dockerd; do
    [[ -x "$p" ]] && { echo "$p"; return 0; }
  done
  return 1
}

missing=()
find_dockerd >/dev/null || missing+=(docker.io)
[[ -x /usr/bin/docker-compose ]] || missing+=(docker-compose)
[[ -x /bin/busybox ]] || missing+=(busybox-static)
[[ -x /usr/bin/chromium ]] || missing+=(chromium fonts-liberation)
command -v git >/dev/null 2>&1 || missing+=(git)
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
# The per-host HTTPS gateway (Caddy 2), run by the agent in the gateway tests.
command -v caddy >/dev/null 2>&1 || missing+=(caddy)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
# A real registry on loopback for the image-pull tests (started by each test, not as a service).
[[ -x /usr/bin/docker-registry ]] || missing+=(docker-registry)
# htpasswd (bcrypt) for a registry that requires a login (private image pulls).
[[ -x /usr/bin/htpasswd ]] || missing+=(apache2-utils)

if ((${#missing[@]})); then
  [[ $(id -u) -eq 0 ]] || die "need root to install: ${missing[*]}"
  log "installing: ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  log "installed: ${missing[*]}"
else
  log "packages present"
fi

DOCKERD=$(find_dockerd) || die "dockerd not found after install"

# ---------------------------------------------------------------- docker CLI
# A Docker 28 CLI in /usr/local/bin may shadow Debian's /usr/bin/docker; use whichever reaches the engine.
DOCKER=""
pick_docker() {
  local c
  for c in "$(command -v docker 2>/dev/null || true)" /usr/bin/docker; do
    [[ -n "$c" && -x "$c" ]] || continue
    if "$c" info >/dev/null 2>&1; then DOCKER="$c"; return 0; fi
  done
  return 1
}

dockerd_running() {
  local pid
  [[ -f /var/run/docker.pid ]] || return 1
  pid=$(cat /var/run/docker.pid 2>/dev/null || true)
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

wait_for_engine() { # $1 = seconds
  local deadline=$((SECONDS + $1))
  while ((SECONDS < deadline)); do
    pick_docker && return 0
    # If we launched it and it died, stop waiting early.
    if [[ -n "${DOCKERD_PID:-}" ]] && ! kill -0 "$DOCKERD_PID" 2>/dev/null; then return 1; fi
    sleep 0.5
  done
  return 1
}

start_dockerd() { # extra dockerd args
  log "starting $DOCKERD${*:+ $*} (log: $DOCKERD_LOG)"
  setsid nohup "$DOCKERD" "$@" >>"$DOCKERD_LOG" 2>&1 </dev/null &
  DOCKERD_PID=$!
}

if pick_docker; then
  log "docker engine up ($DOCKER)"
else
  [[ $(id -u) -eq 0 ]] || die "docker engine not reachable and not root to start it"
  if dockerd_running; then
    log "dockerd already starting (pid $(cat /var/run/docker.pid)); waiting"
    wait_for_engine 60 || die "dockerd running but 'docker info' fails; see $DOCKERD_LOG"
  else
    t0=$SECONDS
    extra=()
    if ! iptables -nL >/dev/null 2>&1; then
      log "no iptables support on this machine: starting dockerd with --iptables=false"
      extra+=(--iptables=false)
    fi
    start_dockerd "${extra[@]}"
    if ! wait_for_engine 60; then
      if [[ ${#extra[@]} -eq 0 ]] && ! kill -0 "$DOCKERD_PID" 2>/dev/null \
        && tail -n 20 "$DOCKERD_LOG" | grep -iE 'iptables|nat chain' >/dev/null; then
        log "dockerd exited on an iptables error; retrying with --iptables=false"
        tail -n 20 "$DOCKERD_LOG" | grep -iE 'iptables|nat chain' | tail -n 2 | sed 's/^/    /' || true
        start_dockerd --iptables=false
        wait_for_engine 60 || die "dockerd did not come up; see $DOCKERD_LOG"
        log "NOTE: dockerd runs with --iptables=false (published ports rely on docker-proxy)"
      else
        die "dockerd did not come up within 60 s; see $DOCKERD_LOG"
      fi
    fi
    log "docker engine up after $((SECONDS - t0)) s ($DOCKER)"
  fi
fi

# ---------------------------------------------------------------- test image
if "$DOCKER" image inspect "$TEST_IMAGE" >/dev/null 2>&1; then
  log "image $TEST_IMAGE present"
else
  log "building $TEST_IMAGE from /bin/busybox"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  rootfs="$work/rootfs"
  mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,root,home/app,tmp,var/tmp,www,proc,sys,dev}
  cp /bin/busybox "$rootfs/bin/busybox"
  chmod 0755 "$rootfs/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [[ "$applet" == busybox ]] && continue
    ln -sf busybox "$rootfs/bin/$applet"
  done
  chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
  chmod 0700 "$rootfs/root"
  cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
  cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
app:x:1000:
nogroup:x:65534:
EOF
  echo '<html><head><title>dcc-test</title></head><body>dcc-test ok</body></html>' >"$rootfs/www/index.html"
  chown -R 1000:1000 "$rootfs/home/app"
  tar --numeric-owner -C "$rootfs" -c . | "$DOCKER" import \
    -c 'ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin' \
    -m 'dcc test image (busybox-static)' - "$TEST_IMAGE" >/dev/null
  rm -rf "$work"
  trap - EXIT
  log "built $TEST_IMAGE"
fi

log "ready (docker: $DOCKER)"
