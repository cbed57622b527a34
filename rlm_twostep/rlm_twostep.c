/*
 * rlm_twostep.c: module glue. Config tables, instantiate and detach, and the
 * authorize and authenticate handlers that run the two rounds of a sign-in.
 *
 * Round 1: User-Name and User-Password. The password is checked by an LDAP
 * bind, and an Access-Challenge is sent with a sealed State.
 * Round 2: the State comes back with the TOTP code in User-Password.
 */
RCSID("$Id$")

#include <ldap.h>

#include "rlm_twostep.h"
#include "ldap.h"
#include "otp.h"
#include "crypto.h"

static const CONF_PARSER tls_config[] = {
	{ "start_tls", FR_CONF_OFFSET(PW_TYPE_BOOLEAN, rlm_twostep_t, ldap.start_tls), "no" },
	{ "ca_file", FR_CONF_OFFSET(PW_TYPE_FILE_INPUT, rlm_twostep_t, ldap.tls_ca_file), NULL },
	{ "ca_path", FR_CONF_OFFSET(PW_TYPE_FILE_INPUT, rlm_twostep_t, ldap.tls_ca_path), NULL },
	{ "require_cert", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, ldap.tls_require_cert_str), "demand" },
	CONF_PARSER_TERMINATOR
};

static const CONF_PARSER ldap_config[] = {
	{ "server", FR_CONF_OFFSET(PW_TYPE_STRING | PW_TYPE_MULTI | PW_TYPE_REQUIRED, rlm_twostep_t, ldap.server_first), NULL },
	{ "base_dn", FR_CONF_OFFSET(PW_TYPE_STRING | PW_TYPE_REQUIRED, rlm_twostep_t, ldap.base_dn), NULL },
	{ "filter", FR_CONF_OFFSET(PW_TYPE_STRING | PW_TYPE_XLAT | PW_TYPE_NOT_EMPTY, rlm_twostep_t, ldap.filter),
	  "(uid=%{%{Stripped-User-Name}:-%{User-Name}})" },
	{ "identity", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, ldap.identity), "" },
	{ "password", FR_CONF_OFFSET(PW_TYPE_STRING | PW_TYPE_SECRET, rlm_twostep_t, ldap.password), "" },
	{ "totp_secret_attribute", FR_CONF_OFFSET(PW_TYPE_STRING | PW_TYPE_NOT_EMPTY, rlm_twostep_t, ldap.totp_secret_attr),
	  "twostepTotpSecret" },
	{ "net_timeout", FR_CONF_OFFSET(PW_TYPE_INTEGER, rlm_twostep_t, ldap.net_timeout), "3" },
	{ "timeout", FR_CONF_OFFSET(PW_TYPE_INTEGER, rlm_twostep_t, ldap.timeout), "5" },
	{ "tls", FR_CONF_POINTER(PW_TYPE_SUBSECTION, NULL), (void const *) tls_config },
	CONF_PARSER_TERMINATOR
};

static const CONF_PARSER totp_config[] = {
	{ "time_step", FR_CONF_OFFSET(PW_TYPE_INTEGER, rlm_twostep_t, time_step), "30" },
	{ "digits", FR_CONF_OFFSET(PW_TYPE_INTEGER, rlm_twostep_t, digits), "6" },
	{ "drift", FR_CONF_OFFSET(PW_TYPE_INTEGER, rlm_twostep_t, drift), "1" },
	CONF_PARSER_TERMINATOR
};

static const CONF_PARSER state_config[] = {
	{ "key_file", FR_CONF_OFFSET(PW_TYPE_STRING | PW_TYPE_MULTI | PW_TYPE_REQUIRED, rlm_twostep_t, key_file_first), NULL },
	{ "challenge_lifetime", FR_CONF_OFFSET(PW_TYPE_INTEGER, rlm_twostep_t, challenge_lifetime), "120" },
	{ "answered_max", FR_CONF_OFFSET(PW_TYPE_INTEGER, rlm_twostep_t, answered_max), "1000000" },
	CONF_PARSER_TERMINATOR
};

static const CONF_PARSER messages_config[] = {
	{ "totp_challenge", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, msg.totp_challenge),
	  "Enter the 6-digit code from your authenticator app." },
	{ "login_failed", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, msg.login_failed),
	  "Sign-in failed: wrong user name or password." },
	{ "code_invalid", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, msg.code_invalid),
	  "Sign-in failed: the code is wrong or has expired. Sign in again." },
	{ "state_invalid", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, msg.state_invalid),
	  "Sign-in failed: the verification step timed out. Sign in again." },
	{ "not_enrolled", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, msg.not_enrolled),
	  "Two-step verification is required, but your account has no authenticator app set up. "
	  "Contact your IT helpdesk." },
	{ "unavailable", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, msg.unavailable),
	  "Sign-in is unavailable right now. Try again in a few minutes." },
	CONF_PARSER_TERMINATOR
};

