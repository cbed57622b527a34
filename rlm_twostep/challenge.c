/*
 * challenge.c: building the Access-Challenge for a TOTP or an SMS code.
 *
 * A TOTP challenge only seals the seed into a State. An SMS challenge first
 * checks the number and the send limits, then records the send on the
 * user's entry with a compare-and-swap modify, so the per-user limits hold
 * across every radiusd sharing the directory. It then sends the code and
 * seals a keyed hash of it into the State. The code itself is never stored
 * or logged.
 */
RCSID("$Id$")

#include <ctype.h>

#include "challenge.h"
#include "sms.h"
#include "otp.h"
#include "crypto.h"
#include "escape.h"

/** Replace the first "{name}" in a message template with value, under the request. */
static char const *fill(REQUEST *request, char const *tmpl, char const *name, char const *value)
{
	char		placeholder[32];
	char const	*at;

	snprintf(placeholder, sizeof(placeholder), "{%s}", name);
	at = strstr(tmpl, placeholder);
	if (!at) return tmpl;
	return talloc_typed_asprintf(request, "%.*s%s%s", (int) (at - tmpl), tmpl, value, at + strlen(placeholder));
}

/** Seal the claims into a State and make the reply an Access-Challenge. */
static void issue_state(rlm_twostep_t const *inst, REQUEST *request, twostep_subject_t const *subject,
			twostep_state_claims_t *claims, char const *reason, char const *message,
			twostep_challenge_t *out)
{
	uint8_t			token[TWOSTEP_STATE_MAX_LEN];
	size_t			token_len = 0;
	twostep_state_rcode_t	rcode;
	VALUE_PAIR		*vp;

	out->result = TWOSTEP_RESULT_FAIL;
	out->reply = inst->msg.unavailable;

	if (!claims->issued) claims->issued = time(NULL);
	claims->snapshot = subject->snapshot;
	if ((strlcpy(claims->user, subject->name, sizeof(claims->user)) >= sizeof(claims->user)) ||
	    (strlcpy(claims->dn, subject->dn, sizeof(claims->dn)) >= sizeof(claims->dn))) {
		rcode = TWOSTEP_STATE_TOO_LONG;
	} else {
		rcode = twostep_state_create(token, &token_len, &inst->keys[0], claims);
	}
	if (rcode == TWOSTEP_STATE_TOO_LONG) {
		REDEBUG("User-Name and DN are too long to fit in one State attribute (253 bytes)");
		out->reason = "state-too-long";
		return;
	}
	if (rcode != TWOSTEP_STATE_OK) {
		REDEBUG("Creating the State failed: %s", twostep_state_strerror(rcode));
		out->reason = "state-error";
		return;
	}

	vp = fr_pair_afrom_num(request->reply, PW_STATE, 0);
	if (!vp) {
		out->reason = "state-error";
		return;
	}
	fr_pair_value_memcpy(vp, token, token_len);
	fr_pair_replace(&request->reply->vps, vp);
	request->reply->code = PW_CODE_ACCESS_CHALLENGE;

	out->result = TWOSTEP_RESULT_CHALLENGE;
	out->reason = reason;
	out->reply = message;
}

/** Parse a decimal counter that fits max. @return 0, or -1 when it is not a plain decimal number. */
static int parse_counter(uint64_t *out, char const *value, uint64_t max)
{
	char		*end;
	unsigned long long number;

	if (!value || !isdigit((uint8_t) value[0]) || (value[0] == '0' && value[1])) return -1;
	errno = 0;
	number = strtoull(value, &end, 10);
	if (errno || *end || number > max) return -1;
	*out = number;
	return 0;
}

/** Read the entry's replay and failure counters into a snapshot for the State.
 *
 * @return 0, or -1 when a value is malformed (logged): no answer could then
 *	   be recorded, so the caller fails the sign-in instead of challenging.
 */
