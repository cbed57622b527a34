/*
 * test_policy.c: the two-step verification decision and the policy value parsers.
 *
 * The decision is tested twice: a table of named cases that reads as the
 * rules, and every combination of the inputs that matter, compared with a
 * reference written here from the rules alone.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "policy.h"

/** 2026-01-01T00:00:00Z, the current time of every decision test. */
#define NOW		((int64_t)1767225600)

/* Short names, so the table rows fit on a line or two. */
#define OPTIONAL	TWOSTEP_ENFORCE_OPTIONAL
#define REQUIRED	TWOSTEP_ENFORCE_REQUIRED
#define IDP		TWOSTEP_ENFORCE_IDP

#define M_NONE		TWOSTEP_POLICY_METHOD_NONE
#define M_TOTP		TWOSTEP_POLICY_METHOD_TOTP
#define M_SMS		TWOSTEP_POLICY_METHOD_SMS
#define M_ALL		TWOSTEP_POLICY_METHOD_ALL

#define PASSWORD_ONLY	TWOSTEP_DECISION_PASSWORD_ONLY
#define CHALLENGE	TWOSTEP_DECISION_CHALLENGE
#define ENROLL		TWOSTEP_DECISION_ENROLL
#define REJECT		TWOSTEP_DECISION_REJECT

#define R_EXEMPT		TWOSTEP_REASON_EXEMPT
#define R_EXEMPT_GROUP		TWOSTEP_REASON_EXEMPT_GROUP
#define R_IDP			TWOSTEP_REASON_IDP
#define R_OPTIONAL_NOT_ENROLLED	TWOSTEP_REASON_OPTIONAL_NOT_ENROLLED
#define R_ENROLLED		TWOSTEP_REASON_ENROLLED
#define R_NOT_ENROLLED		TWOSTEP_REASON_NOT_ENROLLED
#define R_METHOD_NOT_ALLOWED	TWOSTEP_REASON_METHOD_NOT_ALLOWED
#define R_NO_METHOD_ALLOWED	TWOSTEP_REASON_NO_METHOD_ALLOWED

#define NUM_REASONS		(TWOSTEP_REASON_NO_METHOD_ALLOWED + 1)

/*
 *	Decision: named cases.
 */

typedef struct {
	char const		*name;
	twostep_policy_t	policy;
	twostep_policy_user_t	user;
	twostep_policy_result_t	want;	//!< decision, reason, method, can_skip, required_by_group, exemption_expired
} decide_case_t;

