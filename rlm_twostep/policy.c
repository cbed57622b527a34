/*
 * policy.c: the two-step verification decision and the parsers of the
 * policy's LDAP values.
 *
 * twostep_policy_decide() applies its rules in a fixed order, and the first
 * rule that matches decides. docs/policy.md lists the same rules for
 * administrators.
 */
#include <stddef.h>
#include <string.h>

#include "policy.h"

/** Compare two strings, ignoring the case of ASCII letters only, so the result does not depend on the locale. */
static bool ascii_equal_nocase(char const *a, char const *b)
{
	for (; *a && *b; a++, b++) {
		unsigned char ca = (unsigned char)*a;
		unsigned char cb = (unsigned char)*b;

		if (ca >= 'A' && ca <= 'Z') ca += 'a' - 'A';
		if (cb >= 'A' && cb <= 'Z') cb += 'a' - 'A';
		if (ca != cb) return false;
	}

	return *a == *b;
}

/** True for TOTP or SMS alone: a method that a challenge can use. */
static bool is_single_method(twostep_policy_method_t method)
{
	return (method == TWOSTEP_POLICY_METHOD_TOTP) || (method == TWOSTEP_POLICY_METHOD_SMS);
}

/** Return the methods the user has set up. A phone number alone does not count as SMS enrollment. */
static unsigned int enrolled_methods(twostep_policy_user_t const *user)
{
	unsigned int enrolled = TWOSTEP_POLICY_METHOD_NONE;

	if (user->has_totp) enrolled |= TWOSTEP_POLICY_METHOD_TOTP;
	if ((user->method == TWOSTEP_POLICY_METHOD_SMS) && user->has_phone) enrolled |= TWOSTEP_POLICY_METHOD_SMS;

	return enrolled;
}

/** Choose the challenge method from a non-empty set: the user's preferred one, else TOTP, else SMS. */
static twostep_policy_method_t choose_method(unsigned int usable, twostep_policy_method_t preferred)
{
	if (is_single_method(preferred) && (usable & preferred)) return preferred;
	if (usable & TWOSTEP_POLICY_METHOD_TOTP) return TWOSTEP_POLICY_METHOD_TOTP;

	return TWOSTEP_POLICY_METHOD_SMS;
}

static void set_outcome(twostep_policy_result_t *result, twostep_decision_t decision, twostep_reason_t reason)
{
	result->decision = decision;
	result->reason = reason;
}

