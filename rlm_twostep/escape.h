/*
 * escape.h: escaping values placed into LDAP filters and DNs.
 *
 * No FreeRADIUS dependency: unit tests link this file alone.
 */
#ifndef TWOSTEP_ESCAPE_H
#define TWOSTEP_ESCAPE_H

#include <stddef.h>
#include <sys/types.h>

/** Escape a value for an LDAP search filter.
 *
 * @note RFC 4515 section 3: '*', '(', ')', '\' and NUL must be written as
 *	 '\' and two hex digits. Control bytes (below 0x20, and 0x7f) are
 *	 escaped too, so a value can never change the filter's structure.
 *
 * @return bytes written, without the terminating NUL, or -1 when out is too
 *	   small (out then holds an empty string, never a truncated value).
 */
ssize_t twostep_ldap_escape_filter(char *out, size_t outlen, char const *in);

/** Escape a value for one attribute value of a DN.
 *
 * @note RFC 4514 section 2.4: '"', '+', ',', ';', '<', '>', '\' anywhere, '#'
 *	 or ' ' at the start, ' ' at the end, and NUL are escaped; this
 *	 writes every one of them, and control bytes, as '\' and two hex digits.
 *
 * @return bytes written, without the terminating NUL, or -1 when out is too
 *	   small (out then holds an empty string).
 */
ssize_t twostep_ldap_escape_dn(char *out, size_t outlen, char const *in);

#endif
