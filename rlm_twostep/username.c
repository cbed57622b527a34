/*
 * username.c: the one normalisation of a User-Name before the user search.
 *
 * The result is computed as a range of the input first, so a name is either
 * written whole or not at all. On -1, out contains an empty string.
 */
#include <string.h>

#include "username.h"

/** Control bytes: below 0x20, and DEL. Bytes from 0x80 up (UTF-8) are not. */
static bool is_control(unsigned char c)
{
	return (c < 0x20) || (c == 0x7f);
}

/** ASCII white space, as isspace() has it in the C locale. */
static bool is_space(unsigned char c)
{
	return (c == ' ') || (c == '\t') || (c == '\n') || (c == '\v') || (c == '\f') || (c == '\r');
}

/** Move start forward and end backward past white space. The range is [start, end). */
static void trim(char const **start, char const **end)
{
	while ((*start < *end) && is_space((unsigned char)**start)) (*start)++;
	while ((*end > *start) && is_space((unsigned char)(*end)[-1])) (*end)--;
}

/** Return the last occurrence of c in [start, end), or NULL. */
static char const *find_last(char const *start, char const *end, char c)
{
	char const *p;

	for (p = end; p > start; p--) {
		if (p[-1] == c) return p - 1;
	}

	return NULL;
}

static char apply_case(char c, twostep_case_t case_rule)
{
	switch (case_rule) {
	case TWOSTEP_CASE_LOWER:
		if ((c >= 'A') && (c <= 'Z')) return (char)(c - 'A' + 'a');
		return c;

	case TWOSTEP_CASE_UPPER:
		if ((c >= 'a') && (c <= 'z')) return (char)(c - 'a' + 'A');
		return c;

	case TWOSTEP_CASE_KEEP:
	default:
		return c;
	}
}

ssize_t twostep_username_normalise(char *out, size_t outlen, char const *in, twostep_case_t case_rule,
				   bool strip_realm)
{
	char const	*start, *end, *p;
	size_t		len, i;

	if (!out || !outlen) return -1;
	out[0] = '\0';
	if (!in) return -1;

	switch (case_rule) {
	case TWOSTEP_CASE_KEEP:
	case TWOSTEP_CASE_LOWER:
	case TWOSTEP_CASE_UPPER:
		break;

	default:
		return -1;
	}

	/*
	 *	The rule is on the whole input, so a tab or newline at either
	 *	end rejects the name, although trimming would have removed it.
	 */
	for (p = in; *p; p++) {
		if (is_control((unsigned char)*p)) return -1;
	}

	start = in;
	end = p;
	trim(&start, &end);

	/*
	 *	The prefix goes first, so in "EXAMPLE\alice@example.org" the
	 *	realm is looked for in "alice@example.org" only.
	 */
	if (strip_realm) {
		p = find_last(start, end, '\\');
		if (p) start = p + 1;

		p = find_last(start, end, '@');
		if (p) end = p;

		trim(&start, &end);
	}

	len = (size_t)(end - start);
	if (len == 0) return -1;
	if (len >= outlen) return -1;	/* room for the NUL too */

	for (i = 0; i < len; i++) out[i] = apply_case(start[i], case_rule);
	out[len] = '\0';

	return (ssize_t)len;
}

int twostep_username_parse_case(twostep_case_t *out, char const *value)
{
	if (!out || !value) return -1;

	if (strcmp(value, "keep") == 0) {
		*out = TWOSTEP_CASE_KEEP;
		return 0;
	}
	if (strcmp(value, "lower") == 0) {
		*out = TWOSTEP_CASE_LOWER;
		return 0;
	}
	if (strcmp(value, "upper") == 0) {
		*out = TWOSTEP_CASE_UPPER;
		return 0;
	}

	return -1;
}
