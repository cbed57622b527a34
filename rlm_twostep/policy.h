/*
 * policy.h: the two-step verification decision for one sign-in.
 *
 * Given the organisation policy that applies to a user, the user's own
 * attributes and the current time, twostep_policy_decide() returns what round 1
 * does after a correct password: accept on the password alone, challenge
 * for a code with a given method, ask the user to enroll, or reject. It is a
 * pure function: the caller reads LDAP and passes plain values in.
 *
 * No FreeRADIUS dependency: unit tests link this file alone.
 */
#ifndef TWOSTEP_POLICY_H
#define TWOSTEP_POLICY_H

#include <stdbool.h>
#include <stdint.h>

/** Second-factor methods, as a bit set. */
typedef enum {
	TWOSTEP_POLICY_METHOD_NONE = 0,
	TWOSTEP_POLICY_METHOD_TOTP = 1 << 0,	//!< Authenticator app.
	TWOSTEP_POLICY_METHOD_SMS = 1 << 1,	//!< Code by text message.
	TWOSTEP_POLICY_METHOD_ALL = (1 << 0) | (1 << 1)
} twostep_policy_method_t;

/** Enforcement an organisation or OU requires. */
typedef enum {
	TWOSTEP_ENFORCE_OPTIONAL = 0,	//!< 2SV for enrolled users only.
	TWOSTEP_ENFORCE_REQUIRED,	//!< 2SV for everyone; unenrolled users must enroll.
	TWOSTEP_ENFORCE_IDP		//!< The identity provider does 2SV: password only here.
} twostep_enforcement_t;

/** The policy that applies to a user, from the nearest ancestor entry that has one. */
typedef struct {
	twostep_enforcement_t	enforcement;		//!< Parsed enforcement value.
	bool			enforcement_invalid;	//!< The value was unknown: treated as required.
	int64_t			enroll_deadline;	//!< Seconds since the epoch, 0 when absent.
	unsigned int		allowed_methods;	//!< twostep_policy_method_t bits; ALL when absent.
	char const		*source_dn;		//!< Entry the policy came from, NULL for the default.
} twostep_policy_t;

/** The user's own attributes, from the user search. */
typedef struct {
	bool			exempt;			//!< Exempt flag is TRUE.
	int64_t			exempt_until;		//!< Seconds since the epoch, 0 when absent.
	bool			in_exempt_group;	//!< Member of the configured exemption group.
	bool			in_required_group;	//!< Member of the configured "2SV required" group.
	bool			has_totp;		//!< A TOTP seed is on file.
	bool			has_phone;		//!< A valid phone number is on file.
	twostep_policy_method_t	method;			//!< Method attribute (preferred method), NONE when absent.
} twostep_policy_user_t;

/** Outcome of round 1 after a correct password. */
typedef enum {
	TWOSTEP_DECISION_PASSWORD_ONLY = 0,	//!< Access-Accept on the password alone.
	TWOSTEP_DECISION_CHALLENGE,		//!< Access-Challenge for a code with the chosen method.
	TWOSTEP_DECISION_ENROLL,		//!< The user must enroll first.
	TWOSTEP_DECISION_REJECT			//!< No way to sign in under this policy.
} twostep_decision_t;

/** Why, as a stable lowercase code for log lines. */
typedef enum {
	TWOSTEP_REASON_EXEMPT = 0,		//!< Exempt flag set and not expired.
	TWOSTEP_REASON_EXEMPT_GROUP,		//!< Member of the exemption group.
	TWOSTEP_REASON_IDP,			//!< Policy delegates 2SV to the identity provider.
	TWOSTEP_REASON_OPTIONAL_NOT_ENROLLED,	//!< Optional policy, user not enrolled.
	TWOSTEP_REASON_ENROLLED,		//!< Enrolled in an allowed method: challenge.
	TWOSTEP_REASON_NOT_ENROLLED,		//!< Required, not enrolled.
	TWOSTEP_REASON_METHOD_NOT_ALLOWED,	//!< Required, enrolled only in methods the policy forbids.
	TWOSTEP_REASON_NO_METHOD_ALLOWED	//!< Required, but the policy allows no method at all.
} twostep_reason_t;

/** The outcome of twostep_policy_decide(). */
typedef struct {
	twostep_decision_t	decision;	//!< What round 1 does.
	twostep_reason_t	reason;		//!< Why.
	twostep_policy_method_t	method;		//!< CHALLENGE: the method to use. Else NONE.
	bool			can_skip;	//!< ENROLL: the deadline has not passed, so enrollment may be put off.
	bool			required_by_group; //!< Enforcement came from the "2SV required" group.
	bool			exemption_expired; //!< Exempt flag set, but exempt-until has passed.
} twostep_policy_result_t;

/** Decide what round 1 does after a correct password.
 *
 * @param[out] result	The decision, reason and method.
 * @param[in] policy	The policy that applies to the user.
 * @param[in] user	The user's attributes.
 * @param[in] now	Current time, seconds since the epoch.
 */
void twostep_policy_decide(twostep_policy_result_t *result, twostep_policy_t const *policy,
			   twostep_policy_user_t const *user, int64_t now);

/** Return the log code of a reason, such as "exempt" or "method-not-allowed". */
char const *twostep_policy_reason_name(twostep_reason_t reason);

/** Parse an enforcement value: "required", "optional" or "idp" (case-insensitive).
 *
 * @return 0 on success, -1 for any other value (out is then REQUIRED).
 */
int twostep_policy_parse_enforcement(twostep_enforcement_t *out, char const *value);

/** Parse a method name: "totp" or "sms" (case-insensitive). @return the method or NONE. */
twostep_policy_method_t twostep_policy_parse_method(char const *value);

/** Parse an LDAP GeneralizedTime (RFC 4517 3.3.13), such as "20261231235959Z".
 *
 * Accepts a "Z" or "+hhmm"/"-hhmm" suffix, optional minutes and seconds, and
 * a fraction, which is ignored.
 *
 * @return 0 on success with *out in seconds since the epoch, -1 on malformed input.
 */
int twostep_policy_parse_time(int64_t *out, char const *value);

/** Parse an LDAP Boolean ("TRUE" or "FALSE", RFC 4517 3.3.3). @return 1, 0, or -1 when malformed. */
int twostep_policy_parse_bool(char const *value);

#endif
