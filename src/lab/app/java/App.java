// The lab's Java service: the "product" a pair runs and pairshift upgrades.
//
// GET /version -> the version baked in at build time (Version.java).
// GET /health  -> 200 JSON only when the database can be read AND written
//                 (an upsert of this instance's heartbeat row, read back), so
//                 a broken or read-only database shows; 503 JSON otherwise.
//                 A "broken" build always answers 503 (rollback tests).
//                 A flag file /run/app/slow-health ("<version> <seconds>",
//                 version "*" for any) delays the answer of that version by
//                 that long: the lab's "slow, not dead" fault (src/lab/faults.ts).
// Start-up refuses to run without the root key file (never printed) and the
// database settings file. JDBC timeouts are short so /health answers quickly.
package pairshift.app;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;

public final class App {
  private final Properties db;
  private final String instance;
  private final AtomicBoolean schemaReady = new AtomicBoolean(false);

  private App(Properties db, String instance) {
    this.db = db;
    this.instance = instance;
  }

  static String arg(String[] args, String name, String env, String fallback) {
    for (int i = 0; i + 1 < args.length; i++) {
      if (args[i].equals(name)) return args[i + 1];
    }
    String v = System.getenv(env);
    return v != null && !v.isEmpty() ? v : fallback;
  }

  static void fail(String message) {
    System.err.println("app: " + message);
    System.exit(2);
  }