int twostep_challenge_snapshot(rlm_twostep_t const *inst, REQUEST *request, twostep_ldap_user_t const *user,
			       twostep_state_snapshot_t *snapshot)
{
	uint64_t value;

	memset(snapshot, 0, sizeof(*snapshot));
	snapshot->flags = TWOSTEP_SNAPSHOT_READ;
	if (user->last_step) {
		if (parse_counter(&snapshot->last_step, user->last_step, UINT64_MAX) < 0) {
			REDEBUG("%s: %s \"%s\" is not a number; fix or delete it", user->dn, inst->attrs.last_step,
				user->last_step);
			return -1;
		}
		snapshot->flags |= TWOSTEP_SNAPSHOT_LAST_STEP;
	}
	if (user->fail_count) {
		if (parse_counter(&value, user->fail_count, UINT32_MAX) < 0) {
			REDEBUG("%s: %s \"%s\" is not a number; fix or delete it", user->dn, inst->attrs.fail_count,
				user->fail_count);
			return -1;
		}
		snapshot->fail_count = (uint32_t) value;
		snapshot->flags |= TWOSTEP_SNAPSHOT_FAIL_COUNT;
	}
	if (user->last_challenge) {
		if (strlen(user->last_challenge) != 2 * TWOSTEP_STATE_NONCE_LEN ||
		    fr_hex2bin(snapshot->last_nonce, sizeof(snapshot->last_nonce), user->last_challenge,
			       strlen(user->last_challenge)) != TWOSTEP_STATE_NONCE_LEN) {
			REDEBUG("%s: %s \"%s\" is not %d hex digits; fix or delete it", user->dn,
				inst->attrs.last_challenge, user->last_challenge, 2 * TWOSTEP_STATE_NONCE_LEN);
			return -1;
		}
		snapshot->flags |= TWOSTEP_SNAPSHOT_LAST_NONCE;
	}
	return 0;
}

/** Decode a user's base32 TOTP seed. @return 0, or -1 when it is not valid base32 (logged). */
int twostep_challenge_seed(UNUSED rlm_twostep_t const *inst, REQUEST *request, char const *dn, char const *secret,
			   uint8_t *seed, size_t *seed_len)
{
	if (twostep_base32_decode(seed, seed_len, secret) < 0) {
		REDEBUG("The TOTP seed of %s is not valid base32", dn);
		*seed_len = 0;
		return -1;
	}
	return 0;
}

/** Normalise a user's phone number to E.164 with the configured default country code. */
bool twostep_challenge_phone(rlm_twostep_t const *inst, char const *phone, char *e164, size_t e164_len)
{
	if (!phone) return false;
	return twostep_phone_normalise(e164, e164_len, phone, inst->sms.default_cc) == 0;
}

/** Challenge for the code of the user's authenticator app.
 *
 * @param[in] inst	Module instance.
 * @param[in] request	Current request.
 * @param[in] subject	The user: name, DN and counters.
 * @param[in] seed	Raw TOTP seed.
 * @param[in] seed_len	Its length.
 * @param[in] message	Reply-Message of the challenge.
 * @param[out] out	What happened.
 */
void twostep_challenge_totp(rlm_twostep_t const *inst, REQUEST *request, twostep_subject_t const *subject,
			    uint8_t const *seed, size_t seed_len, char const *message, twostep_challenge_t *out)
{
	twostep_state_claims_t claims;

	memset(&claims, 0, sizeof(claims));
	claims.method = TWOSTEP_METHOD_TOTP;
	memcpy(claims.seed, seed, seed_len);
	claims.seed_len = seed_len;

	issue_state(inst, request, subject, &claims, "challenge-sent", message, out);
	twostep_wipe(&claims, sizeof(claims));
}

/** Format the current time as a GeneralizedTime with milliseconds, so two sends in one second differ. */
static void format_now(char *out, size_t outlen, time_t now)
{
	struct timeval	tv;
	struct tm	tm;
	char		seconds[32];

	gettimeofday(&tv, NULL);
	if (tv.tv_sec != now) tv.tv_usec = 0;
	gmtime_r(&now, &tm);
	strftime(seconds, sizeof(seconds), "%Y%m%d%H%M%S", &tm);
	snprintf(out, outlen, "%.14s.%03dZ", seconds, (int) (tv.tv_usec / 1000) % 1000);
}

/** Say how long to wait, for a Reply-Message: "40 seconds" or "12 minutes". */
static char const *wait_text(REQUEST *request, time_t seconds)
{
	if (seconds <= 1) return "1 second";
	if (seconds < 120) return talloc_typed_asprintf(request, "%ld seconds", (long) seconds);
	return talloc_typed_asprintf(request, "%ld minutes", (long) ((seconds + 59) / 60));
}

/** Check the per-user limits and record this send on the user's entry.
 *
 * The modify deletes send times older than an hour and adds now, under an
 * assertion that no send newer than the newest one read exists. If another
 * radiusd sent a code in the meantime, nothing changes, and this send counts
 * as over the limit.
 *
 * @return 0 to go ahead, 1 when a limit is reached (reason and retry_at set), -1 on an LDAP failure.
 */