static const CONF_PARSER module_config[] = {
	{ "ldap", FR_CONF_POINTER(PW_TYPE_SUBSECTION, NULL), (void const *) ldap_config },
	{ "totp", FR_CONF_POINTER(PW_TYPE_SUBSECTION, NULL), (void const *) totp_config },
	{ "state", FR_CONF_POINTER(PW_TYPE_SUBSECTION, NULL), (void const *) state_config },
	{ "messages", FR_CONF_POINTER(PW_TYPE_SUBSECTION, NULL), (void const *) messages_config },
	CONF_PARSER_TERMINATOR
};

/** Outcome of one request, as logged and as mapped to a module result. */
typedef enum {
	DECISION_ACCEPT,	//!< Second factor verified.
	DECISION_REJECT,	//!< Wrong credentials or a bad State.
	DECISION_CHALLENGE,	//!< Password good, code requested.
	DECISION_FAIL		//!< Backend or configuration trouble.
} decision_t;

static char const *decision_names[] = {
	[DECISION_ACCEPT] = "accept",
	[DECISION_REJECT] = "reject",
	[DECISION_CHALLENGE] = "challenge",
	[DECISION_FAIL] = "fail",
};

/** Check that an integer option lies in its range, naming it otherwise. */
static int check_range(CONF_SECTION *cs, char const *name, uint32_t value, uint32_t min, uint32_t max)
{
	if (value >= min && value <= max) return 0;
	cf_log_err_cs(cs, "Invalid value %u for \"%s\": it must be between %u and %u", value, name, min, max);
	return -1;
}

static int parse_require_cert(CONF_SECTION *cs, rlm_twostep_t *inst)
{
	char const *value = inst->ldap.tls_require_cert_str;

	if (strcmp(value, "demand") == 0) {
		inst->ldap.tls_require_cert = LDAP_OPT_X_TLS_DEMAND;
	} else if (strcmp(value, "allow") == 0) {
		inst->ldap.tls_require_cert = LDAP_OPT_X_TLS_ALLOW;
	} else if (strcmp(value, "never") == 0) {
		inst->ldap.tls_require_cert = LDAP_OPT_X_TLS_NEVER;
	} else {
		cf_log_err_cs(cs, "Invalid value \"%s\" for \"require_cert\": use demand, allow or never", value);
		return -1;
	}
	if (inst->ldap.tls_require_cert != LDAP_OPT_X_TLS_DEMAND) {
		WARN("rlm_twostep (%s): require_cert = %s: LDAP server certificates are not fully checked",
		     inst->name, value);
	}
	return 0;
}

/** Collect every value of a repeated option, in config order.
 *
 * The 3.2 config parser stores only the first value of a PW_TYPE_MULTI
 * option, so the rest are read from the section here.
 */
static char const **multi_values(TALLOC_CTX *ctx, CONF_SECTION *cs, char const *name)
{
	CONF_PAIR	*cp;
	char const	**values;
	size_t		num = 0, i = 0;

	for (cp = cf_pair_find(cs, name); cp; cp = cf_pair_find_next(cs, cp, name)) num++;

	values = talloc_zero_array(ctx, char const *, num);
	for (cp = cf_pair_find(cs, name); cp; cp = cf_pair_find_next(cs, cp, name)) {
		values[i++] = cf_pair_value(cp);
	}
	return values;
}

static int load_keys(rlm_twostep_t *inst)
{
	size_t	i, j;
	char	err[256];

	inst->key_file = multi_values(inst, cf_section_sub_find(inst->cs, "state"), "key_file");
	inst->num_keys = talloc_array_length(inst->key_file);
	inst->keys = talloc_zero_array(inst, twostep_state_key_t, inst->num_keys);

	for (i = 0; i < inst->num_keys; i++) {
		if (twostep_state_key_load(&inst->keys[i], inst->key_file[i], err, sizeof(err)) < 0) {
			cf_log_err_cs(inst->cs, "Loading State key failed: %s", err);
			return -1;
		}
		for (j = 0; j < i; j++) {
			if (inst->keys[j].id != inst->keys[i].id) continue;
			cf_log_err_cs(inst->cs, "State key files %s and %s have the same key id %u",
				      inst->key_file[j], inst->key_file[i], inst->keys[i].id);
			return -1;
		}
	}
	return 0;
}

