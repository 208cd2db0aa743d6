/*
 * report.h — what `tokengate doctor` found: one struct filled by the probes
 * (usb.c, pcsc.c, piv.c, p11.c) and read by the renderers (render.c), so the text
 * and the JSON output always say the same thing.
 *
 * Strings in the report are owned by it (NUL-terminated copies; text that
 * came from devices is copied as printable ASCII only). Arrays grow through
 * the *_add functions; tg_doctor_report_free releases everything.
 */
#ifndef TG_DOCTOR_REPORT_H
#define TG_DOCTOR_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "known.h"

/* ---- USB ---- */

enum tg_doctor_usb_status {
	TG_DOCTOR_USB_OK = 0,     /* enumerated */
	TG_DOCTOR_USB_NO_BUS = 1, /* no /dev/bus/usb, or libusb saw no bus */
	TG_DOCTOR_USB_ERROR = 2,  /* libusb failed; see note */
};

struct tg_doctor_usb_dev {
	uint8_t bus, address;
	uint16_t vid, pid;
	const char *vendor_known; /* from the vendor table (static) or NULL */
	char *manufacturer;       /* device strings, NULL when unreadable */
	char *product;
	int ccid;         /* has a CCID interface (class 0x0B) */
	char *open_error; /* why libusb_open failed, NULL when it worked */
};

struct tg_doctor_usb {
	enum tg_doctor_usb_status status;
	char *note;                     /* what the user should know, or NULL */
	size_t seen;                    /* USB devices visible in total */
	struct tg_doctor_usb_dev *devs; /* only tokens and readers */
	size_t n;
};

/* ---- PC/SC ---- */

struct tg_doctor_reader {
	char *name;
	unsigned long state; /* SCARD_STATE_* bits */
	int card_present;
	uint8_t atr[TG_DOCTOR_ATR_MAX];
	size_t atr_len;
	const char *hint; /* tg_doctor_atr_hint_find, static, or NULL */
	/* PIV GET METADATA of the card (piv.c): piv is 1 when the card
	 * answered SELECT of the PIV application; each *_default is
	 * TG_DOCTOR_DEFAULT_YES/NO, or _UNKNOWN when the card did not say
	 * (no PIV card, or one without GET METADATA). */
	int piv;
	int pin_default, puk_default, mgm_default;
};

/* What a card says about a PIN or key still being its factory value. */
#define TG_DOCTOR_DEFAULT_UNKNOWN (-1)
#define TG_DOCTOR_DEFAULT_NO      0
#define TG_DOCTOR_DEFAULT_YES     1

struct tg_doctor_pcsc {
	int reachable; /* SCardEstablishContext worked */
	char *socket;  /* the socket the client library uses */
	int socket_exists;
	char *error; /* why it is not reachable / listing failed */
	struct tg_doctor_reader *readers;
	size_t n;
};

/* ---- PKCS#11 ---- */

struct tg_doctor_token {
	unsigned long slot_id;
	char *slot_desc;
	int present;                                 /* a token is in the slot */
	char *label, *manufacturer, *model, *serial; /* when present */
	unsigned long flags;                         /* CK_TOKEN_INFO.flags when present */
	char *error;                                 /* why the token cannot be read, or NULL */
};

struct tg_doctor_module {
	char *name;                    /* p11-kit's name of the module */
	char *path;                    /* the module file */
	char *library;                 /* CK_INFO library description (from its tokens), or NULL */
	char *error;                   /* why the module cannot be loaded or listed */
	struct tg_doctor_token *slots; /* the slots holding a token */
	size_t n;
};

struct tg_doctor_pkcs11 {
	char *error; /* the p11-kit module registry cannot be read */
	struct tg_doctor_module *modules;
	size_t n;
};

/* ---- the report ---- */

struct tg_doctor_problem {
	char *what; /* the problem, naming the object */
	char *fix;  /* what to do about it */
};

struct tg_doctor_report {
	struct tg_doctor_usb usb;
	struct tg_doctor_pcsc pcsc;
	struct tg_doctor_pkcs11 pkcs11;
	struct tg_doctor_problem *problems;
	size_t n_problems;
};

/* Creates an empty report. 0 or TG_ERR_ALLOC; free with _free. */
int tg_doctor_report_new(struct tg_doctor_report **out);

/* Frees a report and everything in it. NULL is accepted. */
void tg_doctor_report_free(struct tg_doctor_report *r);

/*
 * Appends a problem. `fix` is taken as is, the problem text is formatted
 * from fmt. Returns 0 or TG_ERR_ALLOC.
 */
int tg_doctor_problem_add(struct tg_doctor_report *r, const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Appends a zeroed element to the array *arr of *n elements of `size`
 * bytes; *elem points to it. Returns 0 or TG_ERR_ALLOC (array unchanged).
 */
int tg_doctor_array_add(void **arr, size_t *n, size_t size, void **elem);

/*
 * A heap copy of the n bytes at s (stopping at a NUL), printable ASCII
 * kept and anything else replaced by '?', trailing spaces removed (PKCS#11
 * pads its fixed-size strings with blanks). NULL when out of memory.
 */
char *tg_doctor_str_clean(const char *s, size_t n);

/* A heap string formatted from fmt, or NULL when out of memory. */
char *tg_doctor_str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* TG_DOCTOR_REPORT_H */
