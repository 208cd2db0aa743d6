/*
 * gate_authz_pki.h — fixed certificates for the unit test and fuzz target
 * of the gate's authz mode (made once with openssl, valid 2026-12-02 to
 * 2125): GA_CA_PEM, a CA; GA_ALICE_PEM, its leaf for
 * spiffe://example.org/dev/alice with a key-provenance extension
 * (device-attested, PIN once, touch never, serial 27182818);
 * GA_OTHERCA_PEM, the same leaf signed by another CA (not trusted);
 * GA_CRL_PEM, a CRL of the CA.
 * GA_NOW is a time inside every validity.
 */
#ifndef TG_TEST_GATE_AUTHZ_PKI_H
#define TG_TEST_GATE_AUTHZ_PKI_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GA_NOW       ((time_t)1893456000) /* 2030-01-01 */
#define GA_NOT_AFTER ((time_t)4906637853) /* alice's notAfter, 2125-06-26 18:57:33 */

#define GA_CA_PEM                                                                                  \
	"-----BEGIN CERTIFICATE-----\n"                                                            \
	"MIIBlzCCAT2gAwIBAgIURMHmcYROgv2+WKJq+kAlkY64PZEwCgYIKoZIzj0EAwIw\n"                       \
	"GDEWMBQGA1UEAwwNYXV0aHotdGVzdC1jYTAgFw0yNjEyMDIxODU3MzNaGA8yMTI2\n"                       \
	"MTEwODE4NTczM1owGDEWMBQGA1UEAwwNYXV0aHotdGVzdC1jYTBZMBMGByqGSM49\n"                       \
	"AgEGCCqGSM49AwEHA0IABN7pvDGDSIG84dcJAIvw7voOorUB+IEQB5AhYwMMVfi7\n"                       \
	"THY2+OOB4gdb7rFXmJhNfqcENLfbezIaVpwRYBJ8EyCjYzBhMB0GA1UdDgQWBBRb\n"                       \
	"D42LAKxhDtBoX5BdgvnFcNCyqjAfBgNVHSMEGDAWgBRbD42LAKxhDtBoX5BdgvnF\n"                       \
	"cNCyqjAPBgNVHRMBAf8EBTADAQH/MA4GA1UdDwEB/wQEAwIBBjAKBggqhkjOPQQD\n"                       \
	"AgNIADBFAiBMp2qhSyEbiObDb10AR+1asHuQf5tw4utJXUSai/i3zQIhAPX0RmYY\n"                       \
	"Cx9ws8z6bqtHhTSxWaAaWAyFfUM1QAlZpGNg\n"                                                   \
	"-----END CERTIFICATE-----\n"

#define GA_ALICE_PEM                                                                               \
	"-----BEGIN CERTIFICATE-----\n"                                                            \
	"MIICGjCCAcCgAwIBAgICIAEwCgYIKoZIzj0EAwIwGDEWMBQGA1UEAwwNYXV0aHot\n"                       \
	"dGVzdC1jYTAgFw0yNjEyMDIxODU3MzNaGA8yMTI1MDYyNjE4NTczM1owGjEYMBYG\n"                       \
	"A1UEAwwPYXV0aHotdGVzdC1sZWFmMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n"                       \
	"9e9LXOhEggMiLQFZJ6w7gQQQsQl5rR3F6NED8eLdImKEx9+/o4hxowEDv+kBkiFW\n"                       \
	"vJyK9w6ekzQJ+6pHtFxHMKOB9TCB8jAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQE\n"                       \
	"AwIHgDATBgNVHSUEDDAKBggrBgEFBQcDAjApBgNVHREEIjAghh5zcGlmZmU6Ly9l\n"                       \
	"eGFtcGxlLm9yZy9kZXYvYWxpY2UwUgYUadOvseH1q9q8jYuRxfPZ6sibXgEEOjA4\n"                       \
	"AgEBCgECDAgyNzE4MjgxOAoBAgoBAYEgABEiM0RVZneImaq7zN3u/wARIjNEVWZ3\n"                       \
	"iJmqu8zd7v8wHQYDVR0OBBYEFJZdngyW7JvoxwIftaFoutZMf7U4MB8GA1UdIwQY\n"                       \
	"MBaAFFsPjYsArGEO0GhfkF2C+cVw0LKqMAoGCCqGSM49BAMCA0gAMEUCIFi//A+R\n"                       \
	"7Bl9Lvz/QkhssMfBratQRY64cXFFM0Di9V9lAiEA4DUUSdWYIUo2qqolHSQ/8ukG\n"                       \
	"lIR9+TFTJmLq1u9kd9k=\n"                                                                   \
	"-----END CERTIFICATE-----\n"

