/*
 * test_doctor_usb.c — the USB probe of `tokengate doctor`
 * (host/doctor/usb.c) without USB hardware: no usbfs directory, a file
 * where it should be, and a directory there while libusb has no bus to
 * open (this machine, or a container without /dev/bus/usb passed
 * through). tg_doctor_usb_probe_at takes the usbfs directory so the test
 * can point the probe at directories it makes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "report.h"
#include "tg_err.h"
#include "tg_test.h"
#include "usb.h"

static int
have_usbfs(void)
{
	struct stat st;

	return stat(TG_DOCTOR_USBFS_DIR, &st) == 0 && S_ISDIR(st.st_mode);
}

static void
expect_no_bus(const struct tg_doctor_report *r, const char *dir)
{
	char want[512];

	snprintf(want, sizeof(want), "no devices visible (no %s or empty)", dir);
	assert_int_equal(r->usb.status, TG_DOCTOR_USB_NO_BUS);
	assert_non_null(r->usb.note);
	assert_string_equal(r->usb.note, want);
	assert_int_equal(r->usb.seen, 0);
	assert_int_equal(r->usb.n, 0);
	assert_null(r->usb.devs);
	assert_int_equal(r->n_problems, 0); /* no bus is not a problem by itself */
}

/* No usbfs directory, or a file in its place: "no devices", no problem;
 * probing again replaces the note. */
static void
test_no_usbfs(void **state)
{
	struct tg_doctor_report *r = NULL;
	char dir[256], file[300];
	FILE *f;

	(void)state;
	assert_int_equal(tg_test_tmpdir("tg-doctor-usb", dir, sizeof(dir)), 0);
	snprintf(file, sizeof(file), "%s/usb", dir);
	assert_int_equal(tg_doctor_report_new(&r), 0);
	assert_int_equal(tg_doctor_usb_probe_at(r, file), 0);
	expect_no_bus(r, file);
	assert_non_null(f = fopen(file, "w"));
	fclose(f);
	assert_int_equal(tg_doctor_usb_probe_at(r, file), 0);
	expect_no_bus(r, file);
	tg_doctor_report_free(r);
	tg_test_tmpdir_remove(dir);
}

/* A usbfs directory but no bus libusb can see: either libusb starts and
 * lists no device ("no devices visible", naming the directory), or it
 * cannot start (the note says so and a problem names the directory to
 * check). */
static void
test_libusb_fails(void **state)
{
	struct tg_doctor_report *r = NULL;
	char dir[256], want[512];
	size_t i;

	(void)state;
	assert_int_equal(tg_test_tmpdir("tg-doctor-usb", dir, sizeof(dir)), 0);
	assert_int_equal(tg_doctor_report_new(&r), 0);
	assert_int_equal(tg_doctor_usb_probe_at(r, dir), 0);
	if (have_usbfs()) {
		/* a real bus: whatever it lists is a token or reader */
		assert_true(r->usb.status == TG_DOCTOR_USB_OK ||
		            r->usb.status == TG_DOCTOR_USB_NO_BUS);
		for (i = 0; i < r->usb.n; i++)
			assert_true(r->usb.devs[i].ccid || r->usb.devs[i].vendor_known != NULL);
		tg_doctor_report_free(r);
		tg_test_tmpdir_remove(dir);
		print_message("this machine has %s: libusb does not fail here\n",
		              TG_DOCTOR_USBFS_DIR);
		skip();
	}
	if (r->usb.status == TG_DOCTOR_USB_NO_BUS) {
		/* libusb starts without a bus (libusb 1.0.26 on Debian 12)
		 * and lists nothing: "no devices", naming the directory */
		expect_no_bus(r, dir);
		goto done;
	}
	/* libusb refuses to start without a bus (other libusb versions) */
	assert_int_equal(r->usb.status, TG_DOCTOR_USB_ERROR);
	assert_non_null(r->usb.note);
	assert_non_null(strstr(r->usb.note, "libusb could not start: "));
	assert_int_equal(r->usb.n, 0);
	assert_int_equal(r->n_problems, 1);
	snprintf(want, sizeof(want), "USB cannot be enumerated: %s", r->usb.note);
	assert_string_equal(r->problems[0].what, want);
	snprintf(want, sizeof(want),
	         "check that %s and /sys/bus/usb are mounted (in a container, pass the USB "
	         "devices through)",
	         dir);
	assert_string_equal(r->problems[0].fix, want);
done:
	tg_doctor_report_free(r);
	tg_test_tmpdir_remove(dir);
}

/* The probe doctor runs looks at /dev/bus/usb. */
static void
test_default_dir(void **state)
{
	struct tg_doctor_report *r = NULL;

	(void)state;
	if (have_usbfs()) {
		print_message("this machine has %s\n", TG_DOCTOR_USBFS_DIR);
		skip();
	}
	assert_int_equal(tg_doctor_report_new(&r), 0);
	assert_int_equal(tg_doctor_usb_probe(r), 0);
	expect_no_bus(r, "/dev/bus/usb");
	tg_doctor_report_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_usbfs),
	    cmocka_unit_test(test_libusb_fails),
	    cmocka_unit_test(test_default_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