void twostep_policy_decide(twostep_policy_result_t *result, twostep_policy_t const *policy,
			   twostep_policy_user_t const *user, int64_t now)
{
	twostep_enforcement_t	enforcement;
	unsigned int		allowed, enrolled, usable;

	memset(result, 0, sizeof(*result));
	result->method = TWOSTEP_POLICY_METHOD_NONE;

	/*
	 *	Both exemptions win over the "2SV required" group.
	 *	required_by_group lets the caller log that they did.
	 */
	result->required_by_group = user->in_required_group;

	/* The exempt flag, with an optional end. An end equal to now has passed. */
	if (user->exempt) {
		if ((user->exempt_until == 0) || (user->exempt_until > now)) {
			set_outcome(result, TWOSTEP_DECISION_PASSWORD_ONLY, TWOSTEP_REASON_EXEMPT);
			return;
		}
		result->exemption_expired = true;
	}

	if (user->in_exempt_group) {
		set_outcome(result, TWOSTEP_DECISION_PASSWORD_ONLY, TWOSTEP_REASON_EXEMPT_GROUP);
		return;
	}

	/*
	 *	The "2SV required" group makes 2SV required, and so does an
	 *	unknown enforcement value, whatever the enforcement field holds.
	 */
	if (user->in_required_group || policy->enforcement_invalid) {
		enforcement = TWOSTEP_ENFORCE_REQUIRED;
	} else {
		enforcement = policy->enforcement;
	}

	if (enforcement == TWOSTEP_ENFORCE_IDP) {
		set_outcome(result, TWOSTEP_DECISION_PASSWORD_ONLY, TWOSTEP_REASON_IDP);
		return;
	}

	/* Bits other than TOTP and SMS name no method, so they allow nothing. */
	allowed = policy->allowed_methods & TWOSTEP_POLICY_METHOD_ALL;
	enrolled = enrolled_methods(user);
	usable = enrolled & allowed;

	if (usable != TWOSTEP_POLICY_METHOD_NONE) {
		result->method = choose_method(usable, user->method);
		set_outcome(result, TWOSTEP_DECISION_CHALLENGE, TWOSTEP_REASON_ENROLLED);
		return;
	}

	if (enforcement == TWOSTEP_ENFORCE_OPTIONAL) {
		set_outcome(result, TWOSTEP_DECISION_PASSWORD_ONLY, TWOSTEP_REASON_OPTIONAL_NOT_ENROLLED);
		return;
	}

	/*
	 *	Required, and no usable method. Any enforcement value
	 *	other than optional and idp lands here too.
	 */
	if (allowed == TWOSTEP_POLICY_METHOD_NONE) {
		set_outcome(result, TWOSTEP_DECISION_REJECT, TWOSTEP_REASON_NO_METHOD_ALLOWED);
		return;
	}

	if (enrolled != TWOSTEP_POLICY_METHOD_NONE) {
		set_outcome(result, TWOSTEP_DECISION_ENROLL, TWOSTEP_REASON_METHOD_NOT_ALLOWED);
	} else {
		set_outcome(result, TWOSTEP_DECISION_ENROLL, TWOSTEP_REASON_NOT_ENROLLED);
	}
	result->can_skip = (policy->enroll_deadline != 0) && (now < policy->enroll_deadline);
}

char const *twostep_policy_reason_name(twostep_reason_t reason)
{
	switch (reason) {
	case TWOSTEP_REASON_EXEMPT:
		return "exempt";

	case TWOSTEP_REASON_EXEMPT_GROUP:
		return "exempt-group";

	case TWOSTEP_REASON_IDP:
		return "idp";

	case TWOSTEP_REASON_OPTIONAL_NOT_ENROLLED:
		return "optional-not-enrolled";

	case TWOSTEP_REASON_ENROLLED:
		return "enrolled";

	case TWOSTEP_REASON_NOT_ENROLLED:
		return "not-enrolled";

	case TWOSTEP_REASON_METHOD_NOT_ALLOWED:
		return "method-not-allowed";

	case TWOSTEP_REASON_NO_METHOD_ALLOWED:
		return "no-method-allowed";
	}

	return "unknown";
}

int twostep_policy_parse_enforcement(twostep_enforcement_t *out, char const *value)
{
	if (value) {
		if (ascii_equal_nocase(value, "required")) {
			*out = TWOSTEP_ENFORCE_REQUIRED;
			return 0;
		}
		if (ascii_equal_nocase(value, "optional")) {
			*out = TWOSTEP_ENFORCE_OPTIONAL;
			return 0;
		}
		if (ascii_equal_nocase(value, "idp")) {
			*out = TWOSTEP_ENFORCE_IDP;
			return 0;
		}
	}

	*out = TWOSTEP_ENFORCE_REQUIRED;
	return -1;
}

twostep_policy_method_t twostep_policy_parse_method(char const *value)
{
	if (!value) return TWOSTEP_POLICY_METHOD_NONE;
	if (ascii_equal_nocase(value, "totp")) return TWOSTEP_POLICY_METHOD_TOTP;
	if (ascii_equal_nocase(value, "sms")) return TWOSTEP_POLICY_METHOD_SMS;

	return TWOSTEP_POLICY_METHOD_NONE;
}

int twostep_policy_parse_bool(char const *value)
{
	if (!value) return -1;
	if (strcmp(value, "TRUE") == 0) return 1;
	if (strcmp(value, "FALSE") == 0) return 0;

	return -1;
}

/*
 *	GeneralizedTime.
 */

