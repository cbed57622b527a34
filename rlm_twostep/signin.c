/*
 * signin.c: the two rounds of a sign-in.
 *
 * Round 1 checks the password with an LDAP bind, then applies the
 * organisation policy: accept on the password alone, send an
 * Access-Challenge for a code, or reject. Round 2 checks the State and the
 * code. Every request ends in exactly one decision line in the log.
 */
RCSID("$Id$")

#include <ctype.h>

#include "signin.h"
#include "ldap.h"
#include "directory.h"
#include "otp.h"
#include "crypto.h"

static char const *result_names[] = {
	[TWOSTEP_RESULT_ACCEPT] = "accept",
	[TWOSTEP_RESULT_REJECT] = "reject",
	[TWOSTEP_RESULT_CHALLENGE] = "challenge",
	[TWOSTEP_RESULT_FAIL] = "fail",
};

/** Name the NAS for log lines: NAS-Identifier, else NAS-IP-Address, else the source address. */
static char const *nas_name(REQUEST *request, char *buf, size_t buflen)
{
	VALUE_PAIR *vp;

	vp = fr_pair_find_by_num(request->packet->vps, PW_NAS_IDENTIFIER, 0, TAG_ANY);
	if (vp) {
		fr_prints(buf, buflen, vp->vp_strvalue, vp->vp_length, '"');
		return buf;
	}
	vp = fr_pair_find_by_num(request->packet->vps, PW_NAS_IP_ADDRESS, 0, TAG_ANY);
	if (vp) return inet_ntop(AF_INET, &vp->vp_ipaddr, buf, buflen);

	return inet_ntop(request->packet->src_ipaddr.af, &request->packet->src_ipaddr.ipaddr, buf, buflen);
}

/** Write the one log line of a decision, and add the Reply-Message if one is given.
 *
 * The line names the user (escaped), the NAS, the result, the reason, the
 * user's DN and the DN of the entry that decided, when they are known. It
 * never contains a password, code or seed.
 *
 * @param[in] inst		Module instance.
 * @param[in] request		Current request.
 * @param[in] decision		Outcome.
 * @param[in] reason		Stable lowercase reason code.
 * @param[in] user_dn		DN of the user's entry, or NULL.
 * @param[in] decided_by	DN of the policy, group or user entry that decided, or NULL.
 * @param[in] reply_message	Reply-Message text, or NULL for none.
 */
void twostep_decide(rlm_twostep_t const *inst, REQUEST *request, twostep_result_t decision,
		    char const *reason, char const *user_dn, char const *decided_by, char const *reply_message)
{
	char		user[256] = "";
	char		nas[128] = "";
	VALUE_PAIR	*vp;

	vp = fr_pair_find_by_num(request->packet->vps, PW_USER_NAME, 0, TAG_ANY);
	if (vp) fr_prints(user, sizeof(user), vp->vp_strvalue, vp->vp_length, '"');
	if (!nas_name(request, nas, sizeof(nas))) strlcpy(nas, "unknown", sizeof(nas));

	INFO("rlm_twostep (%s): (%u) user=\"%s\" nas=%s result=%s reason=%s%s%s%s%s%s%s", inst->name,
	     request->number, user, nas, result_names[decision], reason,
	     user_dn ? " dn=\"" : "", user_dn ? user_dn : "", user_dn ? "\"" : "",
	     decided_by ? " decided_by=\"" : "", decided_by ? decided_by : "", decided_by ? "\"" : "");

	if (reply_message && *reply_message) pair_make_reply("Reply-Message", reply_message, T_OP_SET);
	/* Debian's 3.2.1 does not add Message-Authenticator to replies by itself. */
	pair_make_reply("Message-Authenticator", "0x00", T_OP_SET);
}

static rlm_rcode_t decision_rcode(twostep_result_t decision)
{
	switch (decision) {
	case TWOSTEP_RESULT_ACCEPT:
		return RLM_MODULE_OK;
	case TWOSTEP_RESULT_CHALLENGE:
		return RLM_MODULE_HANDLED;
	case TWOSTEP_RESULT_REJECT:
		return RLM_MODULE_REJECT;
	case TWOSTEP_RESULT_FAIL:
	default:
		return RLM_MODULE_FAIL;
	}
}

