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
#include "challenge.h"
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

/** Turn the user's LDAP values into the inputs of the policy decision. Bad values are read strictly. */
static twostep_ldap_rcode_t read_user_inputs(rlm_twostep_t const *inst, REQUEST *request,
					     twostep_ldap_user_t const *user, twostep_policy_user_t *in)
{
	twostep_ldap_rcode_t	rcode;
	char			e164[TWOSTEP_PHONE_MAX + 1];

	memset(in, 0, sizeof(*in));
	in->has_totp = (user->totp_secret != NULL);
	in->has_phone = twostep_challenge_phone(inst, user->phone, e164, sizeof(e164));
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

/** Challenge a user for a code: by SMS when asked to, else with the app.
 *
 * The TOTP seed, when the user has one, goes into an SMS State too, so the
 * user can switch to the app, and serves as the fallback when SMS fails.
 */
static void challenge_user(rlm_twostep_t const *inst, REQUEST *request, char const *name,
			   twostep_ldap_user_t const *user, bool by_sms, twostep_challenge_t *out)
{
	uint8_t			seed[TWOSTEP_SEED_MAX];
	size_t			seed_len = sizeof(seed);
	twostep_subject_t	subject = { .name = name, .dn = user->dn };

	if (twostep_challenge_snapshot(inst, request, user, &subject.snapshot) < 0) {
		out->result = TWOSTEP_RESULT_FAIL;
		out->reason = "counters-invalid";
		out->reply = inst->msg.unavailable;
		return;
	}

	if (!user->totp_secret || twostep_challenge_seed(inst, request, user->dn, user->totp_secret,
							 seed, &seed_len) < 0) {
		seed_len = 0;
		if (!by_sms) {
			out->result = TWOSTEP_RESULT_FAIL;
			out->reason = "seed-invalid";
			out->reply = inst->msg.unavailable;
			return;
		}
	}

	if (by_sms) {
		twostep_challenge_sms(inst, request, &subject, user, seed, seed_len, out);
	} else {
		twostep_challenge_totp(inst, request, &subject, seed, seed_len, inst->msg.totp_challenge, out);
	}
	twostep_wipe(seed, sizeof(seed));
}

/*
 *	After a correct password: decide with the policy, then accept,
 *	challenge or reject.
 */
static twostep_result_t apply_policy(rlm_twostep_t const *inst, REQUEST *request, char const *name,
				     twostep_ldap_user_t const *user)
{
	twostep_policy_t	policy;
	twostep_policy_user_t	in;
	twostep_policy_result_t	result;
	twostep_challenge_t	out;
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
		/* An SMS user whose number cannot be used gets that reason, rather than "not set up". */
		if (in.method == TWOSTEP_POLICY_METHOD_SMS && user->phone && !in.has_phone) {
			REDEBUG("%s: %s is not a valid phone number (%zu characters)", user->dn, inst->attrs.phone,
				strlen(user->phone));
			twostep_decide(inst, request, TWOSTEP_RESULT_REJECT, "phone-invalid", user->dn, by,
				       inst->msg.phone_invalid);
			return TWOSTEP_RESULT_REJECT;
		}

		/* No in-band enrollment yet: the user asks the helpdesk, whatever the deadline. */
		twostep_decide(inst, request, TWOSTEP_RESULT_REJECT, reason, user->dn, by, inst->msg.not_enrolled);
		return TWOSTEP_RESULT_REJECT;

	case TWOSTEP_DECISION_REJECT:
		twostep_decide(inst, request, TWOSTEP_RESULT_REJECT, reason, user->dn, by, inst->msg.no_method);
		return TWOSTEP_RESULT_REJECT;

	case TWOSTEP_DECISION_CHALLENGE:
		break;
	}

	challenge_user(inst, request, name, user, result.method == TWOSTEP_POLICY_METHOD_SMS, &out);
	twostep_decide(inst, request, out.result, out.reason, user->dn, by, out.reply);
	return out.result;
}

/** Send the bind a known user would cost, to a DN that does not exist. Its result is ignored. */
static void unknown_user_bind(rlm_twostep_t const *inst, REQUEST *request, VALUE_PAIR *password)
{
	char *dn = talloc_typed_asprintf(request, "cn=rlm-twostep-unknown-user,%s", inst->ldap.base_dn);

	(void) twostep_ldap_check_password(inst, request, dn, password->vp_strvalue, password->vp_length);
	talloc_free(dn);
}

/*
 *	Round 1: check the password, then challenge for the code.
 */
