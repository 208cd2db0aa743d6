/*
 * marker_module.c — a "PKCS#11 module" an attacker would hand to the CA as
 * --hsm-key ...?module-path=: its constructor runs the moment the library
 * is loaded and creates the file named by TG_MARKER_FILE. test_ca_hsm.sh
 * checks that the CA refuses the module before loading it (no marker).
 */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((constructor)) static void
tg_marker_ctor(void)
{
	const char *path = getenv("TG_MARKER_FILE");
	int fd;

	if (path == NULL)
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd >= 0)
		close(fd);
}

/* What a real module exports, so only the constructor gives it away. */
int C_GetFunctionList(void **list);

int
C_GetFunctionList(void **list)
{
	*list = NULL;
	return 5; /* CKR_GENERAL_ERROR */
}