static decide_case_t const decide_cases[] = {
	/* Enforcement and enrollment. */
	{ "optional, not enrolled",
	  { .enforcement = OPTIONAL, .allowed_methods = M_ALL }, { 0 },
	  { PASSWORD_ONLY, R_OPTIONAL_NOT_ENROLLED, M_NONE, false, false, false } },
	{ "optional, totp",
	  { .enforcement = OPTIONAL, .allowed_methods = M_ALL }, { .has_totp = true },
	  { CHALLENGE, R_ENROLLED, M_TOTP, false, false, false } },
	{ "optional, sms with phone",
	  { .enforcement = OPTIONAL, .allowed_methods = M_ALL }, { .method = M_SMS, .has_phone = true },
	  { CHALLENGE, R_ENROLLED, M_SMS, false, false, false } },
	{ "required, totp",
	  { .enforcement = REQUIRED, .allowed_methods = M_ALL }, { .has_totp = true },
	  { CHALLENGE, R_ENROLLED, M_TOTP, false, false, false } },
	{ "required, sms with phone",
	  { .enforcement = REQUIRED, .allowed_methods = M_ALL }, { .method = M_SMS, .has_phone = true },
	  { CHALLENGE, R_ENROLLED, M_SMS, false, false, false } },
	{ "required, sms without phone",
	  { .enforcement = REQUIRED, .allowed_methods = M_ALL }, { .method = M_SMS },
	  { ENROLL, R_NOT_ENROLLED, M_NONE, false, false, false } },
	{ "required, phone without method",
	  { .enforcement = REQUIRED, .allowed_methods = M_ALL }, { .has_phone = true },
	  { ENROLL, R_NOT_ENROLLED, M_NONE, false, false, false } },
	{ "required, method totp without seed",
	  { .enforcement = REQUIRED, .allowed_methods = M_ALL }, { .method = M_TOTP, .has_phone = true },
	  { ENROLL, R_NOT_ENROLLED, M_NONE, false, false, false } },
	{ "required, not enrolled",
	  { .enforcement = REQUIRED, .allowed_methods = M_ALL }, { 0 },
	  { ENROLL, R_NOT_ENROLLED, M_NONE, false, false, false } },

	/* Choice of method. */
	{ "both, prefers sms",
	  { .enforcement = REQUIRED, .allowed_methods = M_ALL },
	  { .has_totp = true, .method = M_SMS, .has_phone = true },
	  { CHALLENGE, R_ENROLLED, M_SMS, false, false, false } },
	{ "totp and phone, prefers totp",
	  { .enforcement = REQUIRED, .allowed_methods = M_ALL },
	  { .has_totp = true, .method = M_TOTP, .has_phone = true },
	  { CHALLENGE, R_ENROLLED, M_TOTP, false, false, false } },
	{ "both, prefers sms, totp only allowed",
	  { .enforcement = REQUIRED, .allowed_methods = M_TOTP },
	  { .has_totp = true, .method = M_SMS, .has_phone = true },
	  { CHALLENGE, R_ENROLLED, M_TOTP, false, false, false } },
	{ "both, sms only allowed",
	  { .enforcement = REQUIRED, .allowed_methods = M_SMS },
	  { .has_totp = true, .method = M_SMS, .has_phone = true },
	  { CHALLENGE, R_ENROLLED, M_SMS, false, false, false } },

	/* Allowed methods. */
	{ "required, sms enrolled, totp only allowed",
	  { .enforcement = REQUIRED, .allowed_methods = M_TOTP }, { .method = M_SMS, .has_phone = true },
	  { ENROLL, R_METHOD_NOT_ALLOWED, M_NONE, false, false, false } },
	{ "required, totp enrolled, sms only allowed",
	  { .enforcement = REQUIRED, .allowed_methods = M_SMS }, { .has_totp = true },
	  { ENROLL, R_METHOD_NOT_ALLOWED, M_NONE, false, false, false } },
	{ "required, phone only, sms only allowed",
	  { .enforcement = REQUIRED, .allowed_methods = M_SMS }, { .has_phone = true },
	  { ENROLL, R_NOT_ENROLLED, M_NONE, false, false, false } },
	{ "optional, enrolled in forbidden method",
	  { .enforcement = OPTIONAL, .allowed_methods = M_SMS }, { .has_totp = true },
	  { PASSWORD_ONLY, R_OPTIONAL_NOT_ENROLLED, M_NONE, false, false, false } },
	{ "required, no method allowed",
	  { .enforcement = REQUIRED, .allowed_methods = M_NONE }, { 0 },
	  { REJECT, R_NO_METHOD_ALLOWED, M_NONE, false, false, false } },
	{ "required, no method allowed, enrolled",
	  { .enforcement = REQUIRED, .allowed_methods = M_NONE, .enroll_deadline = NOW + 1 },
	  { .has_totp = true, .method = M_SMS, .has_phone = true },
	  { REJECT, R_NO_METHOD_ALLOWED, M_NONE, false, false, false } },
	{ "optional, no method allowed",
	  { .enforcement = OPTIONAL, .allowed_methods = M_NONE }, { .has_totp = true },
	  { PASSWORD_ONLY, R_OPTIONAL_NOT_ENROLLED, M_NONE, false, false, false } },
	{ "unknown method bits allow nothing",
	  { .enforcement = REQUIRED, .allowed_methods = 1u << 2 }, { .has_totp = true },
	  { REJECT, R_NO_METHOD_ALLOWED, M_NONE, false, false, false } },

	/* Enrollment deadline. */
	{ "deadline in 1 s: can skip",
	  { .enforcement = REQUIRED, .allowed_methods = M_ALL, .enroll_deadline = NOW + 1 }, { 0 },
	  { ENROLL, R_NOT_ENROLLED, M_NONE, true, false, false } },
	{ "deadline now: cannot skip",
	  { .enforcement = REQUIRED, .allowed_methods = M_ALL, .enroll_deadline = NOW }, { 0 },
	  { ENROLL, R_NOT_ENROLLED, M_NONE, false, false, false } },
	{ "deadline 1 s ago: cannot skip",
	  { .enforcement = REQUIRED, .allowed_methods = M_ALL, .enroll_deadline = NOW - 1 }, { 0 },
	  { ENROLL, R_NOT_ENROLLED, M_NONE, false, false, false } },
	{ "deadline ahead, method not allowed",
	  { .enforcement = REQUIRED, .allowed_methods = M_SMS, .enroll_deadline = NOW + 1 }, { .has_totp = true },
	  { ENROLL, R_METHOD_NOT_ALLOWED, M_NONE, true, false, false } },
	{ "deadline ignored when challenged",
	  { .enforcement = REQUIRED, .allowed_methods = M_ALL, .enroll_deadline = NOW + 1 }, { .has_totp = true },
	  { CHALLENGE, R_ENROLLED, M_TOTP, false, false, false } },
	{ "deadline ignored when optional",
	  { .enforcement = OPTIONAL, .allowed_methods = M_ALL, .enroll_deadline = NOW + 1 }, { 0 },
	  { PASSWORD_ONLY, R_OPTIONAL_NOT_ENROLLED, M_NONE, false, false, false } },

	/* Identity provider and invalid enforcement. */
	{ "idp, enrolled",
	  { .enforcement = IDP, .allowed_methods = M_ALL }, { .has_totp = true },
	  { PASSWORD_ONLY, R_IDP, M_NONE, false, false, false } },
	{ "idp, no method allowed",
	  { .enforcement = IDP, .allowed_methods = M_NONE }, { 0 },
	  { PASSWORD_ONLY, R_IDP, M_NONE, false, false, false } },
	{ "invalid enforcement, not enrolled",
	  { .enforcement = REQUIRED, .enforcement_invalid = true, .allowed_methods = M_ALL }, { 0 },
	  { ENROLL, R_NOT_ENROLLED, M_NONE, false, false, false } },
	{ "invalid enforcement, totp",
	  { .enforcement = REQUIRED, .enforcement_invalid = true, .allowed_methods = M_ALL }, { .has_totp = true },
	  { CHALLENGE, R_ENROLLED, M_TOTP, false, false, false } },
	{ "invalid flag beats optional field",
	  { .enforcement = OPTIONAL, .enforcement_invalid = true, .allowed_methods = M_ALL }, { 0 },
	  { ENROLL, R_NOT_ENROLLED, M_NONE, false, false, false } },
	{ "out-of-range enforcement is required",
	  { .enforcement = (twostep_enforcement_t)7, .allowed_methods = M_ALL }, { 0 },
	  { ENROLL, R_NOT_ENROLLED, M_NONE, false, false, false } },

	/* Required group. */
	{ "required group over optional",
	  { .enforcement = OPTIONAL, .allowed_methods = M_ALL }, { .in_required_group = true },
	  { ENROLL, R_NOT_ENROLLED, M_NONE, false, true, false } },
	{ "required group over idp",
	  { .enforcement = IDP, .allowed_methods = M_ALL }, { .in_required_group = true, .has_totp = true },
	  { CHALLENGE, R_ENROLLED, M_TOTP, false, true, false } },
	{ "required group, policy required too",
	  { .enforcement = REQUIRED, .allowed_methods = M_ALL }, { .in_required_group = true },
	  { ENROLL, R_NOT_ENROLLED, M_NONE, false, true, false } },
	{ "required group, no method allowed",
	  { .enforcement = OPTIONAL, .allowed_methods = M_NONE }, { .in_required_group = true },
	  { REJECT, R_NO_METHOD_ALLOWED, M_NONE, false, true, false } },

	/* Exempt flag and exempt-until. */
	{ "exempt, no end",
	  { .enforcement = REQUIRED, .allowed_methods = M_ALL }, { .exempt = true, .has_totp = true },
	  { PASSWORD_ONLY, R_EXEMPT, M_NONE, false, false, false } },
	{ "exempt, ends in 1 s",
	  { .enforcement = REQUIRED, .allowed_methods = M_ALL }, { .exempt = true, .exempt_until = NOW + 1 },
	  { PASSWORD_ONLY, R_EXEMPT, M_NONE, false, false, false } },
	{ "exempt, ends now: expired",
	  { .enforcement = REQUIRED, .allowed_methods = M_ALL },
	  { .exempt = true, .exempt_until = NOW, .has_totp = true },
	  { CHALLENGE, R_ENROLLED, M_TOTP, false, false, true } },
	{ "exempt, ended 1 s ago",
	  { .enforcement = REQUIRED, .allowed_methods = M_ALL, .enroll_deadline = NOW + 1 },
	  { .exempt = true, .exempt_until = NOW - 1 },
	  { ENROLL, R_NOT_ENROLLED, M_NONE, true, false, true } },
	{ "exempt-until without the flag",
	  { .enforcement = REQUIRED, .allowed_methods = M_ALL }, { .exempt_until = NOW + 1 },
	  { ENROLL, R_NOT_ENROLLED, M_NONE, false, false, false } },
	{ "exempt flag on idp policy",
	  { .enforcement = IDP, .allowed_methods = M_ALL }, { .exempt = true },
	  { PASSWORD_ONLY, R_EXEMPT, M_NONE, false, false, false } },
	{ "exempt flag, no method allowed",
	  { .enforcement = REQUIRED, .allowed_methods = M_NONE }, { .exempt = true },
	  { PASSWORD_ONLY, R_EXEMPT, M_NONE, false, false, false } },
	{ "exempt flag wins over required group",
	  { .enforcement = REQUIRED, .allowed_methods = M_ALL }, { .exempt = true, .in_required_group = true },
	  { PASSWORD_ONLY, R_EXEMPT, M_NONE, false, true, false } },
	{ "expired flag and required group",
	  { .enforcement = OPTIONAL, .allowed_methods = M_ALL },
	  { .exempt = true, .exempt_until = NOW - 1, .in_required_group = true },
	  { ENROLL, R_NOT_ENROLLED, M_NONE, false, true, true } },

	/* Exemption group. */
	{ "exempt group",
	  { .enforcement = REQUIRED, .allowed_methods = M_ALL }, { .in_exempt_group = true, .has_totp = true },
	  { PASSWORD_ONLY, R_EXEMPT_GROUP, M_NONE, false, false, false } },
	{ "exempt group wins over required group",
	  { .enforcement = OPTIONAL, .allowed_methods = M_ALL },
	  { .in_exempt_group = true, .in_required_group = true, .has_totp = true },
	  { PASSWORD_ONLY, R_EXEMPT_GROUP, M_NONE, false, true, false } },
	{ "exempt group, no method allowed",
	  { .enforcement = REQUIRED, .allowed_methods = M_NONE }, { .in_exempt_group = true },
	  { PASSWORD_ONLY, R_EXEMPT_GROUP, M_NONE, false, false, false } },
	{ "exempt group, expired flag",
	  { .enforcement = REQUIRED, .allowed_methods = M_ALL },
	  { .exempt = true, .exempt_until = NOW, .in_exempt_group = true },
	  { PASSWORD_ONLY, R_EXEMPT_GROUP, M_NONE, false, false, true } },
	{ "exempt group on idp policy",
	  { .enforcement = IDP, .allowed_methods = M_ALL }, { .in_exempt_group = true },
	  { PASSWORD_ONLY, R_EXEMPT_GROUP, M_NONE, false, false, false } },
};

