/* usb.c — USB tokens and readers through libusb-1.0 (usb.h). */
#include "usb.h"

#include <libusb.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "tg_err.h"

/* USB string descriptors carry at most 126 UTF-16 characters. */
#define USB_STRING_MAX 256
#define YUBICO_VID     0x1050

/* 1 if the device or one of its interfaces is CCID (USB class 0x0B). */
static int
usb_is_ccid(libusb_device *dev, const struct libusb_device_descriptor *dd)
{
	struct libusb_config_descriptor *cfg = NULL;
	const struct libusb_interface *itf;
	int i, j, ccid = 0;

	if (dd->bDeviceClass == LIBUSB_CLASS_SMART_CARD) {
		ccid = 1;
		goto out;
	}
	if (libusb_get_active_config_descriptor(dev, &cfg) != 0 &&
	    libusb_get_config_descriptor(dev, 0, &cfg) != 0)
		goto out;
	for (i = 0; i < cfg->bNumInterfaces && !ccid; i++) {
		itf = &cfg->interface[i];
		for (j = 0; j < itf->num_altsetting && !ccid; j++)
			ccid = itf->altsetting[j].bInterfaceClass == LIBUSB_CLASS_SMART_CARD;
	}
out:
	libusb_free_config_descriptor(cfg);
	return ccid;
}

/* A cleaned copy of string descriptor idx, or NULL when there is none. */
static char *
usb_string_get(libusb_device_handle *h, uint8_t idx)
{
	unsigned char buf[USB_STRING_MAX];
	char *s = NULL;
	int n;

	if (idx == 0)
		goto out;
	n = libusb_get_string_descriptor_ascii(h, idx, buf, sizeof(buf));
	if (n <= 0)
		goto out;
	s = tg_doctor_str_clean((const char *)buf, (size_t)n);
out:
	return s;
}

/* A short name for the device in problem lines: "1-4 1050:0407 (Yubico)". */
static char *
usb_dev_name(const struct tg_doctor_usb_dev *d)
{
	const char *v = d->manufacturer ? d->manufacturer : d->vendor_known;

	return tg_doctor_str_printf("%u-%u %04x:%04x%s%s%s%s%s", d->bus, d->address, d->vid, d->pid,
	                            v || d->product ? " (" : "", v ? v : "",
	                            v && d->product ? " " : "", d->product ? d->product : "",
	                            v || d->product ? ")" : "");
}

static int
usb_problems_add(struct tg_doctor_report *r, const struct tg_doctor_usb_dev *d, int open_rc)
{
	char *name = NULL;
	int rc = TG_ERR_ALLOC;

	if ((name = usb_dev_name(d)) == NULL)
		goto out;
	rc = 0;
	if (open_rc == LIBUSB_ERROR_ACCESS)
		rc = tg_doctor_problem_add(
		    r,
		    "install the udev rules for it (Debian: 'apt install libccid pcscd', for "
		    "YubiKeys also 'libu2f-udev') or add yourself to group plugdev "
		    "('usermod -aG plugdev $USER', log in again), then replug the token",
		    "USB device %s cannot be opened: permission denied", name);
	else if (open_rc != 0)
		rc = tg_doctor_problem_add(r,
		                           "unplug and replug it; if it persists try another "
		                           "USB port or cable",
		                           "USB device %s cannot be opened: %s", name,
		                           libusb_strerror(open_rc));
	if (rc == 0 && d->vid == YUBICO_VID && !d->ccid)
		rc = tg_doctor_problem_add(r,
		                           "enable it with 'ykman config usb --enable PIV' (older "
		                           "keys: 'ykman config mode +CCID'), then replug",
		                           "YubiKey %s has its smart card (CCID) interface "
		                           "disabled, so PC/SC and PIV cannot see it",
		                           name);
out:
	free(name);
	return rc;
}