rlm_rcode_t twostep_round_password(rlm_twostep_t const *inst, REQUEST *request, char const *name,
				   VALUE_PAIR *password)
{
	twostep_ldap_user_t	user;
	twostep_ldap_rcode_t	rcode;
	twostep_result_t	decision;
	int64_t			locked_until;

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
		/*
		 *	The same LDAP work as for a known user: one bind, bound
		 *	to fail, so an unknown name cannot be distinguished from a wrong password.
		 */
		unknown_user_bind(inst, request, password);
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

	/* A locked-out user gets the reply of a wrong password: no hint that the password was right. */
	if (user.locked_until && twostep_policy_parse_time(&locked_until, user.locked_until) == 0 &&
	    locked_until > time(NULL)) {
		REDEBUG("%s is locked out of the second factor until %s", user.dn, user.locked_until);
		decision = TWOSTEP_RESULT_REJECT;
		twostep_decide(inst, request, decision, "locked-out", user.dn, user.dn, inst->msg.login_failed);
		goto finish;
	}

	decision = apply_policy(inst, request, name, &user);

finish:
	if (user.totp_secret) twostep_wipe(user.totp_secret, strlen(user.totp_secret));
	talloc_free(user.totp_secret);
	talloc_free(user.method);
	talloc_free(user.exempt);
	talloc_free(user.exempt_until);
	talloc_free(user.phone);
	talloc_free(user.member_of);
	talloc_free(user.sms_sent);
	talloc_free(user.last_step);
	talloc_free(user.fail_count);
	talloc_free(user.locked_until);
	talloc_free(user.last_challenge);
	talloc_free(user.dn);
	return decision_rcode(decision);
}

/** Tell whether the user's reply is a keyword, ignoring case and surrounding spaces. */
static bool is_word(VALUE_PAIR const *reply, char const *word)
{
	char const	*p = reply->vp_strvalue, *end = reply->vp_strvalue + reply->vp_length;
	size_t		len;

	if (!word || !*word) return false;
	while (p < end && isspace((uint8_t) *p)) p++;
	while (end > p && isspace((uint8_t) end[-1])) end--;
	len = strlen(word);
	return ((size_t) (end - p) == len) && (strncasecmp(p, word, len) == 0);
}

/*
 *	Round 2, the user asked for a (new) SMS code: read the entry again for
 *	the phone and the send times, check SMS is allowed, and send.
 */
static twostep_result_t new_sms_challenge(rlm_twostep_t const *inst, REQUEST *request,
					  twostep_state_claims_t const *claims, char const *word_reason)
{
	twostep_ldap_user_t	user;
	twostep_policy_t	policy;
	twostep_challenge_t	out;
	twostep_subject_t	subject = { .name = claims->user, .dn = claims->dn };
	char			e164[TWOSTEP_PHONE_MAX + 1];
	int64_t			locked_until;

	switch (twostep_ldap_read_user(inst, request, claims->dn, &user)) {
	case TWOSTEP_LDAP_OK:
		break;

	case TWOSTEP_LDAP_NOT_FOUND:
		twostep_decide(inst, request, TWOSTEP_RESULT_REJECT, "user-not-found", claims->dn, NULL,
			       inst->msg.login_failed);
		return TWOSTEP_RESULT_REJECT;

	default:
		twostep_decide(inst, request, TWOSTEP_RESULT_FAIL, "ldap-unavailable", claims->dn, NULL,
			       inst->msg.unavailable);
		return TWOSTEP_RESULT_FAIL;
	}

	if (twostep_dir_policy(inst, request, claims->dn, &policy) != TWOSTEP_LDAP_OK) {
		twostep_decide(inst, request, TWOSTEP_RESULT_FAIL, "ldap-unavailable", claims->dn, NULL,
			       inst->msg.unavailable);
		return TWOSTEP_RESULT_FAIL;
	}
	if (!(policy.allowed_methods & TWOSTEP_POLICY_METHOD_SMS) || !user.method ||
	    (twostep_policy_parse_method(user.method) != TWOSTEP_POLICY_METHOD_SMS) ||
	    !twostep_challenge_phone(inst, user.phone, e164, sizeof(e164))) {
		REDEBUG("%s asked for an SMS code, but is not enrolled in SMS or SMS is not allowed", claims->dn);
		twostep_decide(inst, request, TWOSTEP_RESULT_REJECT, "sms-not-enrolled", claims->dn,
			       policy.source_dn, inst->msg.phone_invalid);
		return TWOSTEP_RESULT_REJECT;
	}

	if (user.locked_until && twostep_policy_parse_time(&locked_until, user.locked_until) == 0 &&
	    locked_until > time(NULL)) {
		twostep_decide(inst, request, TWOSTEP_RESULT_REJECT, "locked-out", claims->dn, claims->dn, inst->msg.locked);
		return TWOSTEP_RESULT_REJECT;
	}
	if (twostep_challenge_snapshot(inst, request, &user, &subject.snapshot) < 0) {
		twostep_decide(inst, request, TWOSTEP_RESULT_FAIL, "counters-invalid", claims->dn, NULL,
			       inst->msg.unavailable);
		return TWOSTEP_RESULT_FAIL;
	}

	twostep_challenge_sms(inst, request, &subject, &user, claims->seed, claims->seed_len, &out);
	RDEBUG2("New SMS challenge after \"%s\"", word_reason);

	/* Too early for a new code: the code already sent stays valid, under a new State. */
	if (out.result == TWOSTEP_RESULT_REJECT && claims->method == TWOSTEP_METHOD_SMS &&
	    strncmp(out.reason, "sms-limit-", 10) == 0) {
		char const *message = talloc_typed_asprintf(request, "%s %s", out.reply, inst->msg.sms_keep_code);

		RDEBUG2("No new SMS code (%s): asking again for the code already sent", out.reason);
		twostep_challenge_sms_again(inst, request, &subject, claims, message, &out);
	}
	twostep_decide(inst, request, out.result, out.reason, claims->dn, NULL, out.reply);
	return out.result;
}

