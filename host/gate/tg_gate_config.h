/*
 * tg_gate_config.h — the gate's configuration: one YAML file
 * (`tokengate gate --config FILE`) or the ghostunnel-style flags alone, into
 * one plain struct, validated with errors that give file, line and the fix.
 *
 * The file (every key but listeners optional; unknown keys refused):
 *
 *   listeners:                     required, at least one
 *     - name: api                  default "listener0", "listener1", ...
 *       listen: 0.0.0.0:8443       ADDR:PORT, [V6]:PORT, unix:/PATH (authz)
 *       mode: http                 http (default) | tcp | authz
 *       upstream: http://127.0.0.1:8081   http://, https://, unix:/PATH;
 *                                  tcp mode: tcp://HOST:PORT or unix:/PATH
 *       policy: /etc/tokengate/policy.yaml   default: the top-level policy
 *       group: www-data            authz on unix:/PATH: the socket's group
 *                                  (mode 0660); it must exist
 *   tls:
 *     cert: FILE | pkcs11:URI      server certificate (PEM); pkcs11: the
 *                                  certificate object on the token
 *     key: FILE | pkcs11:URI       server key; pkcs11: signs off the loop
 *     client_ca: [FILE, ...]       tokengate CA certificates (PEM), >= 1
 *     crl: FILE                    optional; reloaded on change and SIGHUP
 *     tickets: FILE                optional session-ticket key file shared
 *                                  by several gates (tg_gate_tls.h)
 *   upstream_ca: FILE              CA bundle for https:// upstreams
 *   policy: FILE                   the policy (tg_gate_policy.h)
 *   audit: {file: PATH, fsync: always|batch|never}   batch by default
 *   admin: 127.0.0.1:9090          optional admin listener (plain HTTP)
 *   workers: N                     default: the number of online CPUs
 *   dry_run: false                 log what would be denied, allow it
 *   limits: {header_bytes: 16384, header_count: 100, request_line: 8192,
 *            handshake_ms: 10000, header_ms: 10000, idle_ms: 60000,
 *            upstream_connect_ms: 5000, upstream_ms: 30000,
 *            max_conns: 4096, upstream_pool: 32,
 *            handshake_failures: 20, handshake_failure_ms: 60000}
 *                                  a client address (IPv6: its /64) whose
 *                                  TLS handshakes fail handshake_failures
 *                                  times within handshake_failure_ms is
 *                                  refused at connect for that long
 *                                  (tg_gate_ratelimit.h)
 *
 * Relative file paths in the file start at the file's own directory.
 *
 * In tcp mode a connection is decided as the request "CONNECT /" against
 * the listener's policy (a route with paths ["/"] and the allow entries of
 * the listener); in authz mode (nginx auth_request) tls.cert/key and the
 * upstream are not needed, and the listen address is loopback
 * (127.0.0.0/8, ::1, localhost) or a unix socket: the answers carry the
 * routes' injected credentials.
 */
#ifndef TG_GATE_CONFIG_H
#define TG_GATE_CONFIG_H

#include <stddef.h>

#include "tg_audit.h"
#include "tg_err.h"
#include "tg_gate_policy.h"

enum tg_gate_mode {
	TG_GATE_MODE_HTTP = 1,
	TG_GATE_MODE_TCP = 2,
	TG_GATE_MODE_AUTHZ = 3,
};

/* An address or upstream URL, parsed. */
enum tg_gate_scheme {
	TG_GATE_SCHEME_HTTP = 1,  /* http://HOST:PORT (port default 80) */
	TG_GATE_SCHEME_HTTPS = 2, /* https://HOST:PORT (port default 443) */
	TG_GATE_SCHEME_UNIX = 3,  /* unix:/PATH */
	TG_GATE_SCHEME_TCP =
	    4, /* tcp://HOST:PORT, and bare HOST:PORT / [V6]:PORT listen addresses */
};

struct tg_gate_url {
	enum tg_gate_scheme scheme;
	char host[256]; /* without brackets; "" for unix */
	char port[8];   /* decimal */
	char path[108]; /* unix socket path; "" otherwise */
};

/* Every limit has a safe default (above) and must be > 0. */
struct tg_gate_limits {
	size_t header_bytes;           /* request line + all header lines */
	size_t header_count;           /* header fields per request */
	size_t request_line;           /* bytes of the request line */
	unsigned handshake_ms;         /* TLS handshake */
	unsigned header_ms;            /* a complete request head (slowloris) */
	unsigned idle_ms;              /* idle keep-alive or tcp connection */
	unsigned upstream_connect_ms;  /* connecting to the upstream: 502 after */
	unsigned upstream_ms;          /* upstream response head: 504 after */
	unsigned max_conns;            /* client connections, whole gate */
	unsigned upstream_pool;        /* idle upstream connections kept per worker and upstream */
	unsigned handshake_failures;   /* failed handshakes of one source that block it */
	unsigned handshake_failure_ms; /* ... counted within this window; the block's length */
};

