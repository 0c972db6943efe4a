#!/usr/bin/env bash
# Make this machine able to build and run the image with podman (Debian bookworm, as root):
# install podman and friends, and write /etc/containers/containers.conf for this sandbox kind.
# Idempotent; safe to run before every image test.
set -euo pipefail

# As issue 17 found them working on Debian bookworm (netavark + aardvark-dns: names between
# containers of a network; iptables: published ports).
packages=(podman runc mmdebstrap uidmap slirp4netns netavark aardvark-dns iptables ca-certificates)
need=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "podman-setup: apt-get install ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# podman 4.3 here: crun refuses the hybrid cgroup layout (runc works), there is no systemd
# (cgroupfs, file events), and a container may not ask for more than the sandbox's hard limits.
conf=/etc/containers/containers.conf
marker="# written by cognito-gate deploy/image/podman-setup.sh"
if [ -e "$conf" ] && ! grep -qF "$marker" "$conf"; then
  # Someone else's configuration: check it rather than overwrite it.
  for key in 'runtime *= *"runc"' 'cgroup_manager *= *"cgroupfs"' 'events_logger *= *"file"'; do
    grep -Eq "^ *$key" "$conf" || {
      echo "podman-setup: $conf exists and lacks ${key//\\/}; add it (see issue 17 / README)" >&2
      exit 1
    }
  done
else
  nofile=$(ulimit -Hn)
  [ "$nofile" = unlimited ] && nofile=1048576
  nproc=$(ulimit -Hu)
  if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
  mkdir -p /etc/containers
  cat >"$conf" <<CONF
$marker
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
  echo "podman-setup: wrote $conf"
fi
podman info --format '{{.Host.OCIRuntime.Name}} {{.Store.GraphDriverName}}' >/dev/null
