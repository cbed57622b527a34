/*
 * otp.h: checking one-time codes (TOTP, RFC 6238) with liboath.
 *
 * No FreeRADIUS dependency: unit tests link this file alone.
 */
#ifndef TWOSTEP_OTP_H
#define TWOSTEP_OTP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/** Result of a code check. */
typedef enum {
	TWOSTEP_OTP_MATCH = 0,		//!< The code matches a time step inside the drift window.
	TWOSTEP_OTP_MISMATCH,		//!< Well-formed code that matches no step in the window.
	TWOSTEP_OTP_MALFORMED,		//!< Not exactly the configured number of ASCII digits.
	TWOSTEP_OTP_ERROR		//!< liboath failed (bad seed, bad parameters).
} twostep_otp_rcode_t;

/** Initialise liboath. Call once, before threads start. @return 0 or -1. */
int twostep_otp_init(void);

/** Check a TOTP code against every step from -drift to +drift around now.
 *
 * @note RFC 6238: step = floor((now - 0) / time_step). The comparison of each
 *	 candidate runs in constant time.
 *
 * @param[in] seed	Raw seed bytes.
 * @param[in] seed_len	Length of seed.
 * @param[in] code	Code the user typed, NUL-terminated.
 * @param[in] now	Current time, seconds since the epoch.
 * @param[in] time_step	Step length in seconds (RFC 6238 X), > 0.
 * @param[in] digits	Code length, 6..8.
 * @param[in] drift	Steps accepted on each side of the current one.
 * @param[out] step	The matching time step (T), on TWOSTEP_OTP_MATCH. May be NULL.
 */
twostep_otp_rcode_t twostep_totp_check(uint8_t const *seed, size_t seed_len, char const *code,
				       int64_t now, unsigned int time_step, unsigned int digits,
				       unsigned int drift, uint64_t *step);

/** Decode a base32 seed (RFC 4648, case-insensitive, spaces and padding allowed).
 *
 * @param[out] out	Buffer for the raw seed.
 * @param[in,out] outlen	In: size of out. Out: bytes written.
 * @param[in] in	Base32 text.
 * @return 0 on success, -1 on invalid base32, an empty result or a seed that
 *	   does not fit in out.
 */
int twostep_base32_decode(uint8_t *out, size_t *outlen, char const *in);

#endif
