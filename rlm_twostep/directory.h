/*
 * directory.h: the organisation policy of a user and group membership, read
 * from LDAP through a cache with a time to live.
 */
#ifndef TWOSTEP_DIRECTORY_H
#define TWOSTEP_DIRECTORY_H

RCSIDH(twostep_directory_h, "$Id$")

#include "rlm_twostep.h"
#include "ldap.h"

int twostep_dir_init(rlm_twostep_t *inst);
void twostep_dir_free(rlm_twostep_t *inst);

twostep_ldap_rcode_t twostep_dir_policy(rlm_twostep_t const *inst, REQUEST *request, char const *user_dn,
					twostep_policy_t *policy);

twostep_ldap_rcode_t twostep_dir_is_member(rlm_twostep_t const *inst, REQUEST *request, char const *group_dn,
					   char const *user_dn, char * const *member_of, bool *is_member);

#endif
