/*
 * smsutil.h: the pure parts of SMS codes: phone numbers (E.164), masking,
 * code generation and hashing, gateway request templates, and the check of
 * a gateway's response.
 *
 * No FreeRADIUS dependency: unit tests link this file alone.
 */
#ifndef TWOSTEP_SMSUTIL_H
#define TWOSTEP_SMSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TWOSTEP_PHONE_MAX	16	//!< '+' and at most 15 digits (ITU-T E.164), without NUL.
#define TWOSTEP_CODE_MAX	10	//!< Longest SMS code in digits.
#define TWOSTEP_CODE_HASH_LEN	32	//!< HMAC-SHA256 output.

/** Normalise a phone number to E.164: '+' then 8 to 15 digits, the first not 0.
 *
 * Spaces, dots, dashes, slashes and brackets are dropped. A leading "00" is
 * the international prefix and becomes '+'. A number without '+' or "00" is
 * national: one leading trunk '0' is dropped and default_cc (digits only,
 * such as "44") is put in front. Any other character makes the number
 * invalid.
 *
 * @param[out] out		Buffer of at least TWOSTEP_PHONE_MAX + 1 bytes.
 * @param[in] outlen		Its size.
 * @param[in] in		Number as stored in the directory.
 * @param[in] default_cc	Country calling code for national numbers, or NULL/"" to reject them.
 * @return 0 on success, -1 when the number is not valid.
 */
int twostep_phone_normalise(char *out, size_t outlen, char const *in, char const *default_cc);

/** Return the length (1 to 3) of the country calling code at the start of an E.164 number's digits.
 *
 * @note ITU-T E.164 assigned codes: 1 and 7 have one digit, the two-digit
 *	 codes are 20, 27, 30-34, 36, 39, 40, 41, 43-49, 51-58, 60-66, 81, 82,
 *	 84, 86, 90-95 and 98, every other code has three.
 */
size_t twostep_phone_cc_len(char const *e164);

/** Tell whether an E.164 number's country calling code is in a list such as {"1", "44"}.
 *
 * @return true when allowed is empty (no list configured) or the code is listed.
 */
bool twostep_phone_country_allowed(char const *e164, char const * const *allowed, size_t num_allowed);

/** Mask an E.164 number for a Reply-Message or a log line: "+1 *** *** 0200".
 *
 * The country code stays, the last 4 digits stay, every other digit
 * becomes mask, in groups of three from the left, separated by spaces.
 *
 * @return bytes written without the NUL, or -1 when out is too small or the number is not E.164.
 */
ssize_t twostep_phone_mask(char *out, size_t outlen, char const *e164, char mask);

/** Generate a code of digits decimal digits from the CSPRNG, without modulo bias.
 *
 * @param[out] out	Buffer of at least digits + 1 bytes.
 * @param[in] digits	4 to TWOSTEP_CODE_MAX.
 * @return 0, or -1 when digits is out of range or the random source failed.
 */
int twostep_sms_code_generate(char *out, unsigned int digits);

/** Compute the keyed hash of a code that travels in the State: HMAC-SHA256(key, dn || 0x00 || code).
 *
 * Binding the DN means a hash copied into another user's State is useless.
 *
 * @return 0, or -1 when the library fails.
 */
int twostep_sms_code_hash(uint8_t out[TWOSTEP_CODE_HASH_LEN], uint8_t const *key, size_t keylen,
			  char const *dn, char const *code);

/** Encoding applied to a value put into a template. */
typedef enum {
	TWOSTEP_ENCODE_NONE = 0,	//!< As is (the message text template).
	TWOSTEP_ENCODE_URL,		//!< RFC 3986 percent-encoding of everything but unreserved characters.
	TWOSTEP_ENCODE_FORM,		//!< application/x-www-form-urlencoded: as URL, but space becomes '+'.
	TWOSTEP_ENCODE_JSON		//!< Inside a JSON string (RFC 8259): escape '"', '\\' and control characters.
} twostep_encoding_t;

/** Render a template, replacing {phone}, {message} and {code} with encoded values.
 *
 * Any other text, braces included, is copied as it is, so JSON bodies can be
 * written naturally. A value given as NULL makes its placeholder an error.
 *
 * @return bytes written without the NUL, or -1 when out is too small or a
 *	   placeholder has no value (out then holds "").
 */
ssize_t twostep_template_render(char *out, size_t outlen, char const *tmpl, twostep_encoding_t encoding,
				char const *phone, char const *message, char const *code);

/** Tell whether a gateway's response means the message was accepted.
 *
 * @param[in] status		HTTP status.
 * @param[in] body		Response body (not NUL-terminated).
 * @param[in] body_len		Its length.
 * @param[in] must_contain	Text the body must contain, or NULL.
 * @param[in] must_not_contain	Text the body must not contain, or NULL.
 * @return true for a 2xx status whose body passes both checks.
 */
bool twostep_gateway_success(long status, char const *body, size_t body_len,
			     char const *must_contain, char const *must_not_contain);

#endif
