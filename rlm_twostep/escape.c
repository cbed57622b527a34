/*
 * escape.c: escaping values placed into LDAP filters (RFC 4515) and DNs (RFC 4514).
 *
 * Both escapers write a byte that needs escaping as '\' and two lowercase hex
 * digits, which both RFCs accept. Bytes from 0x80 up (UTF-8) pass unchanged.
 * The output length is computed first, so a value is either written whole or
 * not at all.
 */
#include <string.h>

#include "escape.h"

static char const hexdigits[] = "0123456789abcdef";

/** Control bytes: below 0x20, and DEL. */
static int is_control(unsigned char c)
{
	return (c < 0x20) || (c == 0x7f);
}

static int filter_needs_escape(unsigned char c)
{
	switch (c) {
	case '*':
	case '(':
	case ')':
	case '\\':
		return 1;

	default:
		return is_control(c);
	}
}

static int dn_needs_escape(unsigned char c, size_t pos, size_t len)
{
	switch (c) {
	case '"':
	case '+':
	case ',':
	case ';':
	case '<':
	case '>':
	case '\\':
		return 1;

	case '#':
		return pos == 0;

	case ' ':
		return (pos == 0) || (pos + 1 == len);

	default:
		return is_control(c);
	}
}

typedef int (*needs_escape_t)(unsigned char c, size_t pos, size_t len);

static int filter_needs_escape_at(unsigned char c, size_t pos, size_t len)
{
	(void)pos;
	(void)len;
	return filter_needs_escape(c);
}

static ssize_t escape(char *out, size_t outlen, char const *in, needs_escape_t needs_escape)
{
	size_t		len, need = 0, i, o = 0;

	if (!out || !outlen) return -1;
	out[0] = '\0';
	if (!in) return -1;

	len = strlen(in);
	for (i = 0; i < len; i++) need += needs_escape((unsigned char)in[i], i, len) ? 3 : 1;

	if (need >= outlen) return -1;	/* room for the NUL too */

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (needs_escape(c, i, len)) {
			out[o++] = '\\';
			out[o++] = hexdigits[c >> 4];
			out[o++] = hexdigits[c & 0x0f];
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';

	return (ssize_t)o;
}

ssize_t twostep_ldap_escape_filter(char *out, size_t outlen, char const *in)
{
	return escape(out, outlen, in, filter_needs_escape_at);
}

ssize_t twostep_ldap_escape_dn(char *out, size_t outlen, char const *in)
{
	return escape(out, outlen, in, dn_needs_escape);
}
