// JdbcMeta is what a Java tool does on connecting through pgpseudo: it
// browses the schema with pgJDBC's DatabaseMetaData and reads a table with
// one PreparedStatement run more often than pgJDBC's prepareThreshold, so
// the later runs use a named server-side statement and binary result
// formats. It prints every value it received, one result row a line:
//
//   <label>\t<column>=<value>\t<column>=<value>…
//
// with values as ResultSet.getString returns them ("null" for SQL NULL),
// then "<label>.count\trows=N" and a "<label>.warning\tmessage=…" line for
// every notice the statement received.
// Usage: java -cp postgresql.jar:. JdbcMeta URL USER PASSWORD RUNS
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.SQLWarning;
import java.util.Properties;

public class JdbcMeta {
    public static void main(String[] args) throws SQLException {
        if (args.length != 4) {
            System.err.println("usage: JdbcMeta URL USER PASSWORD RUNS");
            System.exit(2);
        }
        Properties props = new Properties();
        props.setProperty("user", args[1]);
        props.setProperty("password", args[2]);
        props.setProperty("sslmode", "require");
        int runs = Integer.parseInt(args[3]);
        try (Connection c = DriverManager.getConnection(args[0], props)) {
            DatabaseMetaData md = c.getMetaData();
            print("product", "name=" + md.getDatabaseProductName() + "\tversion=" + md.getDatabaseProductVersion()
                    + "\tdriver=" + md.getDriverVersion());
            dump("tables", md.getTables(null, "public", "%", new String[] {"TABLE", "VIEW"}));
            dump("columns", md.getColumns(null, "public", "customers", "%"));
            dump("primarykeys", md.getPrimaryKeys(null, "public", "customers"));
            dump("importedkeys", md.getImportedKeys(null, "public", "orders"));
            dump("indexinfo", md.getIndexInfo(null, "public", "customers", false, false));
            dump("schemas", md.getSchemas());
            dump("typeinfo", md.getTypeInfo());
            int token = 0;
            try (PreparedStatement ps = c.prepareStatement("SELECT * FROM customers")) {
                for (int run = 1; run <= runs; run++) {
                    ResultSet rs = ps.executeQuery();
                    if (run == 1) {
                        // (the first customer's token, for the drill-down)
                        dump("run" + run, rs);
                        try (ResultSet one = ps.executeQuery()) {
                            one.next();
                            token = one.getInt("customer_id");
                        }
                    } else {
                        dump("run" + run, rs);
                    }
                }
            }
            // A portal read in pages (fetchSize, which needs autocommit
            // off): Execute with a row limit, suspended and resumed.
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("SELECT customer_id, email, city FROM customers")) {
                ps.setFetchSize(7);
                dump("fetch", ps.executeQuery());
            }
            c.commit();
            c.setAutoCommit(true);
            // A drill-down on the token, bound as a parameter (setInt).
            print("token", "value=" + token);
            try (PreparedStatement ps = c.prepareStatement("SELECT customer_id, city FROM customers WHERE customer_id = ?")) {
                ps.setInt(1, token);
                dump("drill", ps.executeQuery());
            }
        }
    }

    static void dump(String label, ResultSet rs) throws SQLException {
        try (rs) {
            ResultSetMetaData m = rs.getMetaData();
            int rows = 0;
            while (rs.next()) {
                StringBuilder b = new StringBuilder();
                for (int i = 1; i <= m.getColumnCount(); i++) {
                    if (i > 1) {
                        b.append('\t');
                    }
                    b.append(m.getColumnLabel(i)).append('=').append(rs.getString(i));
                }
                print(label, b.toString());
                rows++;
            }
            print(label + ".count", "rows=" + rows);
            // Notices (pgpseudo's "values withheld …") arrive as warnings.
            for (SQLWarning w = rs.getStatement().getWarnings(); w != null; w = w.getNextWarning()) {
                print(label + ".warning", "message=" + w.getMessage().replace('\t', ' ').replace('\n', ' '));
            }
        }
    }

    static void print(String label, String line) {
        System.out.println(label + "\t" + line);
    }
}
