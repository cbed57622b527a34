/*
 * crypto.h: small cryptographic helpers shared by the module and its tools.
 */
#ifndef TWOSTEP_CRYPTO_H
#define TWOSTEP_CRYPTO_H

#include <stddef.h>

/** Compare two buffers in time that depends only on their lengths.
 *
 * @return 1 when both lengths and all bytes are equal, else 0.
 */
int twostep_const_equal(void const *a, size_t alen, void const *b, size_t blen);

/** Wipe a buffer that held a password, code or seed, in a way the compiler keeps. */
void twostep_wipe(void *ptr, size_t len);

#endif
