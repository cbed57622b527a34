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
#include "directory.h"
#include "signin.h"
#include "sms.h"
#include "username.h"
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
	{ "net_timeout", FR_CONF_OFFSET(PW_TYPE_INTEGER, rlm_twostep_t, ldap.net_timeout), "3" },
	{ "timeout", FR_CONF_OFFSET(PW_TYPE_INTEGER, rlm_twostep_t, ldap.timeout), "5" },
	{ "tls", FR_CONF_POINTER(PW_TYPE_SUBSECTION, NULL), (void const *) tls_config },
	CONF_PARSER_TERMINATOR
};

static const CONF_PARSER attributes_config[] = {
	{ "totp_secret", FR_CONF_OFFSET(PW_TYPE_STRING | PW_TYPE_NOT_EMPTY, rlm_twostep_t, attrs.totp_secret),
	  "twostepTotpSecret" },
	{ "method", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, attrs.method), "twostepMethod" },
	{ "exempt", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, attrs.exempt), "twostepExempt" },
	{ "exempt_until", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, attrs.exempt_until), "twostepExemptUntil" },
	{ "phone", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, attrs.phone), "mobile" },
	{ "member_of", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, attrs.member_of), "memberOf" },
	{ "enforcement", FR_CONF_OFFSET(PW_TYPE_STRING | PW_TYPE_NOT_EMPTY, rlm_twostep_t, attrs.enforcement),
	  "twostepEnforcement" },
	{ "enroll_deadline", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, attrs.enroll_deadline),
	  "twostepEnrollDeadline" },
	{ "allowed_methods", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, attrs.allowed_methods),
	  "twostepAllowedMethod" },
	{ "policy_object_class", FR_CONF_OFFSET(PW_TYPE_STRING | PW_TYPE_NOT_EMPTY, rlm_twostep_t,
						attrs.policy_object_class), "twostepPolicy" },
	{ "group_member", FR_CONF_OFFSET(PW_TYPE_STRING | PW_TYPE_NOT_EMPTY, rlm_twostep_t, attrs.group_member),
	  "member" },
	{ "sms_sent", FR_CONF_OFFSET(PW_TYPE_STRING | PW_TYPE_NOT_EMPTY, rlm_twostep_t, sms.sent_attr),
	  "twostepSmsSent" },
	{ "last_step", FR_CONF_OFFSET(PW_TYPE_STRING | PW_TYPE_NOT_EMPTY, rlm_twostep_t, attrs.last_step),
	  "twostepLastStep" },
	{ "fail_count", FR_CONF_OFFSET(PW_TYPE_STRING | PW_TYPE_NOT_EMPTY, rlm_twostep_t, attrs.fail_count),
	  "twostepFailCount" },
	{ "locked_until", FR_CONF_OFFSET(PW_TYPE_STRING | PW_TYPE_NOT_EMPTY, rlm_twostep_t, attrs.locked_until),
	  "twostepLockedUntil" },
	{ "lock_reason", FR_CONF_OFFSET(PW_TYPE_STRING | PW_TYPE_NOT_EMPTY, rlm_twostep_t, attrs.lock_reason),
	  "twostepLockReason" },
	{ "last_challenge", FR_CONF_OFFSET(PW_TYPE_STRING | PW_TYPE_NOT_EMPTY, rlm_twostep_t, attrs.last_challenge),
	  "twostepLastChallenge" },
	CONF_PARSER_TERMINATOR
};

static const CONF_PARSER policy_config[] = {
	{ "default", FR_CONF_OFFSET(PW_TYPE_STRING | PW_TYPE_NOT_EMPTY, rlm_twostep_t, policy.default_str), "optional" },
	{ "cache_ttl", FR_CONF_OFFSET(PW_TYPE_INTEGER, rlm_twostep_t, policy.cache_ttl), "60" },
	{ "exempt_group", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, policy.exempt_group), NULL },
	{ "required_group", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, policy.required_group), NULL },
	CONF_PARSER_TERMINATOR
};

