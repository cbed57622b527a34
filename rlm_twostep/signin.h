/*
 * signin.h: the two rounds of a sign-in, and the log line of each decision.
 */
#ifndef TWOSTEP_SIGNIN_H
#define TWOSTEP_SIGNIN_H

RCSIDH(twostep_signin_h, "$Id$")

#include "rlm_twostep.h"

/** Outcome of one request, as logged and as mapped to a module result. */
typedef enum {
	TWOSTEP_RESULT_ACCEPT = 0,	//!< Signed in: password alone, or password and code.
	TWOSTEP_RESULT_REJECT,		//!< Wrong credentials, a bad State, or policy says no.
	TWOSTEP_RESULT_CHALLENGE,	//!< Password good, code requested.
	TWOSTEP_RESULT_FAIL		//!< Backend or configuration trouble.
} twostep_result_t;

void twostep_decide(rlm_twostep_t const *inst, REQUEST *request, twostep_result_t result,
		    char const *reason, char const *user_dn, char const *decided_by, char const *reply_message);

rlm_rcode_t twostep_round_password(rlm_twostep_t const *inst, REQUEST *request, char const *name,
				   VALUE_PAIR *password);

rlm_rcode_t twostep_round_code(rlm_twostep_t const *inst, REQUEST *request, char const *name,
			       VALUE_PAIR *state, VALUE_PAIR *password);

#endif