static int mod_instantiate(CONF_SECTION *conf, void *instance)
{
	rlm_twostep_t *inst = instance;

	inst->cs = conf;
	inst->name = cf_section_name2(conf);
	if (!inst->name) inst->name = cf_section_name1(conf);

	if ((check_range(conf, "ldap.net_timeout", inst->ldap.net_timeout, 1, 60) < 0) ||
	    (check_range(conf, "ldap.timeout", inst->ldap.timeout, 1, 60) < 0) ||
	    (check_range(conf, "totp.time_step", inst->time_step, 15, 300) < 0) ||
	    (check_range(conf, "totp.digits", inst->digits, 6, 8) < 0) ||
	    (check_range(conf, "totp.drift", inst->drift, 0, 10) < 0) ||
	    (check_range(conf, "state.challenge_lifetime", inst->challenge_lifetime, 10, 600) < 0) ||
	    (check_range(conf, "state.answered_max", inst->answered_max, 1000, 100000000) < 0)) {
		return -1;
	}

	if (inst->ldap.identity[0] && !inst->ldap.password[0]) {
		cf_log_err_cs(conf, "ldap.identity is set but ldap.password is empty: "
			      "a bind with an empty password is anonymous. Set the password");
		return -1;
	}

	inst->ldap.server = multi_values(inst, cf_section_sub_find(conf, "ldap"), "server");
	for (size_t i = 0; i < talloc_array_length(inst->ldap.server); i++) {
		if (!ldap_is_ldap_url(inst->ldap.server[i])) {
			cf_log_err_cs(conf, "Invalid LDAP URI \"%s\" in ldap.server: use ldap://host:port/ "
				      "or ldaps://host:port/", inst->ldap.server[i]);
			return -1;
		}
	}

	if (parse_require_cert(conf, inst) < 0) return -1;
	if (load_keys(inst) < 0) return -1;

	inst->answered = twostep_replay_cache_create(inst->answered_max);
	if (!inst->answered) {
		cf_log_err_cs(conf, "Allocating the set of answered States (%u entries) failed", inst->answered_max);
		return -1;
	}

	if (twostep_otp_init() < 0) {
		cf_log_err_cs(conf, "Initialising liboath failed");
		return -1;
	}

	return twostep_ldap_init(inst);
}

static int mod_detach(void *instance)
{
	rlm_twostep_t *inst = instance;

	twostep_ldap_free(inst);
	twostep_replay_cache_free(inst->answered);
	inst->answered = NULL;
	if (inst->keys) twostep_wipe(inst->keys, inst->num_keys * sizeof(inst->keys[0]));
	return 0;
}

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
 * The line names the user (escaped), the NAS, the result, the reason and the
 * DN when it is known. It never contains a password, code or seed.
 */
static void decide(rlm_twostep_t const *inst, REQUEST *request, decision_t decision,
		   char const *reason, char const *dn, char const *reply_message)
{
	char		user[256] = "";
	char		nas[128] = "";
	VALUE_PAIR	*vp;

	vp = fr_pair_find_by_num(request->packet->vps, PW_USER_NAME, 0, TAG_ANY);
	if (vp) fr_prints(user, sizeof(user), vp->vp_strvalue, vp->vp_length, '"');
	if (!nas_name(request, nas, sizeof(nas))) strlcpy(nas, "unknown", sizeof(nas));

	INFO("rlm_twostep (%s): (%u) user=\"%s\" nas=%s result=%s reason=%s%s%s%s", inst->name,
	     request->number, user, nas, decision_names[decision], reason,
	     dn ? " dn=\"" : "", dn ? dn : "", dn ? "\"" : "");

	if (reply_message && *reply_message) pair_make_reply("Reply-Message", reply_message, T_OP_SET);
	/* Debian's 3.2.1 does not add Message-Authenticator to replies by itself. */
	pair_make_reply("Message-Authenticator", "0x00", T_OP_SET);
}

static rlm_rcode_t decision_rcode(decision_t decision)
{
	switch (decision) {
	case DECISION_ACCEPT:
		return RLM_MODULE_OK;
	case DECISION_CHALLENGE:
		return RLM_MODULE_HANDLED;
	case DECISION_REJECT:
		return RLM_MODULE_REJECT;
	case DECISION_FAIL:
	default:
		return RLM_MODULE_FAIL;
	}
}

/*
 *	Send the Access-Challenge of round 1: seal the claims into a State.
 */