/* Records one device if it is a token or reader. */
static int
usb_dev_add(struct tg_doctor_report *r, libusb_device *dev)
{
	struct libusb_device_descriptor dd;
	struct tg_doctor_usb_dev *d = NULL;
	libusb_device_handle *h = NULL;
	const char *known;
	int ccid, orc, rc = 0;

	if (libusb_get_device_descriptor(dev, &dd) != 0)
		goto out;
	known = tg_doctor_vendor_find(dd.idVendor);
	ccid = usb_is_ccid(dev, &dd);
	if (known == NULL && !ccid)
		goto out;
	if ((rc = tg_doctor_array_add((void **)&r->usb.devs, &r->usb.n, sizeof(*d), (void **)&d)) !=
	    0)
		goto out;
	d->bus = libusb_get_bus_number(dev);
	d->address = libusb_get_device_address(dev);
	d->vid = dd.idVendor;
	d->pid = dd.idProduct;
	d->vendor_known = known;
	d->ccid = ccid;
	orc = libusb_open(dev, &h);
	if (orc == 0) {
		d->manufacturer = usb_string_get(h, dd.iManufacturer);
		d->product = usb_string_get(h, dd.iProduct);
	} else if ((d->open_error = tg_doctor_str_printf("%s", libusb_strerror(orc))) == NULL) {
		rc = TG_ERR_ALLOC;
		goto out;
	}
	rc = usb_problems_add(r, d, orc);
out:
	if (h != NULL)
		libusb_close(h);
	return rc;
}

static int
usb_note_set(struct tg_doctor_usb *u, enum tg_doctor_usb_status st, const char *note)
{
	u->status = st;
	free(u->note);
	u->note = tg_doctor_str_printf("%s", note);
	return u->note == NULL ? TG_ERR_ALLOC : 0;
}

int
tg_doctor_usb_probe_at(struct tg_doctor_report *r, const char *usbfs)
{
	libusb_context *ctx = NULL;
	libusb_device **list = NULL;
	struct stat st;
	ssize_t n, i;
	char *msg = NULL, *none = NULL, *fix = NULL;
	int lrc, rc = TG_ERR_ALLOC;

	r->usb.status = TG_DOCTOR_USB_OK;
	if ((none = tg_doctor_str_printf("no devices visible (no %s or empty)", usbfs)) == NULL)
		goto out;
	rc = 0;
	if (stat(usbfs, &st) != 0 || !S_ISDIR(st.st_mode)) {
		rc = usb_note_set(&r->usb, TG_DOCTOR_USB_NO_BUS, none);
		goto out;
	}
	if ((lrc = libusb_init(&ctx)) != 0) {
		ctx = NULL;
		if ((msg = tg_doctor_str_printf("libusb could not start: %s",
		                                libusb_strerror(lrc))) == NULL ||
		    (rc = usb_note_set(&r->usb, TG_DOCTOR_USB_ERROR, msg)) != 0) {
			rc = TG_ERR_ALLOC;
			goto out;
		}
		rc = TG_ERR_ALLOC;
		if ((fix = tg_doctor_str_printf("check that %s and /sys/bus/usb are mounted (in "
		                                "a container, pass the USB devices through)",
		                                usbfs)) == NULL)
			goto out;
		rc = tg_doctor_problem_add(r, fix, "USB cannot be enumerated: %s", msg);
		goto out;
	}
	if ((n = libusb_get_device_list(ctx, &list)) < 0) {
		rc = usb_note_set(&r->usb, TG_DOCTOR_USB_ERROR, libusb_strerror((int)n));
		goto out;
	}
	r->usb.seen = (size_t)n;
	if (n == 0) {
		rc = usb_note_set(&r->usb, TG_DOCTOR_USB_NO_BUS, none);
		goto out;
	}
	for (i = 0; i < n && rc == 0; i++)
		rc = usb_dev_add(r, list[i]);
out:
	free(msg);
	free(none);
	free(fix);
	if (list != NULL)
		libusb_free_device_list(list, 1);
	if (ctx != NULL)
		libusb_exit(ctx);
	return rc;
}

int
tg_doctor_usb_probe(struct tg_doctor_report *r)
{
	return tg_doctor_usb_probe_at(r, TG_DOCTOR_USBFS_DIR);
}
