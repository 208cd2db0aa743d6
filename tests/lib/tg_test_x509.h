/*
 * tg_test_x509.h — certificates for unit tests (header only): an
 * attestation chain shaped like a YubiKey's (root, F9 device certificate,
 * slot attestation), made with OpenSSL in the test.
 *
 * Include it after cmocka.h (it asserts with cmocka).
 */
#ifndef TG_TEST_X509_H
#define TG_TEST_X509_H

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

/*
 * A v3 certificate for key, CN cn, issued by issuer/ikey (NULL: self-
 * signed), valid from a minute ago for ten years, with basicConstraints
 * bc (an OpenSSL config value; NULL: none) and the Yubico extension of a
 * slot attestation (slot: PIN and touch policy 2, 1) or of an F9 device
 * certificate (!slot: firmware 5.4.3). Serials count up from 1. The caller
 * frees it.
 */
static inline X509 *
tg_test_yk_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, const char *bc,
                int slot)
{
	static const unsigned char fw[] = {5, 4, 3}, policy[] = {2, 1};
	static long serial = 1;
	X509 *x = X509_new();
	X509V3_CTX ctx;
	X509_EXTENSION *e;
	ASN1_OBJECT *o;
	ASN1_OCTET_STRING *os;

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
	assert_int_equal(X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName,
	                                            MBSTRING_UTF8, (const unsigned char *)cn, -1,
	                                            -1, 0),
	                 1);
	assert_int_equal(
	    X509_set_issuer_name(x, X509_get_subject_name(issuer != NULL ? issuer : x)), 1);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -60));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3650L * 24 * 3600));
	assert_int_equal(X509_set_pubkey(x, key), 1);
	if (bc != NULL) {
		X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
		e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, bc);
		assert_non_null(e);
		assert_int_equal(X509_add_ext(x, e, -1), 1);
		X509_EXTENSION_free(e);
	}
	o = OBJ_txt2obj(slot ? "1.3.6.1.4.1.41482.3.8" : "1.3.6.1.4.1.41482.3.3", 1);
	os = ASN1_OCTET_STRING_new();
	assert_true(o != NULL && os != NULL);
	assert_int_equal(ASN1_OCTET_STRING_set(os, slot ? policy : fw,
	                                       slot ? (int)sizeof(policy) : (int)sizeof(fw)),
	                 1);
	e = X509_EXTENSION_create_by_OBJ(NULL, o, 0, os);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(o);
	assert_true(X509_sign(x, ikey != NULL ? ikey : key, EVP_sha256()) > 0);
	return x;
}

#endif /* TG_TEST_X509_H */