/*
 *	Decision: reference.
 */

/** The rules of policy.h, written out again for comparison, without the implementation's helpers. */
static twostep_policy_result_t reference_decide(twostep_policy_t const *policy, twostep_policy_user_t const *user,
						int64_t now)
{
	twostep_policy_result_t	r = { .method = M_NONE };
	bool			flag_active = user->exempt && (user->exempt_until == 0 || now < user->exempt_until);
	bool			totp_enrolled = user->has_totp;
	bool			sms_enrolled = user->method == M_SMS && user->has_phone;
	bool			totp_allowed = (policy->allowed_methods & M_TOTP) != 0;
	bool			sms_allowed = (policy->allowed_methods & M_SMS) != 0;
	bool			totp_usable = totp_enrolled && totp_allowed;
	bool			sms_usable = sms_enrolled && sms_allowed;
	bool			idp = policy->enforcement == IDP && !policy->enforcement_invalid;
	bool			optional = policy->enforcement == OPTIONAL && !policy->enforcement_invalid;

	r.required_by_group = user->in_required_group;
	if (flag_active) {
		r.decision = PASSWORD_ONLY;
		r.reason = R_EXEMPT;
		return r;
	}
	r.exemption_expired = user->exempt;

	if (user->in_exempt_group) {
		r.decision = PASSWORD_ONLY;
		r.reason = R_EXEMPT_GROUP;
	} else if (idp && !user->in_required_group) {
		r.decision = PASSWORD_ONLY;
		r.reason = R_IDP;
	} else if (totp_usable || sms_usable) {
		r.decision = CHALLENGE;
		r.reason = R_ENROLLED;
		if (user->method == M_SMS && sms_usable) {
			r.method = M_SMS;
		} else if (totp_usable) {
			r.method = M_TOTP;
		} else {
			r.method = M_SMS;
		}
	} else if (optional && !user->in_required_group) {
		r.decision = PASSWORD_ONLY;
		r.reason = R_OPTIONAL_NOT_ENROLLED;
	} else if (!totp_allowed && !sms_allowed) {
		r.decision = REJECT;
		r.reason = R_NO_METHOD_ALLOWED;
	} else {
		r.decision = ENROLL;
		r.reason = (totp_enrolled || sms_enrolled) ? R_METHOD_NOT_ALLOWED : R_NOT_ENROLLED;
		r.can_skip = policy->enroll_deadline > now;
		if (policy->enroll_deadline == 0) r.can_skip = false;
	}

	return r;
}

