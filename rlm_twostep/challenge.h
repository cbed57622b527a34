/*
 * challenge.h: building the Access-Challenge for a TOTP or an SMS code.
 */
#ifndef TWOSTEP_CHALLENGE_H
#define TWOSTEP_CHALLENGE_H

RCSIDH(twostep_challenge_h, "$Id$")

#include "rlm_twostep.h"
#include "signin.h"
#include "ldap.h"

/** Subject of a challenge: the user, carried into every State of one sign-in. */
typedef struct {
	char const			*name;		//!< Normalised User-Name.
	char const			*dn;		//!< DN of the user's entry.
	twostep_state_snapshot_t	snapshot;	//!< Replay and failure counters read from the entry.
} twostep_subject_t;

/** Outcome of a challenge step, for the caller's decision line. */
typedef struct {
	twostep_result_t	result;		//!< Challenge, reject or fail.
	char const		*reason;	//!< Reason code for the log line.
	char const		*reply;		//!< Reply-Message, allocated under the request or static.
} twostep_challenge_t;

void twostep_challenge_totp(rlm_twostep_t const *inst, REQUEST *request, twostep_subject_t const *subject,
			    uint8_t const *seed, size_t seed_len, char const *message, twostep_challenge_t *out);

void twostep_challenge_sms(rlm_twostep_t const *inst, REQUEST *request, twostep_subject_t const *subject,
			   twostep_ldap_user_t const *user, uint8_t const *seed, size_t seed_len,
			   twostep_challenge_t *out);

void twostep_challenge_sms_again(rlm_twostep_t const *inst, REQUEST *request, twostep_subject_t const *subject,
				 twostep_state_claims_t const *old, char const *message, twostep_challenge_t *out);

int twostep_challenge_snapshot(rlm_twostep_t const *inst, REQUEST *request, twostep_ldap_user_t const *user,
			       twostep_state_snapshot_t *snapshot);

int twostep_challenge_seed(rlm_twostep_t const *inst, REQUEST *request, char const *dn, char const *secret,
			   uint8_t *seed, size_t *seed_len);

bool twostep_challenge_phone(rlm_twostep_t const *inst, char const *phone, char *e164, size_t e164_len);

#endif
