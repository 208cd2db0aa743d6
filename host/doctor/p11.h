/*
 * p11.h — the PKCS#11 probe of `tokengate doctor`: the modules registered
 * with p11-kit, their tokens (both through libtgp11's listing), and what
 * the token flags say about PINs.
 */
#ifndef TG_DOCTOR_P11_H
#define TG_DOCTOR_P11_H

#include "report.h"

/*
 * Lists the modules p11-kit's proxy loads (tg_p11_modules_list) and, each
 * loaded on its own by path (so one broken module is reported by name
 * instead of hiding the others), its tokens (tg_p11_tokens_list), into
 * r->pkcs11. Adds a problem with its fix when no module is registered,
 * when a module fails, and for locked, nearly locked, unset or
 * to-be-changed PINs. Returns 0, or TG_ERR_ALLOC when out of memory.
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