/*
 *	Send the Access-Challenge of round 1: seal the claims into a State.
 */
static twostep_result_t send_challenge(rlm_twostep_t const *inst, REQUEST *request, char const *dn,
				 char const *secret, char const **reason)
{
	twostep_state_claims_t	claims;
	uint8_t			token[TWOSTEP_STATE_MAX_LEN];
	size_t			token_len = 0;
	twostep_state_rcode_t	rcode;
	VALUE_PAIR		*vp;
	twostep_result_t		decision = TWOSTEP_RESULT_FAIL;

	memset(&claims, 0, sizeof(claims));
	claims.method = TWOSTEP_METHOD_TOTP;
	claims.issued = time(NULL);
	claims.seed_len = sizeof(claims.seed);
	if (twostep_base32_decode(claims.seed, &claims.seed_len, secret) < 0) {
		REDEBUG("The TOTP seed of %s is not valid base32", dn);
		*reason = "seed-invalid";
		goto finish;
	}
	if ((strlcpy(claims.user, request->username->vp_strvalue, sizeof(claims.user)) >= sizeof(claims.user)) ||
	    (strlcpy(claims.dn, dn, sizeof(claims.dn)) >= sizeof(claims.dn))) {
		rcode = TWOSTEP_STATE_TOO_LONG;
	} else {
		rcode = twostep_state_create(token, &token_len, &inst->keys[0], &claims);
	}
	if (rcode == TWOSTEP_STATE_TOO_LONG) {
		REDEBUG("User-Name and DN are too long to fit in one State attribute (253 bytes)");
		*reason = "state-too-long";
		goto finish;
	}
	if (rcode != TWOSTEP_STATE_OK) {
		REDEBUG("Creating the State failed: %s", twostep_state_strerror(rcode));
		*reason = "state-error";
		goto finish;
	}

	vp = fr_pair_afrom_num(request->reply, PW_STATE, 0);
	if (!vp) goto finish;
	fr_pair_value_memcpy(vp, token, token_len);
	fr_pair_replace(&request->reply->vps, vp);
	request->reply->code = PW_CODE_ACCESS_CHALLENGE;
	*reason = "challenge-sent";
	decision = TWOSTEP_RESULT_CHALLENGE;

finish:
	twostep_wipe(&claims, sizeof(claims));
	return decision;
}

/** Tell whether a phone number is usable: a '+' at most at the start, then 7 to 15 digits.
 *
 * Spaces, dots, dashes and brackets are allowed between digits, as people write them.
 */
static bool phone_usable(char const *phone)
{
	size_t digits = 0;

	if (!phone) return false;
	if (*phone == '+') phone++;
	for (; *phone; phone++) {
		if (isdigit((uint8_t) *phone)) {
			digits++;
		} else if (!strchr(" .-()", *phone)) {
			return false;
		}
	}
	return digits >= 7 && digits <= 15;
}

/** Turn the user's LDAP values into the inputs of the policy decision. Bad values are read strictly. */
static twostep_ldap_rcode_t read_user_inputs(rlm_twostep_t const *inst, REQUEST *request,
					     twostep_ldap_user_t const *user, twostep_policy_user_t *in)
{
	twostep_ldap_rcode_t rcode;

	memset(in, 0, sizeof(*in));
	in->has_totp = (user->totp_secret != NULL);
	in->has_phone = phone_usable(user->phone);
	if (user->method) {
		in->method = twostep_policy_parse_method(user->method);
		if (in->method == TWOSTEP_POLICY_METHOD_NONE) {
			RWDEBUG("%s: unknown %s value \"%s\", ignoring it", user->dn, inst->attrs.method, user->method);
		}
	}

	if (user->exempt) {
		int flag = twostep_policy_parse_bool(user->exempt);

		if (flag < 0) RWDEBUG("%s: %s \"%s\" is not TRUE or FALSE: not exempt", user->dn,
				      inst->attrs.exempt, user->exempt);
		in->exempt = (flag == 1);
	}
	if (in->exempt && user->exempt_until && twostep_policy_parse_time(&in->exempt_until, user->exempt_until) < 0) {
		/* An exemption whose end cannot be read is not granted. */
		RWDEBUG("%s: %s \"%s\" is not a GeneralizedTime: not exempt", user->dn,
			inst->attrs.exempt_until, user->exempt_until);
		in->exempt = false;
	}

	if (inst->policy.exempt_group) {
		rcode = twostep_dir_is_member(inst, request, inst->policy.exempt_group, user->dn, user->member_of,
					      &in->in_exempt_group);
		if (rcode != TWOSTEP_LDAP_OK) return rcode;
	}
	if (inst->policy.required_group) {
		rcode = twostep_dir_is_member(inst, request, inst->policy.required_group, user->dn, user->member_of,
					      &in->in_required_group);
		if (rcode != TWOSTEP_LDAP_OK) return rcode;
	}
	return TWOSTEP_LDAP_OK;
}

