/*
 * ldap.h: connection pools, the user search and the password bind.
 */
#ifndef TWOSTEP_LDAP_H
#define TWOSTEP_LDAP_H

RCSIDH(twostep_ldap_h, "$Id$")

#include "rlm_twostep.h"

/** Result of an LDAP step, mapped to a module result by the caller. */
typedef enum {
	TWOSTEP_LDAP_OK = 0,		//!< Search found one entry, or the bind succeeded.
	TWOSTEP_LDAP_NOT_FOUND,		//!< The search matched no entry.
	TWOSTEP_LDAP_AMBIGUOUS,		//!< The search matched more than one entry.
	TWOSTEP_LDAP_REJECT,		//!< The bind failed: wrong password (invalidCredentials).
	TWOSTEP_LDAP_UNAVAILABLE,	//!< No server reachable, or one timed out.
	TWOSTEP_LDAP_ERROR		//!< Any other failure (bad filter, access denied...).
} twostep_ldap_rcode_t;

/** What the user search returns. Allocated under the request. */
typedef struct {
	char		*dn;		//!< DN of the user's entry.
	char		*totp_secret;	//!< Base32 TOTP seed, NULL when the entry has none.
} twostep_ldap_user_t;

int twostep_ldap_init(rlm_twostep_t *inst);
void twostep_ldap_free(rlm_twostep_t *inst);

twostep_ldap_rcode_t twostep_ldap_find_user(rlm_twostep_t const *inst, REQUEST *request,
					    twostep_ldap_user_t *user);

twostep_ldap_rcode_t twostep_ldap_check_password(rlm_twostep_t const *inst, REQUEST *request,
						 char const *dn, char const *password, size_t password_len);

#endif