static int sms_reserve(rlm_twostep_t const *inst, REQUEST *request, twostep_ldap_user_t const *user, time_t now,
		       char const **reason, time_t *retry_at)
{
	twostep_sms_conf_t const	*sms = &inst->sms;
	size_t				num = talloc_array_length(user->sms_sent), num_stale = 0, num_recent = 0;
	char const			**stale = talloc_zero_array(request, char const *, num + 1);
	int64_t				newest = 0, oldest_recent = 0;
	char const			*newest_value = NULL;
	char				now_str[32], *assertion = NULL;
	char				*add_values[2] = { now_str, NULL };
	LDAPMod				del = { .mod_op = LDAP_MOD_DELETE }, add = { .mod_op = LDAP_MOD_ADD };
	LDAPMod				*mods[3] = { NULL, NULL, NULL };
	int				i = 0;

	for (size_t j = 0; j < num; j++) {
		int64_t when;

		if (!user->sms_sent[j] || twostep_policy_parse_time(&when, user->sms_sent[j]) < 0) {
			if (user->sms_sent[j]) stale[num_stale++] = user->sms_sent[j];
			continue;
		}
		if (!newest_value || when > newest || (when == newest && strcmp(user->sms_sent[j], newest_value) > 0)) {
			newest = when;
			newest_value = user->sms_sent[j];
		}
		if (when <= now - 3600) {
			stale[num_stale++] = user->sms_sent[j];
			continue;
		}
		num_recent++;
		if (!oldest_recent || when < oldest_recent) oldest_recent = when;
	}

	if (newest && now < newest + (int64_t) sms->min_interval) {
		*reason = "sms-limit-interval";
		*retry_at = newest + sms->min_interval;
		return 1;
	}
	if (num_recent >= sms->max_per_hour) {
		*reason = "sms-limit-hourly";
		*retry_at = oldest_recent + 3600;
		return 1;
	}

	format_now(now_str, sizeof(now_str), now);
	if (newest_value) {
		/* No value later than the newest one read: (!(&(attr>=newest)(!(attr=newest)))). */
		char escaped[128];

		if (twostep_ldap_escape_filter(escaped, sizeof(escaped), newest_value) < 0) return -1;
		assertion = talloc_typed_asprintf(request, "(!(&(%s>=%s)(!(%s=%s))))", sms->sent_attr, escaped,
						  sms->sent_attr, escaped);
	} else if (num == 0) {
		assertion = talloc_typed_asprintf(request, "(!(%s=*))", sms->sent_attr);
	}
	if (num_stale) {
		del.mod_type = (char *) (uintptr_t) sms->sent_attr;
		del.mod_values = (char **) (uintptr_t) stale;
		mods[i++] = &del;
	}
	add.mod_type = (char *) (uintptr_t) sms->sent_attr;
	add.mod_values = add_values;
	mods[i++] = &add;

	switch (twostep_ldap_modify(inst, request, user->dn, mods, assertion)) {
	case TWOSTEP_LDAP_OK:
		return 0;

	case TWOSTEP_LDAP_CONFLICT:
		*reason = "sms-limit-concurrent";
		*retry_at = now + sms->min_interval;
		return 1;

	default:
		return -1;
	}
}

/** Challenge again for the SMS code already sent, when a new one may not be sent yet.
 *
 * The new State keeps the code hash and the issue time of the old one, so
 * the code does not live longer than it would have.
 *
 * @param[in] inst	Module instance.
 * @param[in] request	Current request.
 * @param[in] subject	The user: name, DN and counters.
 * @param[in] old	Claims of the State just answered with "resend".
 * @param[in] message	Reply-Message of the new challenge.
 * @param[out] out	What happened.
 */
void twostep_challenge_sms_again(rlm_twostep_t const *inst, REQUEST *request, twostep_subject_t const *subject,
				 twostep_state_claims_t const *old, char const *message, twostep_challenge_t *out)
{
	twostep_state_claims_t claims;

	memset(&claims, 0, sizeof(claims));
	claims.method = TWOSTEP_METHOD_SMS;
	claims.issued = old->issued;
	memcpy(claims.seed, old->seed, old->seed_len);
	claims.seed_len = old->seed_len;
	memcpy(claims.code_hash, old->code_hash, old->code_hash_len);
	claims.code_hash_len = old->code_hash_len;

	issue_state(inst, request, subject, &claims, "sms-resend-refused", message, out);
	twostep_wipe(&claims, sizeof(claims));
}

/** Challenge for a code sent by SMS.
 *
 * When every gateway fails and the user also has a TOTP seed, the user is
 * asked for the app's code instead, and the Reply-Message gives the reason.
 *
 * @param[in] inst	Module instance.
 * @param[in] request	Current request.
 * @param[in] subject	The user: name, DN and counters.
 * @param[in] user	The user's entry (DN, phone, recent send times).
 * @param[in] seed	Raw TOTP seed, carried so the user can switch to the app, or NULL.
 * @param[in] seed_len	Its length, 0 for none.
 * @param[out] out	What happened.
 */
