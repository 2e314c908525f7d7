// The shell run on a node to make, list, check and restore backup sets.
// Arguments are positional ($1, $2...), never spliced into the text.

/** $1 backup dir. One line per entry: SET <name> <manifest>, NOMANIFEST <name>, PARTIAL <name>. */
export const LIST_SCRIPT = `cd -- "$1" 2>/dev/null || exit 0
for d in * .partial-*; do
  [ -d "$d" ] || continue
  case "$d" in .partial-*) printf 'PARTIAL %s\\n' "$d"; continue ;; esac
  if [ -f "$d/MANIFEST.json" ]; then
    printf 'SET %s ' "$d"; tr -d '\\n' < "$d/MANIFEST.json"; printf '\\n'
  else
    printf 'NOMANIFEST %s\\n' "$d"
  fi
done`;

/** $1 backup dir, $2 partial set dir (made empty, mode 0700). */
export const PREPARE_SCRIPT = `set -e
umask 077
mkdir -p -- "$1"
rm -rf -- "$2"
mkdir -m 700 -- "$2"`;

/** $1 jar, $2 destination: content, owner, mode and times kept. */
export const JAR_SCRIPT = `set -e
cp -p -- "$1" "$2"`;

/**
 * $1 config dir, $2 destination tar. Numeric owners, so the archive restores
 * the same uid/gid whatever the names are; modes and times are stored by tar.
 * The root key goes into the archive on the node and never leaves it.
 */
export const CONFIG_SCRIPT = `set -e
umask 077
tar --numeric-owner -cf "$2" -C "$1" .`;

/** $1 OS user, $2 dump tool, $3 socket dir ('' for the default), $4 port, $5 database, $6 destination. */
export const DATABASE_SCRIPT = `set -e
umask 077
cd /
runuser -u "$1" -- "$2" -Fc --no-password \${3:+-h "$3"} -p "$4" -d "$5" > "$6"`;

/** $1 OS user, $2 client, $3 socket dir, $4 port: "t" on a standby, "f" on a primary. */
export const IN_RECOVERY_SCRIPT = `cd /
runuser -u "$1" -- "$2" -X -At --no-password \${3:+-h "$3"} -p "$4" -d postgres -c 'select pg_is_in_recovery()'`;

/** stdin: the manifest; $1 its path. Written beside, then renamed. */
export const WRITE_MANIFEST_SCRIPT = `set -e
umask 077
cat > "$1.tmp"
sync -- "$1.tmp" 2>/dev/null || true
mv -f -- "$1.tmp" "$1"`;

/** $1 partial dir, $2 final set dir: the set appears complete or not at all. */
export const FINALIZE_SCRIPT = `set -e
[ ! -e "$2" ] || { echo "$2 already exists" >&2; exit 1; }
mv -T -- "$1" "$2"`;

/** Removes the given paths (sets, partial sets, staging folders). */
export const REMOVE_SCRIPT = `rm -rf -- "$@"`;

/** $1 backup jar, $2 installed jar: copied beside, then renamed over it. */
export const RESTORE_JAR_SCRIPT = `set -e
t="$2.pairshift-restore"
cp -p -- "$1" "$t"
mv -f -- "$t" "$2"`;

/**
 * $1 config tar, $2 staging dir, $3 config dir, $4 1 for a dry run.
 * Unpacks on the node, then brings the config dir to exactly the archive's
 * content, owners and modes (rsync -c compares content, --delete removes
 * files added since). Prints one itemized line per difference: none means
 * the config dir already equals the backup.
 */
export const RESTORE_CONFIG_SCRIPT = `set -e
umask 077
rm -rf -- "$2"
mkdir -m 700 -- "$2"
trap 'rm -rf -- "$2"' EXIT
tar --numeric-owner --same-owner -xpf "$1" -C "$2"
if [ "$4" = 1 ]; then n=-n; else n=; fi
rsync -a --delete --numeric-ids -c -i $n -- "$2/" "$3/"`;

/**
 * $1 OS user, $2 restore tool, $3 socket dir, $4 port, $5 database, $6 dump.
 * The dump is root's (0600); the shell opens it and hands the descriptor to
 * the tool running as the OS user. One transaction: all or nothing.
 */
export const RESTORE_DATABASE_SCRIPT = `set -e
cd /
runuser -u "$1" -- "$2" --clean --if-exists --single-transaction --exit-on-error --no-password \${3:+-h "$3"} -p "$4" -d "$5" < "$6"`;
