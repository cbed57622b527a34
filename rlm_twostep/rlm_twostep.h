/*
 * rlm_twostep.h: the module instance, shared by the glue (rlm_twostep.c)
 * and the LDAP layer (ldap.c). Nothing here is exported from the module.
 */
#ifndef RLM_TWOSTEP_H
#define RLM_TWOSTEP_H

RCSIDH(rlm_twostep_h, "$Id$")

#include <freeradius-devel/radiusd.h>
#include <freeradius-devel/modules.h>

#include "state.h"
#include "replay.h"
#include "policy.h"
#include "smsutil.h"

/** LDAP settings, from the "ldap" section. */
typedef struct {
	char const		*server_first;		//!< First "server" value; see server.
	char const		**server;		//!< Every "server" value, tried in order on connect.
	char const		*base_dn;		//!< Base of the subtree user search.
	char const		*filter;		//!< User filter, expanded with escaping.
	char const		*identity;		//!< Service account DN, "" for anonymous.
	char const		*password;		//!< Service account password.
	uint32_t		net_timeout;		//!< Seconds to wait for a TCP connect.
	uint32_t		timeout;		//!< Seconds to wait for one operation.
	bool			start_tls;		//!< Send StartTLS on ldap:// URIs.
	char const		*tls_ca_file;		//!< CA bundle for server certificates.
	char const		*tls_ca_path;		//!< Directory of CA certificates.
	char const		*tls_require_cert_str;	//!< "demand", "allow" or "never".
	int			tls_require_cert;	//!< Parsed LDAP_OPT_X_TLS_* value.
} twostep_ldap_conf_t;

/** Names of the LDAP attributes the module reads, from the "attributes" section. */
typedef struct {
	char const		*totp_secret;		//!< User: base32 TOTP seed.
	char const		*method;		//!< User: preferred method.
	char const		*exempt;		//!< User: exempt flag (Boolean).
	char const		*exempt_until;		//!< User: end of the exemption (GeneralizedTime).
	char const		*phone;			//!< User: phone number.
	char const		*member_of;		//!< User: groups the user belongs to, "" to skip.
	char const		*enforcement;		//!< Policy: required, optional or idp.
	char const		*enroll_deadline;	//!< Policy: enrollment deadline (GeneralizedTime).
	char const		*allowed_methods;	//!< Policy: allowed methods, multi-valued.
	char const		*policy_object_class;	//!< Object class of policy entries.
	char const		*group_member;		//!< Group: attribute listing member DNs.
	char const		*last_step;		//!< User: last accepted TOTP time step.
	char const		*fail_count;		//!< User: consecutive wrong codes.
	char const		*locked_until;		//!< User: end of a second-factor lock-out.
	char const		*lock_reason;		//!< User: why the lock-out happened.
	char const		*last_challenge;	//!< User: nonce of the last answered challenge.
} twostep_ldap_attrs_t;

/** Policy settings, from the "policy" section. */
typedef struct {
	char const		*default_str;		//!< Enforcement when no ancestor has a policy.
	twostep_enforcement_t	default_enforcement;	//!< Parsed default_str.
	uint32_t		cache_ttl;		//!< Seconds policy and group entries stay cached.
	char const		*exempt_group;		//!< DN of the exemption group, NULL for none.
	char const		*required_group;	//!< DN of the "2SV required" group, NULL for none.
} twostep_policy_conf_t;

/** One SMS gateway, from a "gateway NAME { }" section of "sms". */
typedef struct {
	char const		*name;			//!< Section name, for log lines.
	char const		*url;			//!< URL template; values are URL-encoded.
	char const		*method_str;		//!< "POST" or "GET".
	bool			post;			//!< Parsed method_str.
	char const		*body;			//!< Body template (POST).
	char const		*body_encoding_str;	//!< "json" or "form".
	twostep_encoding_t	body_encoding;		//!< Parsed body_encoding_str.
	char const		*header_first;		//!< First "header" value; see headers.
	char const		**headers;		//!< Every "header" value; "{token}" is replaced.
	char const		*token_file;		//!< File holding the API token.
	char const		*token_env;		//!< Environment variable holding the API token.
	char			*token;			//!< The token, read at start.
	char const		*username;		//!< HTTP basic auth user, NULL for none.
	char const		*password;		//!< HTTP basic auth password; "{token}" is replaced.
	uint32_t		connect_timeout;	//!< Milliseconds to connect.
	uint32_t		timeout;		//!< Milliseconds for the whole request.
	char const		*success_contains;	//!< Text a successful answer's body must contain.
	char const		*failure_contains;	//!< Text that makes a 2xx answer a failure.
	char const		*ca_file;		//!< CA bundle for HTTPS.
	bool			tls_verify;		//!< Check the server certificate and name.
	bool			follow_redirects;	//!< Follow 3xx answers.
	fr_connection_pool_t	*pool;			//!< Reusable curl handles (keep-alive).
} twostep_gateway_t;

/** Count of SMS sent by this radiusd in the last hour (sms.c). */
typedef struct twostep_sms_window twostep_sms_window_t;