static char const *decision_name(twostep_decision_t decision)
{
	switch (decision) {
	case PASSWORD_ONLY:	return "password-only";
	case CHALLENGE:		return "challenge";
	case ENROLL:		return "enroll";
	case REJECT:		return "reject";
	}
	return "?";
}

/** Fail on the first field that differs, naming the case and the field. */
static void check_result(char const *name, twostep_policy_result_t const *got, twostep_policy_result_t const *want)
{
	if (got->decision != want->decision) {
		fail_msg("%s: decision %s, want %s", name, decision_name(got->decision), decision_name(want->decision));
	}
	if (got->reason != want->reason) {
		fail_msg("%s: reason %s, want %s", name, twostep_policy_reason_name(got->reason),
			 twostep_policy_reason_name(want->reason));
	}
	if (got->method != want->method) fail_msg("%s: method %d, want %d", name, got->method, want->method);
	if (got->can_skip != want->can_skip) fail_msg("%s: can_skip %d, want %d", name, got->can_skip, want->can_skip);
	if (got->required_by_group != want->required_by_group) {
		fail_msg("%s: required_by_group %d, want %d", name, got->required_by_group, want->required_by_group);
	}
	if (got->exemption_expired != want->exemption_expired) {
		fail_msg("%s: exemption_expired %d, want %d", name, got->exemption_expired, want->exemption_expired);
	}
}

/** Run the decision on a result buffer filled with 0x01 bytes, so a field it leaves unset fails the check. */
static twostep_policy_result_t decide(twostep_policy_t const *policy, twostep_policy_user_t const *user, int64_t now)
{
	twostep_policy_result_t result;

	memset(&result, 0x01, sizeof(result));
	twostep_policy_decide(&result, policy, user, now);
	return result;
}