/** Return the DN of the entry that decided: the user, a group or the policy entry. */
static char const *decided_by(rlm_twostep_t const *inst, twostep_policy_result_t const *result,
			      twostep_policy_t const *policy, char const *user_dn)
{
	switch (result->reason) {
	case TWOSTEP_REASON_EXEMPT:
		return user_dn;

	case TWOSTEP_REASON_EXEMPT_GROUP:
		return inst->policy.exempt_group;

	default:
		if (result->required_by_group) return inst->policy.required_group;
		return policy->source_dn ? policy->source_dn : "default policy";
	}
}

/*
 *	After a correct password: decide with the policy, then accept,
 *	challenge or reject.
 */
static twostep_result_t apply_policy(rlm_twostep_t const *inst, REQUEST *request, twostep_ldap_user_t const *user)
{
	twostep_policy_t	policy;
	twostep_policy_user_t	in;
	twostep_policy_result_t	result;
	twostep_result_t	decision;
	char const		*reason, *by;

	if ((twostep_dir_policy(inst, request, user->dn, &policy) != TWOSTEP_LDAP_OK) ||
	    (read_user_inputs(inst, request, user, &in) != TWOSTEP_LDAP_OK)) {
		twostep_decide(inst, request, TWOSTEP_RESULT_FAIL, "ldap-unavailable", user->dn, NULL,
			       inst->msg.unavailable);
		return TWOSTEP_RESULT_FAIL;
	}

	twostep_policy_decide(&result, &policy, &in, time(NULL));
	reason = twostep_policy_reason_name(result.reason);
	by = decided_by(inst, &result, &policy, user->dn);
	if (policy.enforcement_invalid) RWDEBUG("The policy on %s has an invalid value: treated as required", by);
	if (result.exemption_expired) RDEBUG2("The exemption of %s has expired", user->dn);
	if (result.required_by_group && (result.reason == TWOSTEP_REASON_EXEMPT ||
					 result.reason == TWOSTEP_REASON_EXEMPT_GROUP)) {
		RWDEBUG("%s is in the required group %s, but exempt: the exemption wins", user->dn,
			inst->policy.required_group);
	}

	switch (result.decision) {
	case TWOSTEP_DECISION_PASSWORD_ONLY:
		twostep_decide(inst, request, TWOSTEP_RESULT_ACCEPT, reason, user->dn, by, NULL);
		return TWOSTEP_RESULT_ACCEPT;

	case TWOSTEP_DECISION_ENROLL:
		/* No in-band enrollment yet: the user asks the helpdesk, whatever the deadline. */
		twostep_decide(inst, request, TWOSTEP_RESULT_REJECT, reason, user->dn, by, inst->msg.not_enrolled);
		return TWOSTEP_RESULT_REJECT;

	case TWOSTEP_DECISION_REJECT:
		twostep_decide(inst, request, TWOSTEP_RESULT_REJECT, reason, user->dn, by, inst->msg.no_method);
		return TWOSTEP_RESULT_REJECT;

	case TWOSTEP_DECISION_CHALLENGE:
		break;
	}

	if (result.method != TWOSTEP_POLICY_METHOD_TOTP) {
		/* NOTE: SMS codes are not implemented yet, so an SMS-only user cannot sign in. */
		twostep_decide(inst, request, TWOSTEP_RESULT_REJECT, "sms-unavailable", user->dn, by,
			       inst->msg.sms_unavailable);
		return TWOSTEP_RESULT_REJECT;
	}

	decision = send_challenge(inst, request, user->dn, user->totp_secret, &reason);
	twostep_decide(inst, request, decision, reason, user->dn, by,
		       decision == TWOSTEP_RESULT_CHALLENGE ? inst->msg.totp_challenge : inst->msg.unavailable);
	return decision;
}

