/*
 * test_escape.c: RFC 4515 filter and RFC 4514 DN escaping.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "escape.h"

typedef ssize_t (*escape_fn_t)(char *out, size_t outlen, char const *in);

typedef struct {
	char const	*name;
	char const	*in;
	char const	*out;
} escape_case_t;

static escape_case_t const filter_cases[] = {
	{ "plain",			"alice",		"alice" },
	{ "empty",			"",			"" },
	{ "injection",			"a*)(uid=*",		"a\\2a\\29\\28uid=\\2a" },
	{ "or injection",		"*)(|(objectClass=*)",	"\\2a\\29\\28|\\28objectClass=\\2a\\29" },
	{ "star only",			"*",			"\\2a" },
	{ "parens",			"()",			"\\28\\29" },
	{ "backslash",			"back\\slash",		"back\\5cslash" },
	{ "escaped-looking input",	"\\2a",			"\\5c2a" },
	{ "tab",			"tab\there",		"tab\\09here" },
	{ "newline",			"a\nb",			"a\\0ab" },
	{ "control bytes",		"\x01\x1f\x7f",		"\\01\\1f\\7f" },
	{ "space and 0x20..0x7e",	"a b~!",		"a b~!" },
	{ "DN specials untouched",	"a,b+c=d;\"<>#",	"a,b+c=d;\"<>#" },
	{ "UTF-8 two bytes",		"J\xc3\xbcrgen",	"J\xc3\xbcrgen" },
	{ "UTF-8 three bytes",		"\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac" },
	{ "high byte",			"\xff\x80",		"\xff\x80" },
	{ "UTF-8 next to star",		"\xc3\xa9*",		"\xc3\xa9\\2a" },
};

static escape_case_t const dn_cases[] = {
	{ "plain",			"alice",		"alice" },
	{ "empty",			"",			"" },
	{ "leading hash",		"#alice",		"\\23alice" },
	{ "inner hash",			"a#b",			"a#b" },
	{ "trailing hash",		"ab#",			"ab#" },
	{ "leading space",		" alice",		"\\20alice" },
	{ "trailing space",		"alice ",		"alice\\20" },
	{ "inner space",		"a b",			"a b" },
	{ "single space",		" ",			"\\20" },
	{ "two spaces",			"  ",			"\\20\\20" },
	{ "three spaces",		"   ",			"\\20 \\20" },
	{ "leading hash and space",	"# ",			"\\23\\20" },
	{ "comma",			"Doe, John",		"Doe\\2c John" },
	{ "plus",			"a+b",			"a\\2bb" },
	{ "quotes",			"\"quoted\"",		"\\22quoted\\22" },
	{ "semicolon and angles",	";<>",			"\\3b\\3c\\3e" },
	{ "backslash",			"a\\b",			"a\\5cb" },
	{ "equals untouched",		"a=b",			"a=b" },
	{ "filter specials untouched",	"*()",			"*()" },
	{ "control bytes",		"a\x01\x1f\x7f",	"a\\01\\1f\\7f" },
	{ "newline",			"a\nb",			"a\\0ab" },
	{ "UTF-8",			"J\xc3\xbcrgen M\xc3\xbcller", "J\xc3\xbcrgen M\xc3\xbcller" },
	{ "injection",			"x,ou=admins",		"x\\2cou=admins" },
};

static void run_cases(escape_fn_t fn, escape_case_t const *cases, size_t num)
{
	size_t i;

	for (i = 0; i < num; i++) {
		char	out[256];
		ssize_t	ret;

		memset(out, 'X', sizeof(out));
		ret = fn(out, sizeof(out), cases[i].in);
		if (ret != (ssize_t)strlen(cases[i].out) || strcmp(out, cases[i].out) != 0) {
			fail_msg("case \"%s\": got %zd \"%s\", want %zu \"%s\"",
				 cases[i].name, ret, ret >= 0 ? out : "", strlen(cases[i].out), cases[i].out);
		}
	}
}

/** Exactly enough room works; one byte less fails with an empty output. */
static void run_sizes(escape_fn_t fn, escape_case_t const *cases, size_t num)
{
	size_t i;

	for (i = 0; i < num; i++) {
		size_t	need = strlen(cases[i].out) + 1;
		char	*out;
		ssize_t	ret;

		out = test_malloc(need);	/* exact size, so an overrun is caught */
		memset(out, 'X', need);
		ret = fn(out, need, cases[i].in);
		if (ret != (ssize_t)(need - 1) || strcmp(out, cases[i].out) != 0) {
			fail_msg("case \"%s\": exact buffer of %zu bytes: got %zd", cases[i].name, need, ret);
		}

		if (need > 1) {
			memset(out, 'X', need);
			ret = fn(out, need - 1, cases[i].in);
			if (ret != -1 || out[0] != '\0') {
				fail_msg("case \"%s\": buffer of %zu bytes (one short): got %zd, out[0]=0x%02x",
					 cases[i].name, need - 1, ret, (unsigned char)out[0]);
			}
		}
		test_free(out);
	}
}