static void test_decide_named(void **state)
{
	size_t i;

	(void)state;

	for (i = 0; i < sizeof(decide_cases) / sizeof(decide_cases[0]); i++) {
		twostep_policy_result_t got = decide(&decide_cases[i].policy, &decide_cases[i].user, NOW);

		check_result(decide_cases[i].name, &got, &decide_cases[i].want);
	}
}

/** Check the reference against the named table too, so a mistake in the reference shows up there. */
static void test_reference_named(void **state)
{
	size_t i;

	(void)state;

	for (i = 0; i < sizeof(decide_cases) / sizeof(decide_cases[0]); i++) {
		twostep_policy_result_t got = reference_decide(&decide_cases[i].policy, &decide_cases[i].user, NOW);

		check_result(decide_cases[i].name, &got, &decide_cases[i].want);
	}
}

/*
 *	Decision: every combination.
 */

typedef struct {
	char const		*name;
	twostep_enforcement_t	enforcement;
	bool			invalid;
} enforcement_choice_t;

static enforcement_choice_t const enforcement_choices[] = {
	{ "optional", OPTIONAL, false },
	{ "required", REQUIRED, false },
	{ "idp", IDP, false },
	{ "invalid", REQUIRED, true },	/* as twostep_policy_parse_enforcement() leaves it */
};

typedef struct {
	char const	*name;
	int64_t		offset;		//!< From NOW; unused when absent.
	bool		absent;
} time_choice_t;

static time_choice_t const time_choices[] = {
	{ "absent", 0, true },
	{ "past by 1 s", -1, false },
	{ "now", 0, false },
	{ "future by 1 s", 1, false },
};

typedef struct {
	char const		*name;
	bool			has_totp;
	bool			has_phone;
	twostep_policy_method_t	method;
} enrollment_choice_t;

static enrollment_choice_t const enrollment_choices[] = {
	{ "none", false, false, M_NONE },
	{ "totp", true, false, M_NONE },
	{ "totp, method totp", true, false, M_TOTP },
	{ "sms with phone", false, true, M_SMS },
	{ "sms without phone", false, false, M_SMS },
	{ "phone without method", false, true, M_NONE },
	{ "method totp without seed", false, true, M_TOTP },
	{ "both, prefers sms", true, true, M_SMS },
	{ "totp and phone, prefers totp", true, true, M_TOTP },
	{ "totp and phone, no method", true, true, M_NONE },
	{ "totp, sms without phone", true, false, M_SMS },
};

typedef struct {
	char const	*name;
	unsigned int	methods;
} allowed_choice_t;

static allowed_choice_t const allowed_choices[] = {
	{ "all", M_ALL },
	{ "totp only", M_TOTP },
	{ "sms only", M_SMS },
	{ "none", M_NONE },
};

#define COUNT(_a)	(sizeof(_a) / sizeof((_a)[0]))

static void test_decide_all_combinations(void **state)
{
	size_t	e, flag, until, group, enr, allow, dl;
	size_t	reasons_seen[NUM_REASONS] = { 0 };
	size_t	combinations = 0;
	int	r;

	(void)state;

	for (e = 0; e < COUNT(enforcement_choices); e++)
	for (flag = 0; flag < 2; flag++)
	for (until = 0; until < COUNT(time_choices); until++)
	for (group = 0; group < 4; group++)
	for (enr = 0; enr < COUNT(enrollment_choices); enr++)
	for (allow = 0; allow < COUNT(allowed_choices); allow++)
	for (dl = 0; dl < COUNT(time_choices); dl++) {
		twostep_policy_t	policy = {
			.enforcement = enforcement_choices[e].enforcement,
			.enforcement_invalid = enforcement_choices[e].invalid,
			.enroll_deadline = time_choices[dl].absent ? 0 : NOW + time_choices[dl].offset,
			.allowed_methods = allowed_choices[allow].methods,
			.source_dn = "ou=people,dc=example,dc=org",
		};
		twostep_policy_user_t	user = {
			.exempt = flag,
			.exempt_until = time_choices[until].absent ? 0 : NOW + time_choices[until].offset,
			.in_exempt_group = (group & 1) != 0,
			.in_required_group = (group & 2) != 0,
			.has_totp = enrollment_choices[enr].has_totp,
			.has_phone = enrollment_choices[enr].has_phone,
			.method = enrollment_choices[enr].method,
		};
		twostep_policy_result_t	got = decide(&policy, &user, NOW);
		twostep_policy_result_t	want = reference_decide(&policy, &user, NOW);
		char			name[512];

		snprintf(name, sizeof(name),
			 "enforcement %s, exempt %s until %s, exempt group %d, required group %d, "
			 "enrollment \"%s\", allowed %s, deadline %s",
			 enforcement_choices[e].name, flag ? "yes" : "no", time_choices[until].name,
			 (int)(group & 1), (int)((group & 2) >> 1), enrollment_choices[enr].name,
			 allowed_choices[allow].name, time_choices[dl].name);
		check_result(name, &got, &want);

		if ((int)got.reason >= 0 && got.reason < NUM_REASONS) reasons_seen[got.reason]++;
		combinations++;
	}

	assert_int_equal(combinations, COUNT(enforcement_choices) * 2 * COUNT(time_choices) * 4 *
			 COUNT(enrollment_choices) * COUNT(allowed_choices) * COUNT(time_choices));
	for (r = 0; r < NUM_REASONS; r++) {
		if (reasons_seen[r] == 0) fail_msg("reason %s never decided", twostep_policy_reason_name(r));
	}
}