#define GA_OTHERCA_PEM                                                                             \
	"-----BEGIN CERTIFICATE-----\n"                                                            \
	"MIICHTCCAcOgAwIBAgICIAIwCgYIKoZIzj0EAwIwGzEZMBcGA1UEAwwQYXV0aHot\n"                       \
	"dGVzdC1vdGhlcjAgFw0yNjEyMDIxODU3MzNaGA8yMTI1MDYyNjE4NTczM1owGjEY\n"                       \
	"MBYGA1UEAwwPYXV0aHotdGVzdC1sZWFmMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcD\n"                       \
	"QgAE9e9LXOhEggMiLQFZJ6w7gQQQsQl5rR3F6NED8eLdImKEx9+/o4hxowEDv+kB\n"                       \
	"kiFWvJyK9w6ekzQJ+6pHtFxHMKOB9TCB8jAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB\n"                       \
	"/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDAjApBgNVHREEIjAghh5zcGlmZmU6\n"                       \
	"Ly9leGFtcGxlLm9yZy9kZXYvYWxpY2UwUgYUadOvseH1q9q8jYuRxfPZ6sibXgEE\n"                       \
	"OjA4AgEBCgECDAgyNzE4MjgxOAoBAgoBAYEgABEiM0RVZneImaq7zN3u/wARIjNE\n"                       \
	"VWZ3iJmqu8zd7v8wHQYDVR0OBBYEFJZdngyW7JvoxwIftaFoutZMf7U4MB8GA1Ud\n"                       \
	"IwQYMBaAFDUHbS3zN9SPHUBeKgl7K/8W6JiPMAoGCCqGSM49BAMCA0gAMEUCIQCz\n"                       \
	"w9S25uVW9Szavpda4pkBg3vPGhufhrTdvNNLhqj6xQIgXeVhwkArQt4cLgy70l9t\n"                       \
	"vdPWFpTAG4Is/CIVgP0iONo=\n"                                                               \
	"-----END CERTIFICATE-----\n"

/* A CRL of GA_CA_PEM revoking nothing, nextUpdate GA_CRL_NEXT (2054-04-19 19:24:02). */
#define GA_CRL_NEXT ((time_t)2660239442)
#define GA_CRL_PEM                                                                                 \
	"-----BEGIN X509 CRL-----\n"                                                               \
	"MIGxMFkCAQEwCgYIKoZIzj0EAwIwGDEWMBQGA1UEAwwNYXV0aHotdGVzdC1jYRcN\n"                       \
	"MjYxMjAyMTkyNDAyWhgPMjA1NDA0MTkxOTI0MDJaoA4wDDAKBgNVHRQEAwIBATAK\n"                       \
	"BggqhkjOPQQDAgNIADBFAiBxfiGOIdK1OFpjgBry7I2VdyNa9uGB79Z7bmWkU6ci\n"                       \
	"wwIhAN/5+MRqqqsqSYCN4j1jVrkirZXVUUq/EbTAuJ8skPQL\n"                                       \
	"-----END X509 CRL-----\n"

/*
 * s URL-escaped as nginx's $ssl_client_escaped_cert does: every byte but
 * ALPHA DIGIT - . _ ~ as %XX, in lower-case hex when lower is non-zero.
 * Malloc'd (the caller frees it); exits the test program out of memory.
 */
static inline char *
ga_escape(const char *s, int lower)
{
	const char *hex = lower ? "0123456789abcdef" : "0123456789ABCDEF";
	size_t n = strlen(s), i, o = 0;
	char *out = malloc(3 * n + 1);

	if (out == NULL) {
		fputs("ga_escape: out of memory\n", stderr);
		exit(1);
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}

#endif /* TG_TEST_GATE_AUTHZ_PKI_H */
