/*
 * tg_agent_config.h — the agent's configuration: the flags of
 * `tokengate agent` (one listener) or one YAML file (`--config FILE`,
 * several listeners), into one plain struct, validated with messages that
 * give the flag or the file and line, and the fix.
 *
 * The file (unknown or repeated keys refused; relative paths start at the
 * file's directory):
 *
 *   listeners:                     required, at least one
 *     - name: api                  default "listener0", "listener1", ...
 *       listen: 127.0.0.1:8080     ADDR:PORT, [V6]:PORT or unix:/PATH
 *       # and any of the per-listener keys below, overriding the top level
 *   upstream: https://gate:8443    the gate (https:// only)
 *   key: "pkcs11:token=...;object=...?pin-source=file:/run/pin"
 *   cert: pkcs11:URI | FILE        default: the certificate beside the key
 *   ca: FILE                       CA certificates the gate's is verified against
 *   server_id: spiffe://...        the gate's URI SAN, matched exactly
 *   server_name: NAME              else the DNS name or IP in its certificate
 *                                  (default: the upstream's host)
 *   mode: http | tcp               default http
 *   host: NAME                     http mode: the Host sent upstream (default:
 *                                  the client's)
 *   allow_remote: false            allow a listen address off loopback
 *   client_timeout_ms: 60000       http mode: a client connection waiting for a
 *                                  request (nothing sent, or a head not
 *                                  finished) is closed after this
 *   response_timeout_ms: 120000    http mode: no response head from the gate
 *                                  this long after the request: 504
 *   idle_timeout_ms: 300000        tcp mode: a connection with no byte either
 *                                  way this long is closed
 *   admin: 127.0.0.1:9091          optional: /healthz and /metrics
 */
#ifndef TG_AGENT_CONFIG_H
#define TG_AGENT_CONFIG_H

#include <stddef.h>

#include "tg_err.h"
#include "tg_gate_config.h"

#define TG_AGENT_NAME_MAX            63
#define TG_AGENT_CLIENT_TIMEOUT_MS   60000u    /* default client_timeout_ms */
#define TG_AGENT_RESPONSE_TIMEOUT_MS 120000u   /* default response_timeout_ms */
#define TG_AGENT_IDLE_TIMEOUT_MS     300000u   /* default idle_timeout_ms */
#define TG_AGENT_TIMEOUT_MAX_MS      86400000u /* a day */

enum tg_agent_mode {
	TG_AGENT_MODE_HTTP = 1, /* HTTP/1.1 requests over pooled upstream connections */
	TG_AGENT_MODE_TCP = 2,  /* one upstream connection per client, bytes both ways */
};

struct tg_agent_listener_cfg {
	char name[TG_AGENT_NAME_MAX + 1];
	char *listen; /* as written */
	struct tg_gate_url addr;
	enum tg_agent_mode mode;
	char *upstream; /* as written */
	struct tg_gate_url up;
	char *key;         /* pkcs11: URI */
	char *cert;        /* NULL: the token's certificate with the key's id */
	char *ca;          /* PEM file */
	char *server_id;   /* NULL or a spiffe:// URI */
	char *server_name; /* NULL: the upstream's host */
	char *host;        /* NULL: keep the client's Host */
	int allow_remote;
	unsigned client_timeout_ms;   /* http mode: a request head complete within */
	unsigned response_timeout_ms; /* http mode: the gate's response head within */
	unsigned idle_timeout_ms;     /* tcp mode: no byte either way this long: closed */
	unsigned line;                /* line in the file, 0 for flags */
};

struct tg_agent_config {
	char *file; /* the config file, or NULL (flags only) */
	struct tg_agent_listener_cfg *listeners;
	size_t nlisteners;
	char *admin;
	struct tg_gate_url admin_addr;
	unsigned admin_line;
};

/* Sets *c to an empty configuration. */
void tg_agent_config_init(struct tg_agent_config *c);

/* Frees what *c holds and re-inits it. NULL is accepted. */
void tg_agent_config_clear(struct tg_agent_config *c);

/*
 * Parses the YAML text (n bytes) of the file name into *c and validates it
 * (tg_agent_config_check). 0, or TG_ERR_CONFIG "NAME line N: problem; fix"
 * (TG_ERR_ALLOC); *c is cleared on failure.
 */
int tg_agent_config_parse(const char *text, size_t n, const char *name, struct tg_agent_config *c,
                          struct tg_error *err);

/* Reads the file path (at most 1 MiB) and parses it. */
int tg_agent_config_load(const char *path, struct tg_agent_config *c, struct tg_error *err);

/*
 * Parses `tokengate agent` arguments (argv[0] is "agent"): --config FILE
 * (only --check may be added), or the flags of one listener "main".
 * --check sets *check, -h/--help prints the usage on stdout, sets *help
 * and returns 0. Then validates. 0, TG_ERR_USAGE (already printed as
 * "tokengate agent: MESSAGE (try 'tokengate agent --help')": exit 2), or
 * TG_ERR_CONFIG and the rest (for the caller to print: exit 1).
 */
int tg_agent_config_from_args(int argc, char **argv, struct tg_agent_config *c, int *check,
                              int *help, struct tg_error *err);

/*
 * What a start needs of each listener: an https:// upstream, a pkcs11: key
 * URI, a CA file, a server_id that is a spiffe:// URI, a listen address on
 * loopback (127.0.0.0/8, ::1, localhost) or a unix socket unless
 * allow_remote, unique names and addresses, an admin address on ADDR:PORT.
 * 0 or TG_ERR_CONFIG naming the flag (or file and line) and the fix.
 */
int tg_agent_config_check(const struct tg_agent_config *c, struct tg_error *err);

#endif /* TG_AGENT_CONFIG_H */
