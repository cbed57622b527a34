/*
 * ldap.h: connection pools, searches, the user search and the password bind.
 */
#ifndef TWOSTEP_LDAP_H
#define TWOSTEP_LDAP_H

RCSIDH(twostep_ldap_h, "$Id$")

#include <ldap.h>

#include "rlm_twostep.h"

/** Result of an LDAP step, mapped to a module result by the caller. */
typedef enum {
	TWOSTEP_LDAP_OK = 0,		//!< Search found one entry, or the bind succeeded.
	TWOSTEP_LDAP_NOT_FOUND,		//!< The search matched no entry (or the base does not exist).
	TWOSTEP_LDAP_AMBIGUOUS,		//!< The search matched more than one entry.
	TWOSTEP_LDAP_REJECT,		//!< The bind failed: wrong password (invalidCredentials).
	TWOSTEP_LDAP_CONFLICT,		//!< A compare-and-swap modify lost: another writer changed the entry first.
	TWOSTEP_LDAP_UNAVAILABLE,	//!< No server reachable, or one timed out.
	TWOSTEP_LDAP_ERROR		//!< Any other failure (bad filter, access denied...).
} twostep_ldap_rcode_t;

/** One pooled connection. */
typedef struct {
	LDAP			*handle;	//!< libldap handle, bound as the service account at open.
	char const		*uri;		//!< Server this connection reached.
} twostep_ldap_conn_t;

/** What the user search returns. Strings are allocated under the request, NULL when absent. */
typedef struct {
	char		*dn;		//!< DN of the user's entry.
	char		*totp_secret;	//!< Base32 TOTP seed.
	char		*method;	//!< Preferred method ("totp", "sms").
	char		*exempt;	//!< Exempt flag ("TRUE", "FALSE").
	char		*exempt_until;	//!< End of the exemption, GeneralizedTime.
	char		*phone;		//!< Phone number.
	char		**member_of;	//!< Groups from the member-of attribute, a talloc array.
	char		**sms_sent;	//!< Recent SMS send times (GeneralizedTime), a talloc array.
	char		*last_step;	//!< Last accepted TOTP time step.
	char		*fail_count;	//!< Consecutive wrong codes.
	char		*locked_until;	//!< End of a second-factor lock-out (GeneralizedTime).
	char		*last_challenge; //!< Nonce of the last answered challenge, hex.
} twostep_ldap_user_t;

int twostep_ldap_init(rlm_twostep_t *inst);
void twostep_ldap_free(rlm_twostep_t *inst);

twostep_ldap_rcode_t twostep_ldap_search(rlm_twostep_t const *inst, REQUEST *request, twostep_ldap_conn_t **pconn,
					 char const *base, int scope, char const *filter,
					 char const * const *attrs, LDAPMessage **result);
void twostep_ldap_release(rlm_twostep_t const *inst, twostep_ldap_conn_t *conn);

char *twostep_ldap_first_value(TALLOC_CTX *ctx, LDAP *handle, LDAPMessage *entry, char const *attr);
char **twostep_ldap_all_values(TALLOC_CTX *ctx, LDAP *handle, LDAPMessage *entry, char const *attr);

twostep_ldap_rcode_t twostep_ldap_find_user(rlm_twostep_t const *inst, REQUEST *request,
					    twostep_ldap_user_t *user);

twostep_ldap_rcode_t twostep_ldap_check_password(rlm_twostep_t const *inst, REQUEST *request,
						 char const *dn, char const *password, size_t password_len);

twostep_ldap_rcode_t twostep_ldap_read_user(rlm_twostep_t const *inst, REQUEST *request, char const *dn,
					    twostep_ldap_user_t *user);

twostep_ldap_rcode_t twostep_ldap_modify(rlm_twostep_t const *inst, REQUEST *request, char const *dn,
					 LDAPMod **mods, char const *assertion);

char const *twostep_ldap_rcode_name(twostep_ldap_rcode_t rcode);

#endif