static const CONF_PARSER sms_config[] = {
	{ "code_digits", FR_CONF_OFFSET(PW_TYPE_INTEGER, rlm_twostep_t, sms.code_digits), "6" },
	{ "code_lifetime", FR_CONF_OFFSET(PW_TYPE_INTEGER, rlm_twostep_t, sms.code_lifetime), "300" },
	{ "message", FR_CONF_OFFSET(PW_TYPE_STRING | PW_TYPE_NOT_EMPTY, rlm_twostep_t, sms.message),
	  "Your sign-in code is {code}. Do not share it." },
	{ "default_country_code", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, sms.default_cc), NULL },
	{ "allowed_country_codes", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, sms.allowed_cc_str), "" },
	{ "mask_character", FR_CONF_OFFSET(PW_TYPE_STRING | PW_TYPE_NOT_EMPTY, rlm_twostep_t, sms.mask_str), "*" },
	{ "resend_word", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, sms.resend_word), "resend" },
	{ "sms_word", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, sms.sms_word), "sms" },
	{ "app_word", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, sms.app_word), "app" },
	{ "send_budget", FR_CONF_OFFSET(PW_TYPE_INTEGER, rlm_twostep_t, sms.send_budget), "4000" },
	{ "min_interval", FR_CONF_OFFSET(PW_TYPE_INTEGER, rlm_twostep_t, sms.min_interval), "30" },
	{ "max_per_hour", FR_CONF_OFFSET(PW_TYPE_INTEGER, rlm_twostep_t, sms.max_per_hour), "5" },
	{ "max_per_hour_total", FR_CONF_OFFSET(PW_TYPE_INTEGER, rlm_twostep_t, sms.max_per_hour_total), "1000" },
	CONF_PARSER_TERMINATOR
};

static const CONF_PARSER user_name_config[] = {
	{ "case", FR_CONF_OFFSET(PW_TYPE_STRING | PW_TYPE_NOT_EMPTY, rlm_twostep_t, guard.case_str), "lower" },
	{ "strip_realm", FR_CONF_OFFSET(PW_TYPE_BOOLEAN, rlm_twostep_t, guard.strip_realm), "no" },
	CONF_PARSER_TERMINATOR
};

static const CONF_PARSER lockout_config[] = {
	{ "max_failures", FR_CONF_OFFSET(PW_TYPE_INTEGER, rlm_twostep_t, guard.max_failures), "10" },
	{ "duration", FR_CONF_OFFSET(PW_TYPE_INTEGER, rlm_twostep_t, guard.lockout_duration), "900" },
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
	  "Two-step verification is required for your account, but it is not set up. "
	  "Contact your IT helpdesk to set it up." },
	{ "no_method", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, msg.no_method),
	  "Two-step verification is required, but no method is allowed for your organisation. "
	  "Contact your IT helpdesk." },
	{ "sms_unavailable", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, msg.sms_unavailable),
	  "Codes by text message are not available on this server. Contact your IT helpdesk." },
	{ "sms_challenge", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, msg.sms_challenge),
	  "Enter the code sent to {number}. Reply \"resend\" for a new code." },
	{ "sms_failed", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, msg.sms_failed),
	  "The code could not be sent by text message. Try again in a few minutes." },
	{ "sms_fallback", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, msg.sms_fallback),
	  "The text message could not be sent. Enter the code from your authenticator app instead." },
	{ "sms_limited", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, msg.sms_limited),
	  "Too many codes were requested. Try again in {wait}." },
	{ "sms_keep_code", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, msg.sms_keep_code),
	  "Enter the code already sent." },
	{ "phone_invalid", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, msg.phone_invalid),
	  "No phone number that can receive codes is on file for your account. Contact your IT helpdesk." },
	{ "code_reused", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, msg.code_reused),
	  "This code was already used. Wait for the next code from your app, then enter it." },
	{ "locked", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, msg.locked),
	  "Too many wrong codes. Sign-in is blocked for a while; try again later or contact your IT helpdesk." },
	{ "no_app", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, msg.no_app),
	  "No authenticator app is set up for your account. Sign in again and use the code sent to your phone." },
	{ "unavailable", FR_CONF_OFFSET(PW_TYPE_STRING, rlm_twostep_t, msg.unavailable),
	  "Sign-in is unavailable right now. Try again in a few minutes." },
	CONF_PARSER_TERMINATOR
};

