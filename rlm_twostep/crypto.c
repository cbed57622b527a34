/*
 * crypto.c: small cryptographic helpers shared by the module and its tools.
 */
#include <openssl/crypto.h>

#include "crypto.h"

int twostep_const_equal(void const *a, size_t alen, void const *b, size_t blen)
{
	/*
	 *	The lengths are not secret (a code has a fixed number of
	 *	digits), so a mismatch may return at once.
	 */
	if (alen != blen) return 0;
	if (alen == 0) return 1;
	if (!a || !b) return 0;

	return CRYPTO_memcmp(a, b, alen) == 0;
}

void twostep_wipe(void *ptr, size_t len)
{
	if (!ptr || !len) return;
	OPENSSL_cleanse(ptr, len);
}
