/*
 * usb.h — the USB probe of `tokengate doctor`: security tokens and smart
 * card readers seen through libusb-1.0.
 */
#ifndef TG_DOCTOR_USB_H
#define TG_DOCTOR_USB_H

#include "report.h"

/* Where Linux's usbfs device nodes live; libusb needs it to see anything. */
#define TG_DOCTOR_USBFS_DIR "/dev/bus/usb"

/*
 * Enumerates the USB devices, records in r->usb those with a CCID interface
 * (class 0x0B) or a vendor id of the vendor table, reads their manufacturer
 * and product strings where the device can be opened, and adds a problem
 * (with its fix) for each device that cannot be opened or a YubiKey whose
 * smart card interface is off. No USB bus or a libusb failure is recorded in
 * r->usb, not returned. Returns 0, or TG_ERR_ALLOC when out of memory.
 */
int tg_doctor_usb_probe(struct tg_doctor_report *r);

/*
 * tg_doctor_usb_probe with usbfs in place of TG_DOCTOR_USBFS_DIR (the
 * directory checked first and named in the notes and fixes). For tests
 * (tests/unit/test_doctor_usb.c); libusb itself still looks where it
 * always does.
 */
int tg_doctor_usb_probe_at(struct tg_doctor_report *r, const char *usbfs);

#endif /* TG_DOCTOR_USB_H */