static decision_t send_challenge(rlm_twostep_t const *inst, REQUEST *request, char const *dn,
				 char const *secret, char const **reason)
{
	twostep_state_claims_t	claims;
	uint8_t			token[TWOSTEP_STATE_MAX_LEN];
	size_t			token_len = 0;
	twostep_state_rcode_t	rcode;
	VALUE_PAIR		*vp;
	decision_t		decision = DECISION_FAIL;

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
	decision = DECISION_CHALLENGE;

finish:
	twostep_wipe(&claims, sizeof(claims));
	return decision;
}

/*
 *	Round 1: check the password, then challenge for the code.
 */
static rlm_rcode_t round_password(rlm_twostep_t const *inst, REQUEST *request, VALUE_PAIR *password)
{
	twostep_ldap_user_t	user;
	twostep_ldap_rcode_t	rcode;
	decision_t		decision;
	char const		*reason;

	/* An empty password would make the bind anonymous: it never reaches LDAP. */
	if (password->vp_length == 0) {
		decide(inst, request, DECISION_REJECT, "empty-password", NULL, inst->msg.login_failed);
		return RLM_MODULE_REJECT;
	}

	rcode = twostep_ldap_find_user(inst, request, &user);
	switch (rcode) {
	case TWOSTEP_LDAP_OK:
		break;

	case TWOSTEP_LDAP_NOT_FOUND:
		decide(inst, request, DECISION_REJECT, "user-not-found", NULL, inst->msg.login_failed);
		return RLM_MODULE_REJECT;

	case TWOSTEP_LDAP_AMBIGUOUS:
		decide(inst, request, DECISION_REJECT, "user-ambiguous", NULL, inst->msg.login_failed);
		return RLM_MODULE_REJECT;

	case TWOSTEP_LDAP_UNAVAILABLE:
		decide(inst, request, DECISION_FAIL, "ldap-unavailable", NULL, inst->msg.unavailable);
		return RLM_MODULE_FAIL;

	default:
		decide(inst, request, DECISION_FAIL, "ldap-error", NULL, inst->msg.unavailable);
		return RLM_MODULE_FAIL;
	}

	rcode = twostep_ldap_check_password(inst, request, user.dn, password->vp_strvalue, password->vp_length);
	switch (rcode) {
	case TWOSTEP_LDAP_OK:
		break;

	case TWOSTEP_LDAP_REJECT:
		decision = DECISION_REJECT;
		decide(inst, request, decision, "password-rejected", user.dn, inst->msg.login_failed);
		goto finish;

	case TWOSTEP_LDAP_UNAVAILABLE:
		decision = DECISION_FAIL;
		decide(inst, request, decision, "ldap-unavailable", user.dn, inst->msg.unavailable);
		goto finish;

	default:
		decision = DECISION_FAIL;
		decide(inst, request, decision, "ldap-error", user.dn, inst->msg.unavailable);
		goto finish;
	}

	if (!user.totp_secret) {
		decision = DECISION_REJECT;
		decide(inst, request, decision, "not-enrolled", user.dn, inst->msg.not_enrolled);
		goto finish;
	}

	decision = send_challenge(inst, request, user.dn, user.totp_secret, &reason);
	decide(inst, request, decision, reason, user.dn,
	       decision == DECISION_CHALLENGE ? inst->msg.totp_challenge : inst->msg.unavailable);

finish:
	if (user.totp_secret) twostep_wipe(user.totp_secret, strlen(user.totp_secret));
	talloc_free(user.totp_secret);
	talloc_free(user.dn);
	return decision_rcode(decision);
}

/*
 *	Round 2: verify the State, then the code.
 */