/** Check an SMS code against the hash in the State, under every configured key (keys rotate). */
static twostep_otp_rcode_t sms_code_check(rlm_twostep_t const *inst, twostep_state_claims_t const *claims,
					  char const *code)
{
	uint8_t	hash[TWOSTEP_CODE_HASH_LEN];
	size_t	len = strlen(code);
	bool	match = false;

	if (len != inst->sms.code_digits) return TWOSTEP_OTP_MALFORMED;
	for (size_t i = 0; i < len; i++) if (!isdigit((uint8_t) code[i])) return TWOSTEP_OTP_MALFORMED;

	for (size_t i = 0; i < inst->num_keys; i++) {
		if (twostep_sms_code_hash(hash, inst->keys[i].key, sizeof(inst->keys[i].key), claims->dn, code) < 0) {
			return TWOSTEP_OTP_ERROR;
		}
		if (twostep_const_equal(hash, sizeof(hash), claims->code_hash, claims->code_hash_len)) match = true;
	}
	twostep_wipe(hash, sizeof(hash));
	return match ? TWOSTEP_OTP_MATCH : TWOSTEP_OTP_MISMATCH;
}

/** Add a modification of one attribute to a list: delete the old value when there was one, add the new. */
static void cas_value(LDAPMod *mods, int *num, char **values, char const *attr, char const *old_value,
		      char const *new_value)
{
	if (old_value) {
		values[0] = (char *) (uintptr_t) old_value;
		values[1] = NULL;
		mods[*num] = (LDAPMod) { .mod_op = LDAP_MOD_DELETE, .mod_type = (char *) (uintptr_t) attr,
					 .mod_values = values };
		(*num)++;
	}
	values[2] = (char *) (uintptr_t) new_value;
	values[3] = NULL;
	mods[*num] = (LDAPMod) { .mod_op = LDAP_MOD_ADD, .mod_type = (char *) (uintptr_t) attr,
				 .mod_values = values + 2 };
	(*num)++;
}

/** Record a response to a challenge on the user's entry with one compare-and-swap modify.
 *
 * The modify deletes the counter values round 1 read (the snapshot in the
 * State) and adds new ones, under an assertion that the user is not locked
 * out and that the counters absent in round 1 are still absent. It fails,
 * changing nothing, when any server recorded another answer in between, so
 * each challenge is answered once across a cluster, and a TOTP step is
 * accepted once.
 *
 * @param[in] inst		Module instance.
 * @param[in] request		Current request.
 * @param[in] claims		The State's claims (DN, nonce, snapshot).
 * @param[in] correct		The code was right.
 * @param[in] step		The TOTP step accepted, or 0 (SMS, or a wrong code).
 * @param[out] locked_now	This wrong answer started a lock-out.
 * @return TWOSTEP_LDAP_OK, TWOSTEP_LDAP_CONFLICT, or a failure (fail closed).
 */
