/*
 * username.h: the one normalisation of a User-Name before the user search,
 * so that different spellings of one user ("ALICE", " alice ",
 * "alice@example.org", "EXAMPLE\alice") find the same entry and share one
 * State, one replay record and one set of counters.
 *
 * No FreeRADIUS dependency: unit tests link this file alone.
 */
#ifndef TWOSTEP_USERNAME_H
#define TWOSTEP_USERNAME_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/** Case rule applied to a User-Name. */
typedef enum {
	TWOSTEP_CASE_KEEP = 0,	//!< Leave the case as sent.
	TWOSTEP_CASE_LOWER,	//!< ASCII letters to lower case (UTF-8 bytes above 0x7f are left as they are).
	TWOSTEP_CASE_UPPER	//!< ASCII letters to upper case.
} twostep_case_t;

/** Normalise a User-Name.
 *
 * Steps, in order: trim ASCII white space at both ends; when strip_realm
 * is set, drop a "DOMAIN\" prefix (up to the last backslash) and an
 * "@realm" suffix (from the last '@'); trim again; apply the case rule.
 *
 * @param[out] out		Buffer for the result.
 * @param[in] outlen		Its size.
 * @param[in] in		User-Name as received (NUL-terminated).
 * @param[in] case_rule		Case rule.
 * @param[in] strip_realm	Strip "DOMAIN\" and "@realm".
 * @return the length written (without NUL), or -1 when out is too small,
 *	   the input contains a control character (below 0x20, or 0x7f), or
 *	   the result is empty.
 */
ssize_t twostep_username_normalise(char *out, size_t outlen, char const *in, twostep_case_t case_rule,
				   bool strip_realm);

/** Parse a case rule: "keep", "lower" or "upper". @return 0, or -1 for anything else. */
int twostep_username_parse_case(twostep_case_t *out, char const *value);

#endif