/** Times before 1970 and near INT64_MAX follow the same rules, with no overflow. */
static void test_decide_extreme_times(void **state)
{
	twostep_policy_t	policy = { .enforcement = REQUIRED, .allowed_methods = M_ALL, .enroll_deadline = INT64_MAX };
	twostep_policy_user_t	user = { .exempt = true, .exempt_until = -1 };
	twostep_policy_result_t	got, want;

	(void)state;

	got = decide(&policy, &user, -2);
	want = (twostep_policy_result_t){ PASSWORD_ONLY, R_EXEMPT, M_NONE, false, false, false };
	check_result("exempt until 1969, now earlier", &got, &want);

	got = decide(&policy, &user, INT64_MAX - 1);
	want = (twostep_policy_result_t){ ENROLL, R_NOT_ENROLLED, M_NONE, true, false, true };
	check_result("deadline at INT64_MAX", &got, &want);
}

static void test_reason_names(void **state)
{
	static char const *const names[NUM_REASONS] = {
		[TWOSTEP_REASON_EXEMPT] = "exempt",
		[TWOSTEP_REASON_EXEMPT_GROUP] = "exempt-group",
		[TWOSTEP_REASON_IDP] = "idp",
		[TWOSTEP_REASON_OPTIONAL_NOT_ENROLLED] = "optional-not-enrolled",
		[TWOSTEP_REASON_ENROLLED] = "enrolled",
		[TWOSTEP_REASON_NOT_ENROLLED] = "not-enrolled",
		[TWOSTEP_REASON_METHOD_NOT_ALLOWED] = "method-not-allowed",
		[TWOSTEP_REASON_NO_METHOD_ALLOWED] = "no-method-allowed",
	};
	int r;

	(void)state;

	for (r = 0; r < NUM_REASONS; r++) {
		assert_non_null(names[r]);
		assert_string_equal(twostep_policy_reason_name((twostep_reason_t)r), names[r]);
	}
	assert_string_equal(twostep_policy_reason_name((twostep_reason_t)NUM_REASONS), "unknown");
	assert_string_equal(twostep_policy_reason_name((twostep_reason_t)-1), "unknown");
}

/*
 *	Parsers.
 */

typedef struct {
	char const		*in;
	int			ret;
	twostep_enforcement_t	out;
} enforcement_case_t;

static enforcement_case_t const enforcement_cases[] = {
	{ "required",		0,	REQUIRED },
	{ "optional",		0,	OPTIONAL },
	{ "idp",		0,	IDP },
	{ "REQUIRED",		0,	REQUIRED },
	{ "Optional",		0,	OPTIONAL },
	{ "IdP",		0,	IDP },
	{ "",			-1,	REQUIRED },
	{ NULL,			-1,	REQUIRED },
	{ " optional",		-1,	REQUIRED },
	{ "optional ",		-1,	REQUIRED },
	{ "optional\n",		-1,	REQUIRED },
	{ "option",		-1,	REQUIRED },
	{ "optionally",		-1,	REQUIRED },
	{ "idp\0x",		0,	IDP },		/* the C string ends at the NUL */
	{ "off",		-1,	REQUIRED },
	{ "none",		-1,	REQUIRED },
	{ "0",			-1,	REQUIRED },
	{ "OPT\xc4\xb0ONAL",	-1,	REQUIRED },	/* dotted capital I (UTF-8) is not ASCII I */
};

static void test_parse_enforcement(void **state)
{
	size_t i;

	(void)state;

	for (i = 0; i < COUNT(enforcement_cases); i++) {
		twostep_enforcement_t	out = OPTIONAL;
		int			ret;

		/* Start from a value other than the expected one, so the parser must write it. */
		if (enforcement_cases[i].out == OPTIONAL) out = IDP;
		ret = twostep_policy_parse_enforcement(&out, enforcement_cases[i].in);
		if (ret != enforcement_cases[i].ret || out != enforcement_cases[i].out) {
			fail_msg("enforcement \"%s\": got %d and %d, want %d and %d",
				 enforcement_cases[i].in ? enforcement_cases[i].in : "(null)",
				 ret, out, enforcement_cases[i].ret, enforcement_cases[i].out);
		}
	}
}

typedef struct {
	char const		*in;
	twostep_policy_method_t	out;
} method_case_t;