static bool is_digit(char c)
{
	return (c >= '0') && (c <= '9');
}

/** Read two ASCII digits at *p into *out and advance *p. @return false when either is not a digit. */
static bool read_two_digits(char const **p, int *out)
{
	char const *s = *p;

	if (!is_digit(s[0]) || !is_digit(s[1])) return false;

	*out = (s[0] - '0') * 10 + (s[1] - '0');
	*p = s + 2;
	return true;
}

static bool is_leap_year(int year)
{
	return ((year % 4 == 0) && (year % 100 != 0)) || (year % 400 == 0);
}

static int days_in_month(int year, int month)
{
	static int const days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	if ((month == 2) && is_leap_year(year)) return 29;

	return days[month - 1];
}

/** Return the number of leap years in [0, year), for year >= 0, in the proleptic Gregorian calendar. */
static int64_t leap_years_before(int64_t year)
{
	return (year + 3) / 4 - (year + 99) / 100 + (year + 399) / 400;
}

/** Return the days from 1970-01-01 to a valid date of the years 0000 to 9999, negative before 1970. */
static int64_t days_since_epoch(int year, int month, int day)
{
	static int const days_before_month[12] = { 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334 };
	int64_t days;

	days = 365 * ((int64_t)year - 1970) + leap_years_before(year) - leap_years_before(1970);
	days += days_before_month[month - 1];
	if ((month > 2) && is_leap_year(year)) days++;

	return days + day - 1;
}

/** Parse the zone of a GeneralizedTime: "Z", or "+hh[mm]"/"-hh[mm]" (local time minus UTC) into *offset seconds.
 *
 * @return a pointer past the zone, or NULL when it is malformed.
 */
static char const *parse_zone(char const *p, int *offset)
{
	int sign, hours, minutes = 0;

	if (*p == 'Z') {
		*offset = 0;
		return p + 1;
	}

	if (*p == '+') {
		sign = 1;
	} else if (*p == '-') {
		sign = -1;
	} else {
		return NULL;
	}
	p++;

	if (!read_two_digits(&p, &hours) || (hours > 23)) return NULL;
	if (is_digit(*p) && (!read_two_digits(&p, &minutes) || (minutes > 59))) return NULL;

	*offset = sign * (hours * 3600 + minutes * 60);
	return p;
}

int twostep_policy_parse_time(int64_t *out, char const *value)
{
	char const	*p = value;
	int		century, year_in_century, year, month, day, hour;
	int		minute = 0, second = 0, offset;

	if (!p) return -1;

	if (!read_two_digits(&p, &century) || !read_two_digits(&p, &year_in_century)) return -1;
	year = century * 100 + year_in_century;

	if (!read_two_digits(&p, &month) || (month < 1) || (month > 12)) return -1;
	if (!read_two_digits(&p, &day) || (day < 1) || (day > days_in_month(year, month))) return -1;
	if (!read_two_digits(&p, &hour) || (hour > 23)) return -1;

	/*
	 *	Minutes, then seconds, each only when the one before is
	 *	there. RFC 4517 allows second 60 for a leap second. It
	 *	counts as the first second of the next minute, as in timegm().
	 */
	if (is_digit(*p)) {
		if (!read_two_digits(&p, &minute) || (minute > 59)) return -1;

		if (is_digit(*p)) {
			if (!read_two_digits(&p, &second) || (second > 60)) return -1;
		}
	}

	/*
	 *	NOTE: the fraction is checked and then dropped, as policy.h
	 *	promises. RFC 4517 makes it a fraction of the last unit
	 *	given, so "2026010112.5Z" means 12:30, but it reads as 12:00.
	 */
	if ((*p == '.') || (*p == ',')) {
		p++;
		if (!is_digit(*p)) return -1;
		while (is_digit(*p)) p++;
	}

	p = parse_zone(p, &offset);
	if (!p || (*p != '\0')) return -1;

	*out = days_since_epoch(year, month, day) * 86400 + (int64_t)hour * 3600 + minute * 60 + second - offset;
	return 0;
}