static twostep_ldap_rcode_t record_answer(rlm_twostep_t const *inst, REQUEST *request,
					  twostep_state_claims_t const *claims, bool correct, uint64_t step,
					  bool *locked_now)
{
	twostep_ldap_attrs_t const	*a = &inst->attrs;
	twostep_state_snapshot_t const	*snap = &claims->snapshot;
	LDAPMod				mods[8], *mod_list[9];
	char				*values[6][4];
	char				nonce[2 * TWOSTEP_STATE_NONCE_LEN + 1], old_nonce[2 * TWOSTEP_STATE_NONCE_LEN + 1];
	char				step_str[24], old_step[24], count[16], old_count[16], until[32], now_str[32];
	char const			*reason_text;
	char				*assertion;
	int				num = 0, v = 0;
	uint32_t			new_count;
	time_t				now = time(NULL), end;
	struct tm			tm;

	*locked_now = false;
	gmtime_r(&now, &tm);
	strftime(now_str, sizeof(now_str), "%Y%m%d%H%M%SZ", &tm);
	assertion = talloc_typed_asprintf(request, "(&(!(%s>=%s))", a->locked_until, now_str);

	/* The nonce changes on every response, so a copy of this State sent to another server fails. */
	fr_bin2hex(nonce, claims->nonce, TWOSTEP_STATE_NONCE_LEN);
	if (snap->flags & TWOSTEP_SNAPSHOT_LAST_NONCE) {
		fr_bin2hex(old_nonce, snap->last_nonce, TWOSTEP_STATE_NONCE_LEN);
	} else {
		assertion = talloc_asprintf_append(assertion, "(!(%s=*))", a->last_challenge);
	}
	cas_value(mods, &num, values[v++], a->last_challenge,
		  (snap->flags & TWOSTEP_SNAPSHOT_LAST_NONCE) ? old_nonce : NULL, nonce);

	if (correct && step) {
		snprintf(step_str, sizeof(step_str), "%" PRIu64, step);
		snprintf(old_step, sizeof(old_step), "%" PRIu64, snap->last_step);
		if (!(snap->flags & TWOSTEP_SNAPSHOT_LAST_STEP)) {
			assertion = talloc_asprintf_append(assertion, "(!(%s=*))", a->last_step);
		}
		cas_value(mods, &num, values[v++], a->last_step,
			  (snap->flags & TWOSTEP_SNAPSHOT_LAST_STEP) ? old_step : NULL, step_str);
	}

	new_count = correct ? 0 : snap->fail_count + 1;
	if (!correct && new_count >= inst->guard.max_failures) {
		/* Lock out, and start counting again once the lock-out ends. */
		*locked_now = true;
		new_count = 0;
		end = now + inst->guard.lockout_duration;
		gmtime_r(&end, &tm);
		strftime(until, sizeof(until), "%Y%m%d%H%M%SZ", &tm);
		reason_text = talloc_typed_asprintf(request, "%u wrong codes in a row, last at %s",
						    inst->guard.max_failures, now_str);
		values[v][0] = until;
		values[v][1] = NULL;
		mods[num++] = (LDAPMod) { .mod_op = LDAP_MOD_REPLACE, .mod_type = (char *) (uintptr_t) a->locked_until,
					  .mod_values = values[v++] };
		values[v][0] = (char *) (uintptr_t) reason_text;
		values[v][1] = NULL;
		mods[num++] = (LDAPMod) { .mod_op = LDAP_MOD_REPLACE, .mod_type = (char *) (uintptr_t) a->lock_reason,
					  .mod_values = values[v++] };
		INFO("rlm_twostep (%s): (%u) locked out %s until %s: %s", inst->name, request->number, claims->dn,
		     until, reason_text);
	}
	if ((snap->flags & TWOSTEP_SNAPSHOT_FAIL_COUNT) ? (new_count != snap->fail_count) : (new_count != 0)) {
		snprintf(count, sizeof(count), "%u", new_count);
		snprintf(old_count, sizeof(old_count), "%u", snap->fail_count);
		if (!(snap->flags & TWOSTEP_SNAPSHOT_FAIL_COUNT)) {
			assertion = talloc_asprintf_append(assertion, "(!(%s=*))", a->fail_count);
		}
		cas_value(mods, &num, values[v++], a->fail_count,
			  (snap->flags & TWOSTEP_SNAPSHOT_FAIL_COUNT) ? old_count : NULL, count);
	}
	assertion = talloc_asprintf_append(assertion, ")");

	for (int i = 0; i < num; i++) mod_list[i] = &mods[i];
	mod_list[num] = NULL;
	return twostep_ldap_modify(inst, request, claims->dn, mod_list, assertion);
}