static rlm_rcode_t round_code(rlm_twostep_t const *inst, REQUEST *request, VALUE_PAIR *state, VALUE_PAIR *password)
{
	twostep_state_claims_t	claims;
	twostep_state_rcode_t	state_rcode;
	twostep_otp_rcode_t	otp_rcode;
	char			code[16];
	decision_t		decision;
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
		decide(inst, request, DECISION_REJECT, "state-expired", claims.dn, inst->msg.state_invalid);
		twostep_wipe(&claims, sizeof(claims));
		return RLM_MODULE_REJECT;

	case TWOSTEP_STATE_ERROR:
		REDEBUG("Verifying the State failed: %s", twostep_state_strerror(state_rcode));
		decide(inst, request, DECISION_FAIL, "state-error", NULL, inst->msg.unavailable);
		return RLM_MODULE_FAIL;

	default:
		REDEBUG("State rejected: %s", twostep_state_strerror(state_rcode));
		decide(inst, request, DECISION_REJECT, "state-invalid", NULL, inst->msg.state_invalid);
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
		decide(inst, request, DECISION_REJECT, "state-used", claims.dn, inst->msg.state_invalid);
		twostep_wipe(&claims, sizeof(claims));
		return RLM_MODULE_REJECT;

	case TWOSTEP_REPLAY_FULL:
		REDEBUG("The set of answered States is full (%u entries): raise state.answered_max",
			inst->answered_max);
		decide(inst, request, DECISION_FAIL, "answered-set-full", claims.dn, inst->msg.unavailable);
		twostep_wipe(&claims, sizeof(claims));
		return RLM_MODULE_FAIL;
	}

	if (claims.method != TWOSTEP_METHOD_TOTP || claims.seed_len == 0) {
		REDEBUG("State names a method this server does not support");
		decide(inst, request, DECISION_REJECT, "state-invalid", claims.dn, inst->msg.state_invalid);
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
		decision = DECISION_ACCEPT;
		reason = "code-accepted";
		reply_message = NULL;
		break;

	case TWOSTEP_OTP_MISMATCH:
		decision = DECISION_REJECT;
		reason = "code-invalid";
		reply_message = inst->msg.code_invalid;
		break;

	case TWOSTEP_OTP_MALFORMED:
		decision = DECISION_REJECT;
		reason = "code-malformed";
		reply_message = inst->msg.code_invalid;
		break;

	default:
		REDEBUG("Checking the code failed in liboath");
		decision = DECISION_FAIL;
		reason = "otp-error";
		reply_message = inst->msg.unavailable;
		break;
	}

	decide(inst, request, decision, reason, claims.dn, reply_message);
	twostep_wipe(&claims, sizeof(claims));
	return decision_rcode(decision);
}

/** Claim requests that carry a password or a State of ours, by setting Auth-Type. */
static rlm_rcode_t CC_HINT(nonnull) mod_authorize(void *instance, REQUEST *request)
{
	rlm_twostep_t const	*inst = instance;
	VALUE_PAIR		*state, *password;

	state = fr_pair_find_by_num(request->packet->vps, PW_STATE, 0, TAG_ANY);
	if (state && !twostep_state_is_ours(state->vp_octets, state->vp_length)) {
		RDEBUG2("State is not ours, leaving the request to other modules");
		return RLM_MODULE_NOOP;
	}

	password = fr_pair_find_by_num(request->packet->vps, PW_USER_PASSWORD, 0, TAG_ANY);
	if (!password) {
		RDEBUG2("No User-Password in the request, leaving it to other modules");
		return RLM_MODULE_NOOP;
	}

	if (fr_pair_find_by_num(request->config, PW_AUTH_TYPE, 0, TAG_ANY)) {
		RWDEBUG2("Auth-Type is already set, not setting it to %s", inst->name);
		return RLM_MODULE_NOOP;
	}

	if (!pair_make_config("Auth-Type", inst->name, T_OP_EQ)) {
		REDEBUG("Setting Auth-Type %s failed: list \"Auth-Type %s { ... }\" in authenticate",
			inst->name, inst->name);
		return RLM_MODULE_FAIL;
	}
	return RLM_MODULE_OK;
}

/** Run round 1 or round 2, depending on whether the request carries a State of ours. */
static rlm_rcode_t CC_HINT(nonnull) mod_authenticate(void *instance, REQUEST *request)
{
	rlm_twostep_t const	*inst = instance;
	VALUE_PAIR		*state, *password;

	if (!request->username) {
		REDEBUG("Request has no User-Name");
		decide(inst, request, DECISION_REJECT, "no-user-name", NULL, inst->msg.login_failed);
		return RLM_MODULE_INVALID;
	}

	password = fr_pair_find_by_num(request->packet->vps, PW_USER_PASSWORD, 0, TAG_ANY);
	if (!password) {
		REDEBUG("Request has no User-Password (CHAP and MS-CHAP are not supported)");
		decide(inst, request, DECISION_REJECT, "no-password", NULL, inst->msg.login_failed);
		return RLM_MODULE_INVALID;
	}

	state = fr_pair_find_by_num(request->packet->vps, PW_STATE, 0, TAG_ANY);
	if (state && twostep_state_is_ours(state->vp_octets, state->vp_length)) {
		return round_code(inst, request, state, password);
	}
	return round_password(inst, request, password);
}

extern module_t rlm_twostep;
module_t rlm_twostep = {
	.magic		= RLM_MODULE_INIT,
	.name		= "twostep",
	.type		= RLM_TYPE_THREAD_SAFE,
	.inst_size	= sizeof(rlm_twostep_t),
	.config		= module_config,
	.instantiate	= mod_instantiate,
	.detach		= mod_detach,
	.methods = {
		[MOD_AUTHENTICATE]	= mod_authenticate,
		[MOD_AUTHORIZE]		= mod_authorize,
	},
};