/*
 *	Round 1: check the password, then challenge for the code.
 */
rlm_rcode_t twostep_round_password(rlm_twostep_t const *inst, REQUEST *request, VALUE_PAIR *password)
{
	twostep_ldap_user_t	user;
	twostep_ldap_rcode_t	rcode;
	twostep_result_t	decision;

	/* An empty password would make the bind anonymous: it never reaches LDAP. */
	if (password->vp_length == 0) {
		twostep_decide(inst, request, TWOSTEP_RESULT_REJECT, "empty-password", NULL, NULL, inst->msg.login_failed);
		return RLM_MODULE_REJECT;
	}

	rcode = twostep_ldap_find_user(inst, request, &user);
	switch (rcode) {
	case TWOSTEP_LDAP_OK:
		break;

	case TWOSTEP_LDAP_NOT_FOUND:
		twostep_decide(inst, request, TWOSTEP_RESULT_REJECT, "user-not-found", NULL, NULL, inst->msg.login_failed);
		return RLM_MODULE_REJECT;

	case TWOSTEP_LDAP_AMBIGUOUS:
		twostep_decide(inst, request, TWOSTEP_RESULT_REJECT, "user-ambiguous", NULL, NULL, inst->msg.login_failed);
		return RLM_MODULE_REJECT;

	case TWOSTEP_LDAP_UNAVAILABLE:
		twostep_decide(inst, request, TWOSTEP_RESULT_FAIL, "ldap-unavailable", NULL, NULL, inst->msg.unavailable);
		return RLM_MODULE_FAIL;

	default:
		twostep_decide(inst, request, TWOSTEP_RESULT_FAIL, "ldap-error", NULL, NULL, inst->msg.unavailable);
		return RLM_MODULE_FAIL;
	}

	rcode = twostep_ldap_check_password(inst, request, user.dn, password->vp_strvalue, password->vp_length);
	switch (rcode) {
	case TWOSTEP_LDAP_OK:
		break;

	case TWOSTEP_LDAP_REJECT:
		decision = TWOSTEP_RESULT_REJECT;
		twostep_decide(inst, request, decision, "password-rejected", user.dn, NULL, inst->msg.login_failed);
		goto finish;

	case TWOSTEP_LDAP_UNAVAILABLE:
		decision = TWOSTEP_RESULT_FAIL;
		twostep_decide(inst, request, decision, "ldap-unavailable", user.dn, NULL, inst->msg.unavailable);
		goto finish;

	default:
		decision = TWOSTEP_RESULT_FAIL;
		twostep_decide(inst, request, decision, "ldap-error", user.dn, NULL, inst->msg.unavailable);
		goto finish;
	}

	decision = apply_policy(inst, request, &user);

finish:
	if (user.totp_secret) twostep_wipe(user.totp_secret, strlen(user.totp_secret));
	talloc_free(user.totp_secret);
	talloc_free(user.method);
	talloc_free(user.exempt);
	talloc_free(user.exempt_until);
	talloc_free(user.phone);
	talloc_free(user.member_of);
	talloc_free(user.dn);
	return decision_rcode(decision);
}

/*
 *	Round 2: verify the State, then the code.
 */
