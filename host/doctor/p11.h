/*
 * p11.h — the PKCS#11 probe of `tokengate doctor`: the modules registered
 * with p11-kit, their slots and tokens, and what the token flags say about
 * PINs.
 */
#ifndef TG_DOCTOR_P11_H
#define TG_DOCTOR_P11_H

#include "report.h"

/*
 * Loads every module registered with p11-kit, initializes each one on its
 * own (so one broken module is reported by name instead of hiding the
 * others), records its library info, slots and tokens in r->pkcs11, and
 * finalizes and releases them all. Trust-store modules (p11-kit-trust)
 * are listed but not opened. Adds a problem with its fix when no token
 * module is registered, when a module fails, and for locked, nearly
 * locked, unset or to-be-changed PINs. Returns 0, or TG_ERR_ALLOC when out
 * of memory.
 */
int tg_doctor_p11_probe(struct tg_doctor_report *r);

/*
 * Names of the CK_TOKEN_INFO flags doctor shows ("login-required",
 * "pin-locked", ...): calls fn(name, arg) for each flag set in `flags`, in
 * a fixed order.
 */
void tg_doctor_p11_flags_each(unsigned long flags, void (*fn)(const char *name, void *arg),
                              void *arg);

#endif /* TG_DOCTOR_P11_H */