static method_case_t const method_cases[] = {
	{ "totp",	M_TOTP },
	{ "TOTP",	M_TOTP },
	{ "Totp",	M_TOTP },
	{ "sms",	M_SMS },
	{ "SMS",	M_SMS },
	{ "sMs",	M_SMS },
	{ "",		M_NONE },
	{ NULL,		M_NONE },
	{ " totp",	M_NONE },
	{ "sms ",	M_NONE },
	{ "tot",	M_NONE },
	{ "totpx",	M_NONE },
	{ "hotp",	M_NONE },
	{ "email",	M_NONE },
	{ "all",	M_NONE },
	{ "none",	M_NONE },
};

static void test_parse_method(void **state)
{
	size_t i;

	(void)state;

	for (i = 0; i < COUNT(method_cases); i++) {
		twostep_policy_method_t got = twostep_policy_parse_method(method_cases[i].in);

		if (got != method_cases[i].out) {
			fail_msg("method \"%s\": got %d, want %d",
				 method_cases[i].in ? method_cases[i].in : "(null)", got, method_cases[i].out);
		}
	}
}

typedef struct {
	char const	*in;
	int		out;
} bool_case_t;

static bool_case_t const bool_cases[] = {
	{ "TRUE",	1 },
	{ "FALSE",	0 },
	{ "true",	-1 },
	{ "True",	-1 },
	{ "false",	-1 },
	{ "TRUE ",	-1 },
	{ " FALSE",	-1 },
	{ "TRUEX",	-1 },
	{ "TRU",	-1 },
	{ "1",		-1 },
	{ "0",		-1 },
	{ "yes",	-1 },
	{ "",		-1 },
	{ NULL,		-1 },
};

static void test_parse_bool(void **state)
{
	size_t i;

	(void)state;

	for (i = 0; i < COUNT(bool_cases); i++) {
		int got = twostep_policy_parse_bool(bool_cases[i].in);

		if (got != bool_cases[i].out) {
			fail_msg("Boolean \"%s\": got %d, want %d",
				 bool_cases[i].in ? bool_cases[i].in : "(null)", got, bool_cases[i].out);
		}
	}
}

typedef struct {
	char const	*in;
	int		ret;
	int64_t		out;	//!< Seconds since the epoch, when ret is 0.
} time_case_t;

static time_case_t const time_cases[] = {
	/* Precision: seconds, minutes or hours. */
	{ "20261231235959Z",		0,	1798761599 },
	{ "202612312359Z",		0,	1798761540 },
	{ "2026123123Z",		0,	1798758000 },
	{ "20260101000000Z",		0,	NOW },
	{ "19700101000000Z",		0,	0 },
	{ "19691231235959Z",		0,	-1 },

	/* Fractions are checked, then dropped. */
	{ "20240229123045.123Z",	0,	1709209845 },
	{ "20240229123045,5Z",		0,	1709209845 },
	{ "20240229123045.999999999999999999999Z", 0, 1709209845 },
	{ "202612312359.5Z",		0,	1798761540 },
	{ "2026123123.5Z",		0,	1798758000 },
	{ "20240229123045.Z",		-1,	0 },
	{ "20240229123045,Z",		-1,	0 },
	{ "20240229123045.5.5Z",	-1,	0 },
	{ "20240229123045.x5Z",		-1,	0 },

	/* Offsets: local time minus UTC. */
	{ "20260101000000+0100",	0,	NOW - 3600 },
	{ "20260101000000-0130",	0,	NOW + 5400 },
	{ "20260101000000+01",		0,	NOW - 3600 },
	{ "20260101000000-2359",	0,	NOW + 86340 },
	{ "20260101000000+0000",	0,	NOW },
	{ "20260101000000-0000",	0,	NOW },
	{ "2026010100+0530",		0,	NOW - 19800 },
	{ "20260101000000.5-0100",	0,	NOW + 3600 },
	{ "20260101000000+2400",	-1,	0 },
	{ "20260101000000+0160",	-1,	0 },
	{ "20260101000000+1",		-1,	0 },
	{ "20260101000000+013",		-1,	0 },
	{ "20260101000000+01000",	-1,	0 },
	{ "20260101000000+",		-1,	0 },
	{ "20260101000000 +0100",	-1,	0 },

	/* Calendar: days per month and leap years. */
	{ "20240229000000Z",		0,	1709164800 },
	{ "20000229000000Z",		0,	951782400 },
	{ "19000301000000Z",		0,	-2203891200 },
	{ "21000228235959Z",		0,	4107542399 },
	{ "20230229000000Z",		-1,	0 },
	{ "19000229000000Z",		-1,	0 },
	{ "21000229000000Z",		-1,	0 },
	{ "20260431000000Z",		-1,	0 },
	{ "20260631000000Z",		-1,	0 },
	{ "20260930000000Z",		0,	1790726400 },
	{ "20261301000000Z",		-1,	0 },
	{ "20260001000000Z",		-1,	0 },
	{ "20260100000000Z",		-1,	0 },
	{ "20260132000000Z",		-1,	0 },
	{ "00000101000000Z",		0,	-62167219200 },
	{ "00010101000000Z",		0,	-62135596800 },
	{ "99991231235959Z",		0,	253402300799 },

	/* Clock ranges. */
	{ "20260101240000Z",		-1,	0 },
	{ "2026010124Z",		-1,	0 },
	{ "20260101236000Z",		-1,	0 },
	{ "20260101235961Z",		-1,	0 },
	{ "20161231235960Z",		0,	1483228800 },	/* leap second: the next minute */

	/* Shape. */
	{ "",				-1,	0 },
	{ "Z",				-1,	0 },
	{ "20260101000000",		-1,	0 },		/* the zone is mandatory */
	{ "20260101000000z",		-1,	0 },
	{ "20260101000000Zx",		-1,	0 },
	{ "20260101000000Z ",		-1,	0 },
	{ "20260101000000ZZ",		-1,	0 },
	{ " 20260101000000Z",		-1,	0 },
	{ "202601010Z",			-1,	0 },
	{ "20260101000Z",		-1,	0 },
	{ "2026010100000Z",		-1,	0 },
	{ "2026010100000000Z",		-1,	0 },
	{ "202601Z",			-1,	0 },
	{ "2026-01-01T00:00:00Z",	-1,	0 },
	{ "+2026010100Z",		-1,	0 },
	{ "20260101\xd9\xa1\xd9\xa2Z",	-1,	0 },		/* Arabic-Indic digits are not ASCII digits */
};

