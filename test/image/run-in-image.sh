#!/usr/bin/env bash
# A container runtime's job, done by hand for the image test (podman's crun
# refuses this machine's cgroup setup): run a command in an unpacked image
# the way a Kubernetes pod with readOnlyRootFilesystem would.
#
# Run it under `unshare --mount --pid --fork --propagation private`, so every
# mount below is private to this run and vanishes with it, and the command is
# PID 1 of its own PID namespace (as in a pod without tini: the operator has
# to handle SIGTERM itself).
#
#   IMG_ROOTFS   the unpacked root file system (umoci unpack's rootfs/)
#   IMG_USER     uid:gid from the image config
#   IMG_WORKDIR  the image's WorkingDir
#   IMG_ENV      the image's Env, one NAME=value per line
#   IMG_BINDS    one mount per line: "SOURCE TARGET ro|rw" (TARGET inside the image)
#   "$@"         the command (the image's Entrypoint + arguments)
set -euo pipefail
R=$IMG_ROOTFS

# the root file system on itself, so it can be made read-only as a whole
mount --bind "$R" "$R"
mount -t proc proc "$R/proc"
# what a runtime gives every container: a private /tmp (the image declares it
# a volume; an emptyDir in the Deployment) and a minimal /dev
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$R/tmp"
mount -t tmpfs -o mode=0755,nosuid tmpfs "$R/dev"
for d in null zero full random urandom; do
  touch "$R/dev/$d"
  mount --bind "/dev/$d" "$R/dev/$d"
done
while read -r src dst mode; do
  [ -n "$src" ] || continue
  mount --bind "$src" "$R$dst"
  if [ "$mode" = ro ]; then mount -o remount,bind,ro "$R$dst"; fi
done <<<"$IMG_BINDS"
# last: the root read-only (the mounts above stay as they are)
mount -o remount,bind,ro "$R"

mapfile -t envs <<<"$IMG_ENV"
# env -i: the image's environment only, nothing of the caller's; unshare
# --root/--wd/--setuid/--setgid: chroot, cd, and drop to the image's user
# with no supplementary groups. exec all the way: the command keeps PID 1.
exec env -i "${envs[@]}" unshare --root="$R" --wd="$IMG_WORKDIR" \
  --setgid "${IMG_USER#*:}" --setuid "${IMG_USER%%:*}" -- "$@"
