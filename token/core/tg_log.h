/*
 * tg_log.h — logging for the programs (simulator, tokengate): one line per
 * event on stderr, as text or as JSON lines (jansson).
 *
 *   text:  2026-11-25T18:55:12Z warn  sim.vpcd connect failed port=35963
 *   json:  {"ts":"...","level":"warn","event":"sim.vpcd","msg":"connect failed port=35963"}
 *
 * The settings are process-wide and set once by main() through
 * tg_log_init() before any thread starts; afterwards they are only read.
 * That is the one piece of global state outside main(), kept so that every
 * module can log without a context argument. The token core (token/) never
 * logs: it is pure logic and reports through return values.
 */
#ifndef TG_LOG_H
#define TG_LOG_H

#include <stdio.h>

enum tg_log_level {
	TG_LOG_ERROR = 0,
	TG_LOG_WARN = 1,
	TG_LOG_INFO = 2,
	TG_LOG_DEBUG = 3,
};

/* Sets level, format (json: 0 text, 1 JSON lines) and destination (NULL =
 * stderr). Call once, from main(). */
void tg_log_init(enum tg_log_level level, int json, FILE *out);

/* Parses "error|warn|info|debug"; 0 and *level on success,
 * TG_ERR_INVALID_ARG otherwise. */
int tg_log_level_parse(const char *s, enum tg_log_level *level);

/* 1 if a message at `level` would be written. */
int tg_log_enabled(enum tg_log_level level);

/*
 * Writes one event: `event` is a short dotted name ("sim.vpcd.connect"),
 * the message is printf-formatted. Newlines in the message are escaped so
 * an event is always one line. Never logs secrets: callers pass none.
 */
void tg_log(enum tg_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define tg_log_error(ev, ...) tg_log(TG_LOG_ERROR, ev, __VA_ARGS__)
#define tg_log_warn(ev, ...)  tg_log(TG_LOG_WARN, ev, __VA_ARGS__)
#define tg_log_info(ev, ...)  tg_log(TG_LOG_INFO, ev, __VA_ARGS__)
#define tg_log_debug(ev, ...) tg_log(TG_LOG_DEBUG, ev, __VA_ARGS__)

#endif /* TG_LOG_H */