void twostep_challenge_sms(rlm_twostep_t const *inst, REQUEST *request, twostep_subject_t const *subject,
			   twostep_ldap_user_t const *user, uint8_t const *seed, size_t seed_len,
			   twostep_challenge_t *out)
{
	twostep_sms_conf_t const	*sms = &inst->sms;
	twostep_state_claims_t		claims;
	char				e164[TWOSTEP_PHONE_MAX + 1], masked[64], code[TWOSTEP_CODE_MAX + 1];
	time_t				now = time(NULL), retry_at = 0;
	char const			*reason = NULL;

	out->result = TWOSTEP_RESULT_REJECT;

	if (sms->num_gateways == 0) {
		if (seed_len) {
			twostep_challenge_totp(inst, request, subject, seed, seed_len, inst->msg.totp_challenge, out);
			if (out->result == TWOSTEP_RESULT_CHALLENGE) out->reason = "sms-unavailable-totp";
			return;
		}
		out->reason = "sms-unavailable";
		out->reply = inst->msg.sms_unavailable;
		return;
	}

	if (!twostep_challenge_phone(inst, user->phone, e164, sizeof(e164))) {
		REDEBUG("%s has no valid phone number in %s", user->dn, inst->attrs.phone);
		out->reason = "phone-invalid";
		out->reply = inst->msg.phone_invalid;
		return;
	}
	if (twostep_phone_mask(masked, sizeof(masked), e164, sms->mask_str[0]) < 0) strlcpy(masked, "?", sizeof(masked));
	if (!twostep_phone_country_allowed(e164, sms->allowed_cc, talloc_array_length(sms->allowed_cc))) {
		REDEBUG("The country code of %s is not in sms.allowed_country_codes", masked);
		out->reason = "country-not-allowed";
		out->reply = inst->msg.phone_invalid;
		return;
	}

	switch (sms_reserve(inst, request, user, now, &reason, &retry_at)) {
	case 0:
		break;

	case 1:
		REDEBUG("No SMS to %s: %s, next possible in %ld s", masked, reason, (long) (retry_at - now));
		out->reason = reason;
		out->reply = fill(request, inst->msg.sms_limited, "wait", wait_text(request, retry_at - now));
		return;

	default:
		out->result = TWOSTEP_RESULT_FAIL;
		out->reason = "ldap-unavailable";
		out->reply = inst->msg.unavailable;
		return;
	}
	if (!twostep_sms_window_take(inst, now, &retry_at)) {
		RERROR("No SMS to %s: this server sent sms.max_per_hour_total (%u) codes in the last hour",
		       masked, sms->max_per_hour_total);
		out->reason = "sms-limit-installation";
		out->reply = fill(request, inst->msg.sms_limited, "wait", wait_text(request, retry_at - now));
		return;
	}

	memset(&claims, 0, sizeof(claims));
	if ((twostep_sms_code_generate(code, sms->code_digits) < 0) ||
	    (twostep_sms_code_hash(claims.code_hash, inst->keys[0].key, sizeof(inst->keys[0].key),
				   user->dn, code) < 0)) {
		REDEBUG("Generating the SMS code failed");
		out->result = TWOSTEP_RESULT_FAIL;
		out->reason = "sms-code-error";
		out->reply = inst->msg.unavailable;
		goto finish;
	}
	claims.code_hash_len = TWOSTEP_CODE_HASH_LEN;

	if (twostep_sms_send(inst, request, e164, masked, code) != TWOSTEP_SMS_SENT) {
		if (seed_len) {
			twostep_challenge_totp(inst, request, subject, seed, seed_len, inst->msg.sms_fallback, out);
			if (out->result == TWOSTEP_RESULT_CHALLENGE) out->reason = "sms-failed-totp";
			goto finish;
		}
		out->reason = "sms-send-failed";
		out->reply = inst->msg.sms_failed;
		goto finish;
	}

	claims.method = TWOSTEP_METHOD_SMS;
	if (seed_len) {
		memcpy(claims.seed, seed, seed_len);
		claims.seed_len = seed_len;
	}
	issue_state(inst, request, subject, &claims, "sms-sent", fill(request, inst->msg.sms_challenge, "number", masked), out);

finish:
	twostep_wipe(code, sizeof(code));
	twostep_wipe(&claims, sizeof(claims));
}