/*
 *	Round 2: verify the State, then the code.
 */
rlm_rcode_t twostep_round_code(rlm_twostep_t const *inst, REQUEST *request, char const *name,
			       VALUE_PAIR *state, VALUE_PAIR *password)
{
	twostep_state_claims_t	claims;
	twostep_state_rcode_t	state_rcode;
	twostep_otp_rcode_t	otp_rcode;
	twostep_challenge_t	out;
	char			code[16];
	twostep_result_t	decision;
	char const		*reason;
	char const		*reply_message;
	uint64_t		step = 0;
	time_t			now = time(NULL);
	uint32_t		lifetime, max_lifetime;
	twostep_subject_t	subject;
	bool			locked_now = false;

	/* Each method has its own lifetime: open with the longer one, then check the State's own. */
	max_lifetime = inst->challenge_lifetime > inst->sms.code_lifetime ? inst->challenge_lifetime :
									    inst->sms.code_lifetime;
	state_rcode = twostep_state_verify(&claims, state->vp_octets, state->vp_length,
					   inst->keys, inst->num_keys, now,
					   max_lifetime, name);
	lifetime = (claims.method == TWOSTEP_METHOD_SMS) ? inst->sms.code_lifetime : inst->challenge_lifetime;
	if (state_rcode == TWOSTEP_STATE_OK && now - claims.issued > (int64_t) lifetime) {
		state_rcode = TWOSTEP_STATE_EXPIRED;
	}
	switch (state_rcode) {
	case TWOSTEP_STATE_OK:
		break;

	case TWOSTEP_STATE_EXPIRED:
		REDEBUG("State is older than %u seconds", lifetime);
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

	/* Each challenge takes one response: a right or wrong code, or one request for a new code. */
	switch (twostep_replay_mark(inst->answered, claims.nonce, claims.issued + lifetime, now)) {
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

	subject = (twostep_subject_t) { .name = claims.user, .dn = claims.dn, .snapshot = claims.snapshot };

	if ((claims.method == TWOSTEP_METHOD_TOTP && !claims.seed_len) ||
	    (claims.method == TWOSTEP_METHOD_SMS && !claims.code_hash_len) ||
	    !(claims.snapshot.flags & TWOSTEP_SNAPSHOT_READ)) {
		REDEBUG("State carries no seed or code hash for its method");
		twostep_decide(inst, request, TWOSTEP_RESULT_REJECT, "state-invalid", claims.dn, NULL, inst->msg.state_invalid);
		twostep_wipe(&claims, sizeof(claims));
		return RLM_MODULE_REJECT;
	}

	/* Keywords: a new SMS code, or a switch of method. */
	if (claims.method == TWOSTEP_METHOD_SMS &&
	    (password->vp_length == 0 || is_word(password, inst->sms.resend_word))) {
		decision = new_sms_challenge(inst, request, &claims, "resend");
		twostep_wipe(&claims, sizeof(claims));
		return decision_rcode(decision);
	}
	if (claims.method == TWOSTEP_METHOD_TOTP && is_word(password, inst->sms.sms_word)) {
		decision = new_sms_challenge(inst, request, &claims, "switch to SMS");
		twostep_wipe(&claims, sizeof(claims));
		return decision_rcode(decision);
	}
	if (claims.method == TWOSTEP_METHOD_SMS && is_word(password, inst->sms.app_word)) {
		if (!claims.seed_len) {
			twostep_decide(inst, request, TWOSTEP_RESULT_REJECT, "no-app", claims.dn, NULL, inst->msg.no_app);
			twostep_wipe(&claims, sizeof(claims));
			return RLM_MODULE_REJECT;
		}
		twostep_challenge_totp(inst, request, &subject, claims.seed, claims.seed_len,
				       inst->msg.totp_challenge, &out);
		twostep_decide(inst, request, out.result, out.result == TWOSTEP_RESULT_CHALLENGE ? "switch-to-app" :
			       out.reason, claims.dn, NULL, out.reply);
		twostep_wipe(&claims, sizeof(claims));
		return decision_rcode(out.result);
	}

	/* A code with an embedded NUL, or longer than any code, is malformed. */
	if (password->vp_length >= sizeof(code) || memchr(password->vp_strvalue, '\0', password->vp_length)) {
		otp_rcode = TWOSTEP_OTP_MALFORMED;
	} else {
		memcpy(code, password->vp_strvalue, password->vp_length);
		code[password->vp_length] = '\0';
		if (claims.method == TWOSTEP_METHOD_SMS) {
			otp_rcode = sms_code_check(inst, &claims, code);
		} else {
			otp_rcode = twostep_totp_check(claims.seed, claims.seed_len, code, now,
						       inst->time_step, inst->digits, inst->drift, &step);
		}
		twostep_wipe(code, sizeof(code));
	}

	/* The right code of a time step already used: ask again, for the next code. */
	if (otp_rcode == TWOSTEP_OTP_MATCH && claims.method == TWOSTEP_METHOD_TOTP &&
	    (claims.snapshot.flags & TWOSTEP_SNAPSHOT_LAST_STEP) && step <= claims.snapshot.last_step) {
		REDEBUG("Time step %" PRIu64 " was already used (last accepted %" PRIu64 ")", step,
			claims.snapshot.last_step);
		twostep_challenge_totp(inst, request, &subject, claims.seed, claims.seed_len,
				       inst->msg.code_reused, &out);
		twostep_decide(inst, request, out.result, out.result == TWOSTEP_RESULT_CHALLENGE ? "code-reused" :
			       out.reason, claims.dn, NULL, out.reply);
		twostep_wipe(&claims, sizeof(claims));
		return decision_rcode(out.result);
	}

	/* Record the response on the entry. A State already used at another server fails here. */
	if (otp_rcode == TWOSTEP_OTP_MATCH || otp_rcode == TWOSTEP_OTP_MISMATCH || otp_rcode == TWOSTEP_OTP_MALFORMED) {
		bool correct = (otp_rcode == TWOSTEP_OTP_MATCH);

		switch (record_answer(inst, request, &claims, correct,
				      (correct && claims.method == TWOSTEP_METHOD_TOTP) ? step : 0, &locked_now)) {
		case TWOSTEP_LDAP_OK:
			break;

		case TWOSTEP_LDAP_CONFLICT:
			REDEBUG("Another answer was recorded for %s since round 1, or the user is locked out", claims.dn);
			twostep_decide(inst, request, TWOSTEP_RESULT_REJECT, "state-conflict", claims.dn, NULL,
				       inst->msg.state_invalid);
			twostep_wipe(&claims, sizeof(claims));
			return RLM_MODULE_REJECT;

		case TWOSTEP_LDAP_NOT_FOUND:
			twostep_decide(inst, request, TWOSTEP_RESULT_REJECT, "user-not-found", claims.dn, NULL,
				       inst->msg.login_failed);
			twostep_wipe(&claims, sizeof(claims));
			return RLM_MODULE_REJECT;

		case TWOSTEP_LDAP_UNAVAILABLE:
			twostep_decide(inst, request, TWOSTEP_RESULT_FAIL, "ldap-unavailable", claims.dn, NULL,
				       inst->msg.unavailable);
			twostep_wipe(&claims, sizeof(claims));
			return RLM_MODULE_FAIL;

		default:
			/* Access denied, schema violation...: the directory's configuration needs a look. */
			twostep_decide(inst, request, TWOSTEP_RESULT_FAIL, "ldap-error", claims.dn, NULL,
				       inst->msg.unavailable);
			twostep_wipe(&claims, sizeof(claims));
			return RLM_MODULE_FAIL;
		}
	}

	switch (otp_rcode) {
	case TWOSTEP_OTP_MATCH:
		decision = TWOSTEP_RESULT_ACCEPT;
		reason = "code-accepted";
		reply_message = NULL;
		break;

	case TWOSTEP_OTP_MISMATCH:
		decision = TWOSTEP_RESULT_REJECT;
		reason = locked_now ? "code-invalid-locked" : "code-invalid";
		reply_message = locked_now ? inst->msg.locked : inst->msg.code_invalid;
		break;

	case TWOSTEP_OTP_MALFORMED:
		decision = TWOSTEP_RESULT_REJECT;
		reason = locked_now ? "code-malformed-locked" : "code-malformed";
		reply_message = locked_now ? inst->msg.locked : inst->msg.code_invalid;
		break;

	default:
		REDEBUG("Checking the code failed");
		decision = TWOSTEP_RESULT_FAIL;
		reason = "otp-error";
		reply_message = inst->msg.unavailable;
		break;
	}

	twostep_decide(inst, request, decision, reason, claims.dn, NULL, reply_message);
	twostep_wipe(&claims, sizeof(claims));
	return decision_rcode(decision);
}