/** SMS settings, from the "sms" section. */
typedef struct {
	uint32_t		code_digits;		//!< Digits in a code.
	uint32_t		code_lifetime;		//!< Seconds a code and its State stay valid.
	char const		*message;		//!< Text template of the message.
	char const		*default_cc;		//!< Country code for national numbers.
	char const		*allowed_cc_str;	//!< Space-separated allowed country codes.
	char const		**allowed_cc;		//!< Parsed allowed_cc_str.
	char const		*mask_str;		//!< Mask character, as a string.
	char const		*resend_word;		//!< Reply that asks for a new code.
	char const		*sms_word;		//!< Reply that switches to SMS.
	char const		*app_word;		//!< Reply that switches to the app.
	uint32_t		send_budget;		//!< Milliseconds all gateways together may take.
	uint32_t		min_interval;		//!< Seconds between two codes to one user.
	uint32_t		max_per_hour;		//!< Codes per user per hour.
	uint32_t		max_per_hour_total;	//!< Codes per hour from this radiusd.
	char const		*sent_attr;		//!< User attribute with recent send times.
	twostep_gateway_t	*gateways;		//!< Gateways, tried in order.
	size_t			num_gateways;		//!< Entries in gateways.
	twostep_sms_window_t	*window;		//!< Sends of the last hour; has its own lock.
} twostep_sms_conf_t;

/** User-Name normalisation and lock-out, from the "user_name" and "lockout" sections. */
typedef struct {
	char const		*case_str;		//!< "keep", "lower" or "upper".
	int			case_rule;		//!< Parsed case_str (twostep_case_t).
	bool			strip_realm;		//!< Drop "DOMAIN\\" and "@realm".
	uint32_t		max_failures;		//!< Wrong codes in a row before a lock-out.
	uint32_t		lockout_duration;	//!< Seconds a lock-out lasts.
} twostep_guard_conf_t;

/** Cache of policy and group entries read from LDAP (directory.c). */
typedef struct twostep_dir_cache twostep_dir_cache_t;

/** Reply-Message texts, from the "messages" section. */
typedef struct {
	char const		*totp_challenge;	//!< Asks for the app's code.
	char const		*login_failed;		//!< Bad password or unknown user.
	char const		*code_invalid;		//!< Wrong or malformed code.
	char const		*state_invalid;		//!< Expired or bad State.
	char const		*not_enrolled;		//!< 2SV required, no usable method on file.
	char const		*no_method;		//!< The policy allows no method at all.
	char const		*sms_unavailable;	//!< SMS is the only method, and no gateway is configured.
	char const		*sms_challenge;		//!< Asks for the code sent to the masked number.
	char const		*sms_failed;		//!< No gateway could send the code.
	char const		*sms_fallback;		//!< SMS failed, the app's code is asked instead.
	char const		*sms_limited;		//!< A send limit was reached; "{wait}" is the time to wait.
	char const		*sms_keep_code;		//!< Added to sms_limited after "resend": the old code still works.
	char const		*phone_invalid;		//!< No usable phone number on file.
	char const		*no_app;		//!< The user asked for the app but has none.
	char const		*code_reused;		//!< The right code, already used: wait for the next.
	char const		*locked;		//!< Too many wrong codes: locked out for a while.
	char const		*unavailable;		//!< Backend failure.
} twostep_messages_t;

/** Module instance. Read-only once mod_instantiate returns. */
typedef struct {
	char const		*name;			//!< Instance name, also the Auth-Type.
	CONF_SECTION		*cs;			//!< Module section.

	twostep_ldap_conf_t	ldap;			//!< LDAP settings.
	twostep_ldap_attrs_t	attrs;			//!< LDAP attribute names.
	twostep_policy_conf_t	policy;			//!< Policy settings.
	twostep_sms_conf_t	sms;			//!< SMS settings and gateways.
	twostep_guard_conf_t	guard;			//!< User-Name normalisation and lock-out.

	uint32_t		time_step;		//!< TOTP step in seconds.
	uint32_t		digits;			//!< TOTP code length.
	uint32_t		drift;			//!< Steps accepted on each side.

	char const		*key_file_first;	//!< First "key_file" value; see key_file.
	char const		**key_file;		//!< Every "key_file" value, the first one seals.
	twostep_state_key_t	*keys;			//!< Loaded keys, same order.
	size_t			num_keys;		//!< Entries in keys.
	uint32_t		challenge_lifetime;	//!< Seconds a State can be answered.
	uint32_t		answered_max;		//!< Capacity of the answered-State set.

	twostep_messages_t	msg;			//!< Reply-Message texts.

	fr_connection_pool_t	*search_pool;		//!< Connections bound as the service account.
	fr_connection_pool_t	*bind_pool;		//!< Connections for user binds.
	twostep_replay_cache_t	*answered;		//!< States already answered; has its own lock.
	twostep_dir_cache_t	*dir_cache;		//!< Policy and group entries; has its own lock.
} rlm_twostep_t;

#endif
