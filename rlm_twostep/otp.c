/*
 * otp.c: checking one-time codes (TOTP, RFC 6238) with liboath.
 */
#include <stdlib.h>
#include <string.h>

#include <liboath/oath.h>

#include "crypto.h"
#include "otp.h"

#define TWOSTEP_OTP_MIN_DIGITS	6
#define TWOSTEP_OTP_MAX_DIGITS	8

int twostep_otp_init(void)
{
	return (oath_init() == OATH_OK) ? 0 : -1;
}

/** What the comparator needs: the code the user typed, already checked for length. */
typedef struct {
	char const	*code;
	size_t		len;
} otp_cmp_ctx_t;

/** strcmp-like callback for liboath: 0 on match, 1 on mismatch, in constant time. */
static int otp_cmp(void *handle, char const *candidate)
{
	otp_cmp_ctx_t const *ctx = handle;

	if (!ctx || !candidate) return -1;

	return twostep_const_equal(ctx->code, ctx->len, candidate, strlen(candidate)) ? 0 : 1;
}

twostep_otp_rcode_t twostep_totp_check(uint8_t const *seed, size_t seed_len, char const *code,
				       int64_t now, unsigned int time_step, unsigned int digits,
				       unsigned int drift, uint64_t *step)
{
	otp_cmp_ctx_t	ctx;
	size_t		i;
	int		pos = 0, rc;
	uint64_t	counter = 0;
	int64_t		matched;

	if (!code) return TWOSTEP_OTP_MALFORMED;
	if ((digits < TWOSTEP_OTP_MIN_DIGITS) || (digits > TWOSTEP_OTP_MAX_DIGITS)) return TWOSTEP_OTP_ERROR;

	/*
	 *	Exactly 'digits' ASCII digits, nothing before, between or after.
	 *	Checked before the seed, so a typo is reported as such.
	 */
	for (i = 0; i < digits; i++) {
		if ((code[i] < '0') || (code[i] > '9')) return TWOSTEP_OTP_MALFORMED;
	}
	if (code[digits] != '\0') return TWOSTEP_OTP_MALFORMED;

	/*
	 *	An empty seed would make every code computable by anyone.
	 *	liboath counts steps from the epoch, and divides with
	 *	truncation, so times before the epoch are refused too.
	 */
	if (!seed || !seed_len) return TWOSTEP_OTP_ERROR;
	if (time_step == 0) return TWOSTEP_OTP_ERROR;
	if (now < 0) return TWOSTEP_OTP_ERROR;

	ctx.code = code;
	ctx.len = digits;

	rc = oath_totp_validate4_callback((char const *)seed, seed_len, (time_t)now, time_step,
					  OATH_TOTP_DEFAULT_START_TIME, digits, drift,
					  &pos, &counter, 0, otp_cmp, &ctx);
	if (rc == OATH_INVALID_OTP) return TWOSTEP_OTP_MISMATCH;
	if (rc < 0) return TWOSTEP_OTP_ERROR;

	/*
	 *	liboath computes the steps below the current one in unsigned
	 *	arithmetic, so close to the epoch a "step" below zero wraps.
	 *	A match there is not a real time step: refuse it.
	 */
	matched = (now / (int64_t)time_step) + pos;
	if (matched < 0) return TWOSTEP_OTP_MISMATCH;

	if (step) *step = (uint64_t)matched;
	return TWOSTEP_OTP_MATCH;
}

int twostep_base32_decode(uint8_t *out, size_t *outlen, char const *in)
{
	char	*decoded = NULL;
	size_t	decoded_len = 0;
	int	ret = -1;

	if (!out || !outlen || !in) return -1;

	if (oath_base32_decode(in, strlen(in), &decoded, &decoded_len) != OATH_OK) {
		/* liboath frees its buffer on failure; nothing was returned. */
		return -1;
	}

	if (decoded_len > 0 && decoded_len <= *outlen) {
		memcpy(out, decoded, decoded_len);
		*outlen = decoded_len;
		ret = 0;
	}

	if (decoded) {
		twostep_wipe(decoded, decoded_len);
		free(decoded);
	}

	return ret;
}