static const CONF_PARSER module_config[] = {
	{ "ldap", FR_CONF_POINTER(PW_TYPE_SUBSECTION, NULL), (void const *) ldap_config },
	{ "attributes", FR_CONF_POINTER(PW_TYPE_SUBSECTION, NULL), (void const *) attributes_config },
	{ "policy", FR_CONF_POINTER(PW_TYPE_SUBSECTION, NULL), (void const *) policy_config },
	{ "sms", FR_CONF_POINTER(PW_TYPE_SUBSECTION, NULL), (void const *) sms_config },
	{ "user_name", FR_CONF_POINTER(PW_TYPE_SUBSECTION, NULL), (void const *) user_name_config },
	{ "lockout", FR_CONF_POINTER(PW_TYPE_SUBSECTION, NULL), (void const *) lockout_config },
	{ "totp", FR_CONF_POINTER(PW_TYPE_SUBSECTION, NULL), (void const *) totp_config },
	{ "state", FR_CONF_POINTER(PW_TYPE_SUBSECTION, NULL), (void const *) state_config },
	{ "messages", FR_CONF_POINTER(PW_TYPE_SUBSECTION, NULL), (void const *) messages_config },
	CONF_PARSER_TERMINATOR
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

/** Check the SMS options that are not plain numbers, and read the gateways. */
static int parse_sms(CONF_SECTION *conf, rlm_twostep_t *inst)
{
	twostep_sms_conf_t	*sms = &inst->sms;
	char			*list, *token, *save = NULL;
	size_t			num = 0;

	if (strlen(sms->mask_str) != 1) {
		cf_log_err_cs(conf, "Invalid sms.mask_character \"%s\": use one character", sms->mask_str);
		return -1;
	}
	if (sms->default_cc && *sms->default_cc &&
	    (strspn(sms->default_cc, "0123456789") != strlen(sms->default_cc) || strlen(sms->default_cc) > 3 ||
	     sms->default_cc[0] == '0')) {
		cf_log_err_cs(conf, "Invalid sms.default_country_code \"%s\": use 1 to 3 digits without '+', "
			      "such as 1 or 44", sms->default_cc);
		return -1;
	}

	/* Allowed country codes: a space-separated list of 1 to 3 digits each. */
	list = talloc_typed_strdup(inst, sms->allowed_cc_str);
	sms->allowed_cc = talloc_zero_array(inst, char const *, 0);
	for (token = strtok_r(list, " ,", &save); token; token = strtok_r(NULL, " ,", &save)) {
		if (*token == '+') token++;
		if (!*token || strspn(token, "0123456789") != strlen(token) || strlen(token) > 3) {
			cf_log_err_cs(conf, "Invalid country code \"%s\" in sms.allowed_country_codes", token);
			return -1;
		}
		sms->allowed_cc = talloc_realloc(inst, sms->allowed_cc, char const *, num + 1);
		sms->allowed_cc[num++] = token;
	}

	return twostep_sms_init(inst, cf_section_sub_find(conf, "sms"));
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
	    (check_range(conf, "state.answered_max", inst->answered_max, 1000, 100000000) < 0) ||
	    (check_range(conf, "policy.cache_ttl", inst->policy.cache_ttl, 0, 3600) < 0) ||
	    (check_range(conf, "sms.code_digits", inst->sms.code_digits, 4, TWOSTEP_CODE_MAX) < 0) ||
	    (check_range(conf, "sms.code_lifetime", inst->sms.code_lifetime, 10, 900) < 0) ||
	    (check_range(conf, "sms.send_budget", inst->sms.send_budget, 500, 30000) < 0) ||
	    (check_range(conf, "sms.min_interval", inst->sms.min_interval, 0, 3600) < 0) ||
	    (check_range(conf, "sms.max_per_hour", inst->sms.max_per_hour, 1, 100) < 0) ||
	    (check_range(conf, "sms.max_per_hour_total", inst->sms.max_per_hour_total, 1, 10000000) < 0) ||
	    (check_range(conf, "lockout.max_failures", inst->guard.max_failures, 1, 1000) < 0) ||
	    (check_range(conf, "lockout.duration", inst->guard.lockout_duration, 1, 86400 * 7) < 0)) {
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

	if (twostep_policy_parse_enforcement(&inst->policy.default_enforcement, inst->policy.default_str) < 0) {
		cf_log_err_cs(conf, "Invalid value \"%s\" for \"policy.default\": use required, optional or idp",
			      inst->policy.default_str);
		return -1;
	}
	if (inst->policy.exempt_group && !*inst->policy.exempt_group) inst->policy.exempt_group = NULL;
	if (inst->policy.required_group && !*inst->policy.required_group) inst->policy.required_group = NULL;

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

	if (twostep_username_parse_case((twostep_case_t *) &inst->guard.case_rule, inst->guard.case_str) < 0) {
		cf_log_err_cs(conf, "Invalid value \"%s\" for \"user_name.case\": use keep, lower or upper",
			      inst->guard.case_str);
		return -1;
	}
	if (parse_sms(conf, inst) < 0) return -1;

	if (twostep_dir_init(inst) < 0) {
		cf_log_err_cs(conf, "Allocating the policy cache failed");
		return -1;
	}

	return twostep_ldap_init(inst);
}

static int mod_detach(void *instance)
{
	rlm_twostep_t *inst = instance;

	twostep_ldap_free(inst);
	twostep_dir_free(inst);
	twostep_sms_free(inst);
	twostep_replay_cache_free(inst->answered);
	inst->answered = NULL;
	if (inst->keys) twostep_wipe(inst->keys, inst->num_keys * sizeof(inst->keys[0]));
	return 0;
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
	char			name[TWOSTEP_STATE_NAME_MAX + 1];

	if (!request->username) {
		REDEBUG("Request has no User-Name");
		twostep_decide(inst, request, TWOSTEP_RESULT_REJECT, "no-user-name", NULL, NULL, inst->msg.login_failed);
		return RLM_MODULE_INVALID;
	}

	password = fr_pair_find_by_num(request->packet->vps, PW_USER_PASSWORD, 0, TAG_ANY);
	if (!password) {
		REDEBUG("Request has no User-Password (CHAP and MS-CHAP are not supported)");
		twostep_decide(inst, request, TWOSTEP_RESULT_REJECT, "no-password", NULL, NULL, inst->msg.login_failed);
		return RLM_MODULE_INVALID;
	}

	/* One spelling per user: the search, the State and the counters all use it. */
	if (twostep_username_normalise(name, sizeof(name), request->username->vp_strvalue,
				       (twostep_case_t) inst->guard.case_rule, inst->guard.strip_realm) < 0) {
		REDEBUG("User-Name is empty, too long or contains control characters after normalisation");
		twostep_decide(inst, request, TWOSTEP_RESULT_REJECT, "user-name-invalid", NULL, NULL, inst->msg.login_failed);
		return RLM_MODULE_REJECT;
	}
	if (strcmp(name, request->username->vp_strvalue) != 0) RDEBUG2("User-Name normalised to \"%s\"", name);
	pair_make_request("Stripped-User-Name", name, T_OP_SET);

	state = fr_pair_find_by_num(request->packet->vps, PW_STATE, 0, TAG_ANY);
	if (state && twostep_state_is_ours(state->vp_octets, state->vp_length)) {
		return twostep_round_code(inst, request, name, state, password);
	}
	return twostep_round_password(inst, request, name, password);
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