struct tg_gate_listener_cfg {
	char name[TG_GATE_NAME_MAX + 1];
	char *listen; /* as written */
	struct tg_gate_url addr;
	enum tg_gate_mode mode;
	char *upstream; /* as written; NULL: none (http routes must then name one) */
	struct tg_gate_url up;
	char *policy_file; /* NULL: the top-level policy */
	char *group;       /* authz on unix:/PATH: the socket's group; NULL: the gate's */
	unsigned line;     /* line in the file, 0 for flags */
};

/* Where a setting was written in the file: its line, 0 for a flag or default. */
struct tg_gate_config_lines {
	unsigned cert, key, client_ca, crl, tickets, upstream_ca, policy, audit, admin, workers,
	    limits;
};

struct tg_gate_config {
	char *file; /* the config file, or NULL (flags only) */
	struct tg_gate_listener_cfg *listeners;
	size_t nlisteners;
	char *cert;
	char *key;
	char **client_ca;
	size_t nclient_ca;
	char *crl;
	char *tickets;
	char *upstream_ca;
	char *policy_file;
	char *audit_file;
	enum tg_audit_fsync audit_fsync;
	char *admin;
	struct tg_gate_url admin_addr;
	unsigned workers;
	int dry_run;
	struct tg_gate_limits limits;
	struct tg_gate_config_lines line; /* for messages naming file and line */
};

/*
 * Parses s as a listen address (ADDR:PORT, [V6]:PORT, unix:/PATH; scheme
 * TCP or UNIX) when listen is non-zero, else as an upstream URL. 0, or
 * TG_ERR_CONFIG naming s and the accepted forms.
 */
int tg_gate_url_parse(const char *s, int listen, struct tg_gate_url *out, struct tg_error *err);

/*
 * url's authority as a Host field value into buf (cap bytes): "host:port",
 * an IPv6 address in brackets ("[::1]:8443"), "localhost" for unix:/PATH.
 * Its length, or 0 (buf "") when it does not fit.
 */
size_t tg_gate_url_authority(const struct tg_gate_url *url, char *buf, size_t cap);

/* Sets *c to the defaults (no listener, batch fsync, the limits above). */
void tg_gate_config_init(struct tg_gate_config *c);

/*
 * Reads the YAML file path into *c (on top of tg_gate_config_init).
 * TG_ERR_CONFIG with "PATH line N: problem; fix", TG_ERR_IO / TG_ERR_NOT_FOUND
 * for the file itself. *c is cleared on failure.
 */
int tg_gate_config_load(const char *path, struct tg_gate_config *c, struct tg_error *err);

/*
 * tg_gate_config_load on text (n bytes) already read; name is the file's
 * path, for messages and as the start of relative paths. For the fuzz
 * target and tests.
 */
int tg_gate_config_parse(const char *text, size_t n, const char *name, struct tg_gate_config *c,
                         struct tg_error *err);

/*
 * Parses `tokengate gate` arguments (argv[0] is "gate") into *c:
 *   --config FILE, or the flags --listen --cert --key --client-ca (repeatable)
 *   --crl --tickets --upstream --upstream-ca --policy --audit --audit-fsync
 *   --admin --mode --listen-group --workers --dry-run (one listener "main"); the two ways
 *   do not mix (--dry-run, --workers, --audit-fsync may override a file);
 *   --check sets *check; -h/--help prints the usage on stdout, sets *help
 *   and returns 0 without validating.
 * Then validates as tg_gate_config_check. 0 or TG_ERR_USAGE / TG_ERR_CONFIG
 * with a message naming the flag or file line and the fix. A TG_ERR_USAGE
 * has already been printed on stderr as "tokengate gate: MESSAGE (try
 * 'tokengate gate --help')" (tg_cli's usage errors; the caller exits 2
 * without printing it again); TG_ERR_CONFIG and the rest are for the
 * caller to print.
 */
int tg_gate_config_from_args(int argc, char **argv, struct tg_gate_config *c, int *check, int *help,
                             struct tg_error *err);

/*
 * Checks what a start needs: at least one listener, unique names and
 * addresses, authz listeners on loopback or a unix socket (a group only
 * there, and one that exists), a cert and key unless every listener is
 * authz, client CAs,
 * audit file, an upstream for tcp listeners, every policy file parsing
 * (tg_gate_policy_parse) and naming only upstreams that exist; files
 * readable. 0 or TG_ERR_CONFIG naming the key (file and line when from a
 * file) and the fix.
 */
int tg_gate_config_check(const struct tg_gate_config *c, struct tg_error *err);

/*
 * Reads and parses the policy file path (tgcore's tg_file_read_checked:
 * a regular file owned by the caller, not writable by group or others; a
 * symbolic link followed) into *p with tg_gate_policy_parse. 0, or the
 * error naming path (and line). *p must be cleared with
 * tg_gate_policy_clear, also after a failure.
 */
int tg_gate_config_policy_load(const char *path, struct tg_gate_policy *p, struct tg_error *err);

/* Frees what *c holds and re-inits it. NULL is accepted. */
void tg_gate_config_clear(struct tg_gate_config *c);

#endif /* TG_GATE_CONFIG_H */