static void test_filter_table(void **state)
{
	(void)state;
	run_cases(twostep_ldap_escape_filter, filter_cases, sizeof(filter_cases) / sizeof(filter_cases[0]));
}

static void test_dn_table(void **state)
{
	(void)state;
	run_cases(twostep_ldap_escape_dn, dn_cases, sizeof(dn_cases) / sizeof(dn_cases[0]));
}

static void test_filter_sizes(void **state)
{
	(void)state;
	run_sizes(twostep_ldap_escape_filter, filter_cases, sizeof(filter_cases) / sizeof(filter_cases[0]));
}

static void test_dn_sizes(void **state)
{
	(void)state;
	run_sizes(twostep_ldap_escape_dn, dn_cases, sizeof(dn_cases) / sizeof(dn_cases[0]));
}

/** No output buffer at all, or no input: -1, and nothing written past out. */
static void test_degenerate(void **state)
{
	char	out[4] = "abc";

	(void)state;

	assert_int_equal(twostep_ldap_escape_filter(out, 0, "a"), -1);
	assert_string_equal(out, "abc");
	assert_int_equal(twostep_ldap_escape_dn(out, 0, "a"), -1);
	assert_string_equal(out, "abc");

	assert_int_equal(twostep_ldap_escape_filter(NULL, 10, "a"), -1);
	assert_int_equal(twostep_ldap_escape_dn(NULL, 10, "a"), -1);

	assert_int_equal(twostep_ldap_escape_filter(out, sizeof(out), NULL), -1);
	assert_string_equal(out, "");
	memcpy(out, "abc", 4);
	assert_int_equal(twostep_ldap_escape_dn(out, sizeof(out), NULL), -1);
	assert_string_equal(out, "");

	/* Empty input into a one-byte buffer. */
	assert_int_equal(twostep_ldap_escape_filter(out, 1, ""), 0);
	assert_string_equal(out, "");
	assert_int_equal(twostep_ldap_escape_dn(out, 1, ""), 0);
	assert_string_equal(out, "");
}

/** Every byte value 1..255 alone: escaped exactly when the RFC (or our control rule) says so. */
static void test_every_byte(void **state)
{
	unsigned int c;

	(void)state;

	for (c = 1; c < 256; c++) {
		char	in[2] = { (char)c, '\0' };
		char	out[8];
		int	filter_special = (c == '*' || c == '(' || c == ')' || c == '\\' || c < 0x20 || c == 0x7f);
		int	dn_special = (c == '"' || c == '+' || c == ',' || c == ';' || c == '<' || c == '>' ||
				      c == '\\' || c == '#' || c == ' ' || c < 0x20 || c == 0x7f);
		ssize_t	ret;

		ret = twostep_ldap_escape_filter(out, sizeof(out), in);
		if (ret != (filter_special ? 3 : 1)) fail_msg("filter byte 0x%02x: got %zd", c, ret);
		if (filter_special && (out[0] != '\\' || strtoul(out + 1, NULL, 16) != c)) {
			fail_msg("filter byte 0x%02x: got \"%s\"", c, out);
		}

		ret = twostep_ldap_escape_dn(out, sizeof(out), in);
		if (ret != (dn_special ? 3 : 1)) fail_msg("DN byte 0x%02x: got %zd", c, ret);
		if (dn_special && (out[0] != '\\' || strtoul(out + 1, NULL, 16) != c)) {
			fail_msg("DN byte 0x%02x: got \"%s\"", c, out);
		}
	}
}

int main(void)
{
	struct CMUnitTest const tests[] = {
		cmocka_unit_test(test_filter_table),
		cmocka_unit_test(test_dn_table),
		cmocka_unit_test(test_filter_sizes),
		cmocka_unit_test(test_dn_sizes),
		cmocka_unit_test(test_degenerate),
		cmocka_unit_test(test_every_byte),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
