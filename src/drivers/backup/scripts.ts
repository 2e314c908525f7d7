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
 * Before a dump is restored, every object of the app's own schemas goes:
 * what a newer release created after the backup (its migration's tables,
 * the migration ledger if it was the first) would otherwise survive
 * pg_restore --clean, which only replaces the objects the dump holds, and
 * the database would not be the one that was backed up. Extension members,
 * and sequences and types that belong to a table, go with their owners.
 */
export const EMPTY_APP_SCHEMAS_SQL = `SET client_min_messages = warning;
DO $pairshift$
DECLARE r record;
BEGIN
  FOR r IN
    SELECT c.relkind, format('%I.%I', n.nspname, c.relname) AS name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname !~ '^pg_(toast|temp)'
       AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
       AND NOT EXISTS (SELECT 1 FROM pg_depend d
                        WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                          AND d.deptype IN ('e', 'a', 'i'))
     ORDER BY c.relkind = 'S'
  LOOP
    EXECUTE format('DROP %s IF EXISTS %s CASCADE',
      CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
        WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, r.name);
  END LOOP;
  FOR r IN
    SELECT format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) AS name
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname !~ '^pg_(toast|temp)'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d
                        WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('DROP ROUTINE IF EXISTS %s CASCADE', r.name);
  END LOOP;
  FOR r IN
    SELECT t.typtype, format('%I.%I', n.nspname, t.typname) AS name
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
       AND n.nspname !~ '^pg_(toast|temp)'
       AND t.typtype IN ('e', 'd', 'r', 'm')
       AND NOT EXISTS (SELECT 1 FROM pg_depend d
                        WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid
                          AND d.deptype IN ('e', 'i'))
  LOOP
    EXECUTE format('DROP %s IF EXISTS %s CASCADE',
      CASE r.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, r.name);
  END LOOP;
END
$pairshift$;`;

/**
 * $1 OS user, $2 restore tool, $3 socket dir, $4 port, $5 database, $6 dump,
 * $7 SQL client, $8 the SQL that empties the app's schemas.
 * The dump is root's (0600); the shell opens it and hands the descriptor to
 * the tool running as the OS user. The dump becomes SQL first, so a damaged
 * one stops before the database is touched; then emptying and restoring run
 * in one transaction: all or nothing.
 */
export const RESTORE_DATABASE_SCRIPT = `set -e
umask 077
cd /
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%s\n' "$8" > "$work/empty.sql"
chown -R "$1" "$work"
runuser -u "$1" -- "$2" --clean --if-exists --exit-on-error -f "$work/restore.sql" < "$6"
runuser -u "$1" -- "$7" -X -q -1 -v ON_ERROR_STOP=1 --no-password \${3:+-h "$3"} -p "$4" -d "$5" -f "$work/empty.sql" -f "$work/restore.sql"`;
