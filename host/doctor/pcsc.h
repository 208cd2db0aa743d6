/*
 * pcsc.h — the PC/SC probe of `tokengate doctor`: is pcscd reachable, which
 * readers does it have, is there a card in them and what is its ATR.
 */
#ifndef TG_DOCTOR_PCSC_H
#define TG_DOCTOR_PCSC_H

#include "report.h"

/* The socket pcsc-lite's client library uses unless PCSCLITE_CSOCK_NAME
 * names another (pcsc-lite 1.9: PCSCLITE_IPC_DIR "/pcscd.comm"). */
#define TG_DOCTOR_PCSC_SOCKET     "/run/pcscd/pcscd.comm"
#define TG_DOCTOR_PCSC_SOCKET_ENV "PCSCLITE_CSOCK_NAME"

/*
 * Connects to pcscd (never waits for a missing daemon: the client library
 * fails at once when nothing listens; a daemon that takes connections but
 * does not answer within 5 s is given up on, checked in a child process,
 * and PCSCLITE_CSOCK_NAME is then pointed at a path that cannot exist so
 * PC/SC users later in this process, such as OpenSC, fail at once too),
 * lists the readers and reads their state with a zero timeout (no card is
 * ever connected to), and fills r->pcsc. Adds a problem with its fix when pcscd is not reachable, when no
 * reader holds a card (one per empty reader), and for mute, unavailable or
 * exclusively held readers. Returns 0, or TG_ERR_ALLOC when out of memory.
 */
int tg_doctor_pcsc_probe(struct tg_doctor_report *r);

#endif /* TG_DOCTOR_PCSC_H */