static void test_parse_time_table(void **state)
{
	size_t i;

	(void)state;

	for (i = 0; i < COUNT(time_cases); i++) {
		int64_t	out = 0;
		int	ret = twostep_policy_parse_time(&out, time_cases[i].in);

		if (ret != time_cases[i].ret) {
			fail_msg("time \"%s\": got %d, want %d", time_cases[i].in, ret, time_cases[i].ret);
		}
		if (ret == 0 && out != time_cases[i].out) {
			fail_msg("time \"%s\": got %lld, want %lld", time_cases[i].in,
				 (long long)out, (long long)time_cases[i].out);
		}
	}

	assert_int_equal(twostep_policy_parse_time(&(int64_t){ 0 }, NULL), -1);
}

/** Every day of 1969 to 2101 and of a few far years, compared with glibc's timegm(). */
static void test_parse_time_every_day(void **state)
{
	static int const far_years[] = { 1, 400, 1600, 1899, 2400, 9999 };
	int year;

	(void)state;

	for (year = 1969; year <= 2101 + (int)COUNT(far_years); year++) {
		int	y = year <= 2101 ? year : far_years[year - 2102];
		int	month, day;

		for (month = 1; month <= 12; month++) {
			for (day = 1; day <= 31; day++) {
				struct tm	tm = { .tm_year = y - 1900, .tm_mon = month - 1, .tm_mday = day,
						       .tm_hour = 13, .tm_min = 14, .tm_sec = 15 };
				time_t		want = timegm(&tm);
				bool		valid = tm.tm_mday == day;	/* timegm() moved an impossible date */
				char		in[32];
				int64_t		out = 0;
				int		ret;

				snprintf(in, sizeof(in), "%04d%02d%02d131415Z", y, month, day);
				ret = twostep_policy_parse_time(&out, in);
				if (ret != (valid ? 0 : -1)) fail_msg("time \"%s\": got %d, want %d", in, ret, valid ? 0 : -1);
				if (valid && out != (int64_t)want) {
					fail_msg("time \"%s\": got %lld, want %lld", in, (long long)out, (long long)want);
				}
			}
		}
	}
}

/** The result does not depend on TZ: a zone 13:45 ahead of UTC changes nothing. */
static void test_parse_time_ignores_tz(void **state)
{
	char const	*old = getenv("TZ");
	char		*saved = old ? strdup(old) : NULL;
	int64_t		out = 0;

	(void)state;

	setenv("TZ", "XYZ-13:45", 1);
	tzset();
	assert_int_equal(twostep_policy_parse_time(&out, "20260101000000Z"), 0);
	assert_int_equal(out, NOW);
	assert_int_equal(twostep_policy_parse_time(&out, "20260101134500+1345"), 0);
	assert_int_equal(out, NOW);

	if (saved) {
		setenv("TZ", saved, 1);
		free(saved);
	} else {
		unsetenv("TZ");
	}
	tzset();
}

int main(void)
{
	struct CMUnitTest const tests[] = {
		cmocka_unit_test(test_decide_named),
		cmocka_unit_test(test_reference_named),
		cmocka_unit_test(test_decide_all_combinations),
		cmocka_unit_test(test_decide_extreme_times),
		cmocka_unit_test(test_reason_names),
		cmocka_unit_test(test_parse_enforcement),
		cmocka_unit_test(test_parse_method),
		cmocka_unit_test(test_parse_bool),
		cmocka_unit_test(test_parse_time_table),
		cmocka_unit_test(test_parse_time_every_day),
		cmocka_unit_test(test_parse_time_ignores_tz),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