  public static void main(String[] args) throws Exception {
    if (args.length == 1 && args[0].equals("--version")) {
      System.out.println(Version.VERSION);
      return;
    }
    String host = arg(args, "--host", "APP_HOST", "0.0.0.0");
    int port = Integer.parseInt(arg(args, "--port", "APP_PORT", "8080"));
    Path configDir = Path.of(arg(args, "--config-dir", "APP_CONFIG_DIR", "/etc/app"));

    // The root key must be present and readable; its contents are never read
    // into a string, logged or served.
    Path rootKey = configDir.resolve("root.key");
    if (!Files.isRegularFile(rootKey) || !Files.isReadable(rootKey)) {
      fail("root key file " + rootKey + " is missing or unreadable; refusing to start");
    }
    Path settings = configDir.resolve("app.properties");
    Properties db = new Properties();
    try (InputStream in = Files.newInputStream(settings)) {
      db.load(in);
    } catch (IOException e) {
      fail("cannot read database settings " + settings + ": " + e.getMessage());
    }
    for (String key : new String[] {"db.host", "db.port", "db.name", "db.user"}) {
      if (db.getProperty(key, "").isBlank()) fail(settings + " lacks " + key);
    }
    // Names this instance's heartbeat row. app.properties is synced between the
    // nodes, so a per-node name comes from --node-name / APP_NODE_NAME.
    String node =
        arg(args, "--node-name", "APP_NODE_NAME",
            db.getProperty("node.name", InetAddress.getLocalHost().getHostName()));
    String instance = node + ":" + port;

    App app = new App(db, instance);
    HttpServer server = HttpServer.create(new InetSocketAddress(host, port), 64);
    // A pool, so a slow database check never blocks /version.
    ExecutorService pool = Executors.newFixedThreadPool(8);
    server.setExecutor(pool);
    server.createContext("/version", app::version);
    server.createContext("/health", app::health);
    server.start();
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  server.stop(0);
                  pool.shutdownNow();
                }));
    System.out.println(
        "app " + Version.VERSION + (Version.BROKEN ? " (broken build)" : "") + " listening on "
            + host + ":" + port);
  }

  private static void send(HttpExchange ex, int status, String contentType, String body)
      throws IOException {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    ex.getResponseHeaders().set("Content-Type", contentType);
    ex.getResponseHeaders().set("Cache-Control", "no-store");
    // HEAD must not carry a body
    boolean head = ex.getRequestMethod().equals("HEAD");
    ex.sendResponseHeaders(status, head ? -1 : bytes.length);
    if (!head) {
      try (OutputStream out = ex.getResponseBody()) {
        out.write(bytes);
      }
    }
    ex.close();
  }

  private static boolean readOnly(HttpExchange ex) throws IOException {
    String m = ex.getRequestMethod();
    if (m.equals("GET") || m.equals("HEAD")) return true;
    ex.getResponseHeaders().set("Allow", "GET, HEAD");
    send(ex, 405, "application/json", "{\"error\":\"method not allowed\"}");
    return false;
  }

  private void version(HttpExchange ex) throws IOException {
    if (!readOnly(ex)) return;
    send(ex, 200, "text/plain; charset=utf-8", Version.VERSION + "\n");
  }

  private void health(HttpExchange ex) throws IOException {
    if (!readOnly(ex)) return;
    slowHealthDelay();
    String v = json(Version.VERSION);
    if (Version.BROKEN) {
      send(ex, 503, "application/json",
          "{\"status\":\"fail\",\"version\":" + v + ",\"reason\":\"broken build\"}");
      return;
    }
    try {
      String beat = heartbeat();
      send(ex, 200, "application/json",
          "{\"status\":\"ok\",\"version\":" + v + ",\"database\":\"read-write\",\"heartbeat\":"
              + json(beat) + "}");
    } catch (Exception e) {
      send(ex, 503, "application/json",
          "{\"status\":\"fail\",\"version\":" + v + ",\"reason\":" + json(describe(e)) + "}");
    }
  }

  /** The slow-health fault: a real slow answer (the socket stays open), not a failure. */
  static void slowHealthDelay() {
    try {
      Path flag = Path.of("/run/app/slow-health");
      if (!Files.isRegularFile(flag)) return;
      String[] f = Files.readString(flag, StandardCharsets.UTF_8).trim().split("\\s+");
      if (f.length < 2 || !(f[0].equals("*") || f[0].equals(Version.VERSION))) return;
      Thread.sleep(Long.parseLong(f[1]) * 1000L);
    } catch (Exception e) {
      // an unreadable flag is no flag
    }
  }

  private Connection connect() throws Exception {
    String url =
        "jdbc:postgresql://" + db.getProperty("db.host") + ":" + db.getProperty("db.port") + "/"
            + db.getProperty("db.name");
    Properties p = new Properties();
    p.setProperty("user", db.getProperty("db.user"));
    String password = db.getProperty("db.password", "");
    if (!password.isEmpty()) p.setProperty("password", password);
    // Seconds. Short, so /health answers within a few seconds whatever happens.
    p.setProperty("connectTimeout", db.getProperty("db.connectTimeout", "2"));
    p.setProperty("loginTimeout", db.getProperty("db.connectTimeout", "2"));
    p.setProperty("socketTimeout", db.getProperty("db.socketTimeout", "3"));
    p.setProperty("ApplicationName", "pairshift-lab-app");
    // A standby or a read-only primary must fail the check, not be hidden.
    p.setProperty("targetServerType", "primary");
    return DriverManager.getConnection(url, p);
  }

  // One connection, reused, and one check at a time: a request that waited
  // while another check ran takes that check's answer if the check started
  // after the request arrived (so no answer is older than its request). A
  // new connection per request costs a TCP and SCRAM handshake each; at a
  // prober's 50 Hz on a busy machine that fell behind and never caught up
  // (a queue of requests whose clients had long gone). Guarded by beatLock.
  private final Object beatLock = new Object();
  private Connection conn;
  private boolean checked;
  private long lastCheckStarted;
  private String lastBeat;
  private Exception lastError;

  /** Writes this instance's heartbeat row and reads it back; returns its timestamp. */
  private String heartbeat() throws Exception {
    long arrived = System.nanoTime();
    synchronized (beatLock) {
      if (checked && lastCheckStarted - arrived >= 0) {
        if (lastError != null) throw lastError;
        return lastBeat;
      }
      lastCheckStarted = System.nanoTime();
      checked = true;
      try {
        lastBeat = beatOnce();
        lastError = null;
      } catch (Exception first) {
        // The connection may lead to a server that has gone (a switchover):
        // one more try on a fresh connection before saying the database is down.
        closeQuietly();
        try {
          lastBeat = beatOnce();
          lastError = null;
        } catch (Exception second) {
          closeQuietly();
          lastBeat = null;
          lastError = second;
        }
      }
      if (lastError != null) throw lastError;
      return lastBeat;
    }
  }

  private void closeQuietly() {
    if (conn == null) return;
    try {
      conn.close();
    } catch (Exception ignored) {
      // closing a broken connection may fail too; it is dropped either way
    }
    conn = null;
  }

  private String beatOnce() throws Exception {
    if (conn == null || conn.isClosed()) conn = connect();
    Connection c = conn;
    if (!schemaReady.get()) {
      try (Statement s = c.createStatement()) {
        s.execute(
            "CREATE TABLE IF NOT EXISTS app_heartbeat (instance text PRIMARY KEY, version text"
                + " NOT NULL, beat_at timestamptz NOT NULL)");
      }
      schemaReady.set(true);
    }
    try (PreparedStatement ps =
        c.prepareStatement(
            "INSERT INTO app_heartbeat (instance, version, beat_at) VALUES (?, ?, clock_timestamp())"
                + " ON CONFLICT (instance) DO UPDATE SET version = excluded.version, beat_at ="
                + " excluded.beat_at RETURNING beat_at")) {
      ps.setQueryTimeout(3);
      ps.setString(1, instance);
      ps.setString(2, Version.VERSION);
      try (ResultSet rs = ps.executeQuery()) {
        if (!rs.next()) throw new IllegalStateException("heartbeat row not returned");
        return rs.getString(1);
      }
    }
  }

  private static String describe(Exception e) {
    String m = e.getMessage();
    return e.getClass().getSimpleName() + (m == null ? "" : ": " + m);
  }

  static String json(String s) {
    StringBuilder b = new StringBuilder("\"");
    for (char ch : s.toCharArray()) {
      switch (ch) {
        case '"' -> b.append("\\\"");
        case '\\' -> b.append("\\\\");
        case '\n' -> b.append("\\n");
        case '\r' -> b.append("\\r");
        case '\t' -> b.append("\\t");
        default -> {
          if (ch < 0x20) b.append(String.format("\\u%04x", (int) ch));
          else b.append(ch);
        }
      }
    }
    return b.append('"').toString();
  }
}