rlm_rcode_t twostep_round_code(rlm_twostep_t const *inst, REQUEST *request, VALUE_PAIR *state, VALUE_PAIR *password)
{
	twostep_state_claims_t	claims;
	twostep_state_rcode_t	state_rcode;
	twostep_otp_rcode_t	otp_rcode;
	char			code[16];
	twostep_result_t		decision;
	char const		*reason;
	char const		*reply_message;
	uint64_t		step;

	state_rcode = twostep_state_verify(&claims, state->vp_octets, state->vp_length,
					   inst->keys, inst->num_keys, time(NULL),
					   inst->challenge_lifetime, request->username->vp_strvalue);
	switch (state_rcode) {
	case TWOSTEP_STATE_OK:
		break;

	case TWOSTEP_STATE_EXPIRED:
		REDEBUG("State is older than %u seconds", inst->challenge_lifetime);
		twostep_decide(inst, request, TWOSTEP_RESULT_REJECT, "state-expired", claims.dn, NULL, inst->msg.state_invalid);
		twostep_wipe(&claims, sizeof(claims));
		return RLM_MODULE_REJECT;

	case TWOSTEP_STATE_ERROR:
		REDEBUG("Verifying the State failed: %s", twostep_state_strerror(state_rcode));
		twostep_decide(inst, request, TWOSTEP_RESULT_FAIL, "state-error", NULL, NULL, inst->msg.unavailable);
		return RLM_MODULE_FAIL;

	default:
		REDEBUG("State rejected: %s", twostep_state_strerror(state_rcode));
		twostep_decide(inst, request, TWOSTEP_RESULT_REJECT, "state-invalid", NULL, NULL, inst->msg.state_invalid);
		twostep_wipe(&claims, sizeof(claims));
		return RLM_MODULE_REJECT;
	}

	/* Each challenge takes one answer, right or wrong: a second one is refused. */
	switch (twostep_replay_mark(inst->answered, claims.nonce,
				    claims.issued + inst->challenge_lifetime, time(NULL))) {
	case TWOSTEP_REPLAY_FIRST:
		break;

	case TWOSTEP_REPLAY_SEEN:
		REDEBUG("State was answered before");
		twostep_decide(inst, request, TWOSTEP_RESULT_REJECT, "state-used", claims.dn, NULL, inst->msg.state_invalid);
		twostep_wipe(&claims, sizeof(claims));
		return RLM_MODULE_REJECT;

	case TWOSTEP_REPLAY_FULL:
		REDEBUG("The set of answered States is full (%u entries): raise state.answered_max",
			inst->answered_max);
		twostep_decide(inst, request, TWOSTEP_RESULT_FAIL, "answered-set-full", claims.dn, NULL, inst->msg.unavailable);
		twostep_wipe(&claims, sizeof(claims));
		return RLM_MODULE_FAIL;
	}

	if (claims.method != TWOSTEP_METHOD_TOTP || claims.seed_len == 0) {
		REDEBUG("State names a method this server does not support");
		twostep_decide(inst, request, TWOSTEP_RESULT_REJECT, "state-invalid", claims.dn, NULL, inst->msg.state_invalid);
		twostep_wipe(&claims, sizeof(claims));
		return RLM_MODULE_REJECT;
	}

	/* A code with an embedded NUL, or longer than any code, is malformed. */
	if (password->vp_length >= sizeof(code) || memchr(password->vp_strvalue, '\0', password->vp_length)) {
		otp_rcode = TWOSTEP_OTP_MALFORMED;
	} else {
		memcpy(code, password->vp_strvalue, password->vp_length);
		code[password->vp_length] = '\0';
		otp_rcode = twostep_totp_check(claims.seed, claims.seed_len, code, time(NULL),
					       inst->time_step, inst->digits, inst->drift, &step);
		twostep_wipe(code, sizeof(code));
	}

	switch (otp_rcode) {
	case TWOSTEP_OTP_MATCH:
		decision = TWOSTEP_RESULT_ACCEPT;
		reason = "code-accepted";
		reply_message = NULL;
		break;

	case TWOSTEP_OTP_MISMATCH:
		decision = TWOSTEP_RESULT_REJECT;
		reason = "code-invalid";
		reply_message = inst->msg.code_invalid;
		break;

	case TWOSTEP_OTP_MALFORMED:
		decision = TWOSTEP_RESULT_REJECT;
		reason = "code-malformed";
		reply_message = inst->msg.code_invalid;
		break;

	default:
		REDEBUG("Checking the code failed in liboath");
		decision = TWOSTEP_RESULT_FAIL;
		reason = "otp-error";
		reply_message = inst->msg.unavailable;
		break;
	}

	twostep_decide(inst, request, decision, reason, claims.dn, NULL, reply_message);
	twostep_wipe(&claims, sizeof(claims));
	return decision_rcode(decision);
}

