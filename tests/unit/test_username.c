/*
 * test_username.c: User-Name normalisation and the case rule parser.
 *
 * Rules settled here, beyond the header:
 * - A realm is cut at the last '@', so "a@b@c" becomes "a@b".
 * - The "DOMAIN\" prefix is cut before the realm, at the last backslash of
 *   the whole name, so "a@b\c" becomes "c".
 * - A control byte anywhere in the input rejects it, even where trimming
 *   would have removed it.
 * - parse_case takes the three words in lower case only.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "username.h"

/* Short names, so the table rows fit on a line. */
#define KEEP	TWOSTEP_CASE_KEEP
#define LOWER	TWOSTEP_CASE_LOWER
#define UPPER	TWOSTEP_CASE_UPPER

typedef struct {
	char const	*name;
	char const	*in;
	twostep_case_t	case_rule;
	bool		strip_realm;
	char const	*want;		//!< NULL when -1 is expected.
} normalise_case_t;

static normalise_case_t const normalise_cases[] = {
	/* Case rules. */
	{ "lower",				"ALICE",			LOWER,	false,	"alice" },
	{ "upper",				"alice",			UPPER,	false,	"ALICE" },
	{ "keep",				"AlIcE",			KEEP,	false,	"AlIcE" },
	{ "lower mixed with digits",		"Alice.Smith-42_X",		LOWER,	false,	"alice.smith-42_x" },
	{ "upper leaves punctuation",		"a.b-c_d+e",			UPPER,	false,	"A.B-C_D+E" },

	/* Trimming. */
	{ "spaces both ends",			" alice ",			KEEP,	false,	"alice" },
	{ "many spaces both ends",		"   alice   ",			LOWER,	false,	"alice" },
	{ "inner space kept",			"alice smith",			KEEP,	false,	"alice smith" },
	{ "only spaces",			"   ",				KEEP,	false,	NULL },
	{ "empty",				"",				KEEP,	false,	NULL },

	/* Realm and domain stripping. */
	{ "realm stripped",			"alice@example.org",		KEEP,	true,	"alice" },
	{ "realm kept",				"alice@example.org",		KEEP,	false,	"alice@example.org" },
	{ "realm kept, lowered",		"Alice@Example.ORG",		LOWER,	false,	"alice@example.org" },
	{ "realm stripped, lowered",		"Alice@Example.ORG",		LOWER,	true,	"alice" },
	{ "domain stripped",			"EXAMPLE\\alice",		KEEP,	true,	"alice" },
	{ "domain kept",			"EXAMPLE\\alice",		KEEP,	false,	"EXAMPLE\\alice" },
	{ "domain and realm stripped",		"EXAMPLE\\alice@example.org",	KEEP,	true,	"alice" },
	{ "domain, realm, lower",		"EXAMPLE\\ALICE@EXAMPLE.ORG",	LOWER,	true,	"alice" },
	{ "realm from last at sign",		"a@b@c",			KEEP,	true,	"a@b" },
	{ "domain to last backslash",		"A\\B\\alice",			KEEP,	true,	"alice" },
	{ "backslash after at sign",		"a@b\\c",			KEEP,	true,	"c" },
	{ "realm alone",			"@realm",			KEEP,	true,	NULL },
	{ "realm alone, not stripped",		"@realm",			KEEP,	false,	"@realm" },
	{ "backslash alone",			"\\",				KEEP,	true,	NULL },
	{ "domain alone",			"EXAMPLE\\",			KEEP,	true,	NULL },
	{ "domain and realm only",		"EXAMPLE\\@example.org",	KEEP,	true,	NULL },
	{ "at sign alone",			"@",				KEEP,	true,	NULL },
	{ "space before realm",			"alice @x",			KEEP,	true,	"alice" },
	{ "space after domain",			"EXAMPLE\\ alice",		KEEP,	true,	"alice" },
	{ "spaces around all parts",		" EXAMPLE\\ alice @x ",		LOWER,	true,	"alice" },
	{ "space before realm, not stripped",	"alice @x",			KEEP,	false,	"alice @x" },

	/* Control bytes, anywhere in the input. */
	{ "inner tab",				"ali\tce",			KEEP,	false,	NULL },
	{ "inner newline",			"ali\nce",			KEEP,	false,	NULL },
	{ "trailing newline",			"alice\n",			KEEP,	false,	NULL },
	{ "leading tab",			"\talice",			KEEP,	false,	NULL },
	{ "carriage return",			"alice\r",			KEEP,	true,	NULL },
	{ "control byte in realm",		"alice@ex\x01ample.org",	KEEP,	true,	NULL },
	{ "DEL",				"ali\x7f" "ce",			LOWER,	false,	NULL },
	{ "unit separator",			"ali\x1f" "ce",			LOWER,	false,	NULL },

	/* UTF-8: only ASCII letters change case. */
	{ "UTF-8 lower",			"J\xc3\x9cRGEN",		LOWER,	false,	"j\xc3\x9crgen" },
	{ "UTF-8 upper",			"j\xc3\xbcrgen",		UPPER,	false,	"J\xc3\xbcRGEN" },
	{ "UTF-8 three bytes",			"\xe6\x97\xa5\xe6\x9c\xac",	LOWER,	true,	"\xe6\x97\xa5\xe6\x9c\xac" },
	{ "UTF-8 with realm",			"\xc3\x89lise@example.org",	LOWER,	true,	"\xc3\x89lise" },
	{ "bytes 0x80 to 0xff",			"\x80\x9f\xa0\xff",		LOWER,	false,	"\x80\x9f\xa0\xff" },
};

#define NUM_NORMALISE_CASES	(sizeof(normalise_cases) / sizeof(normalise_cases[0]))

static void test_normalise_table(void **state)
{
	size_t i;

	(void)state;

	for (i = 0; i < NUM_NORMALISE_CASES; i++) {
		normalise_case_t const	*c = &normalise_cases[i];
		char			out[256];
		ssize_t			ret;

		memset(out, 'X', sizeof(out));
		ret = twostep_username_normalise(out, sizeof(out), c->in, c->case_rule, c->strip_realm);

		if (!c->want) {
			if (ret != -1 || out[0] != '\0') {
				fail_msg("case \"%s\": got %zd \"%s\", want -1 and an empty output",
					 c->name, ret, ret >= 0 ? out : "");
			}
			continue;
		}

		if (ret != (ssize_t)strlen(c->want) || strcmp(out, c->want) != 0) {
			fail_msg("case \"%s\": got %zd \"%s\", want %zu \"%s\"",
				 c->name, ret, ret >= 0 ? out : "", strlen(c->want), c->want);
		}
	}
}

/** Exactly enough room works, and one byte less fails with an empty output. */
static void test_normalise_sizes(void **state)
{
	size_t i;

	(void)state;

	for (i = 0; i < NUM_NORMALISE_CASES; i++) {
		normalise_case_t const	*c = &normalise_cases[i];
		size_t			need;
		char			*out;
		ssize_t			ret;

		if (!c->want) continue;

		need = strlen(c->want) + 1;
		out = test_malloc(need);	/* exact size, so an overrun is caught */
		memset(out, 'X', need);
		ret = twostep_username_normalise(out, need, c->in, c->case_rule, c->strip_realm);
		if (ret != (ssize_t)(need - 1) || strcmp(out, c->want) != 0) {
			fail_msg("case \"%s\": exact buffer of %zu bytes: got %zd", c->name, need, ret);
		}

		memset(out, 'X', need);
		ret = twostep_username_normalise(out, need - 1, c->in, c->case_rule, c->strip_realm);
		if (ret != -1 || out[0] != '\0') {
			fail_msg("case \"%s\": buffer of %zu bytes (one short): got %zd, out[0]=0x%02x",
				 c->name, need - 1, ret, (unsigned char)out[0]);
		}
		test_free(out);
	}
}

/** The size check is on the result, not the input: a long input with a short result fits. */
static void test_normalise_long_input(void **state)
{
	char	out[6];

	(void)state;

	assert_int_equal(twostep_username_normalise(out, sizeof(out), "   EXAMPLE\\ALICE@example.org   ",
						    LOWER, true), 5);
	assert_string_equal(out, "alice");
}

/** The result can be normalised again and stays the same. */
static void test_normalise_idempotent(void **state)
{
	size_t i;

	(void)state;

	for (i = 0; i < NUM_NORMALISE_CASES; i++) {
		normalise_case_t const	*c = &normalise_cases[i];
		char			again[256];
		ssize_t			ret;

		if (!c->want) continue;

		/* "a@b@c" gives "a@b", which loses one more realm: the one case that changes. */
		if (c->strip_realm && strchr(c->want, '@')) continue;

		ret = twostep_username_normalise(again, sizeof(again), c->want, c->case_rule, c->strip_realm);
		if (ret != (ssize_t)strlen(c->want) || strcmp(again, c->want) != 0) {
			fail_msg("case \"%s\": normalising \"%s\" again gave %zd \"%s\"",
				 c->name, c->want, ret, ret >= 0 ? again : "");
		}
	}
}

/** No output buffer, no input, or a case rule outside the enum: -1, and nothing written past out. */
static void test_normalise_degenerate(void **state)
{
	char	out[4] = "abc";

	(void)state;

	assert_int_equal(twostep_username_normalise(out, 0, "a", KEEP, false), -1);
	assert_string_equal(out, "abc");

	assert_int_equal(twostep_username_normalise(NULL, 10, "a", KEEP, false), -1);

	assert_int_equal(twostep_username_normalise(out, sizeof(out), NULL, KEEP, false), -1);
	assert_string_equal(out, "");

	memcpy(out, "abc", 4);
	assert_int_equal(twostep_username_normalise(out, sizeof(out), "a", (twostep_case_t)3, false), -1);
	assert_string_equal(out, "");

	memcpy(out, "abc", 4);
	assert_int_equal(twostep_username_normalise(out, sizeof(out), "a", (twostep_case_t)-1, false), -1);
	assert_string_equal(out, "");

	/* A one-character name needs two bytes. */
	assert_int_equal(twostep_username_normalise(out, 1, "a", KEEP, false), -1);
	assert_int_equal(twostep_username_normalise(out, 2, "a", KEEP, false), 1);
	assert_string_equal(out, "a");
}

/** Every byte value 1..255 between two letters: rejected exactly when it is a control byte. */
static void test_normalise_every_byte(void **state)
{
	unsigned int c;

	(void)state;

	for (c = 1; c < 256; c++) {
		char	in[4] = { 'a', (char)c, 'b', '\0' };
		char	out[8];
		bool	control = (c < 0x20) || (c == 0x7f);
		ssize_t	ret;

		ret = twostep_username_normalise(out, sizeof(out), in, KEEP, false);
		if (control) {
			if (ret != -1) fail_msg("byte 0x%02x: got %zd, want -1", c, ret);
			continue;
		}

		if (ret != 3 || memcmp(out, in, 4) != 0) fail_msg("byte 0x%02x: got %zd, want it kept", c, ret);
	}
}

/** LOWER and UPPER change the 26 ASCII letters each way and no other byte. */
static void test_normalise_case_bytes(void **state)
{
	unsigned int c;

	(void)state;

	for (c = 0x21; c < 256; c++) {
		char	in[2] = { (char)c, '\0' };
		char	out[4];
		int	want_lower = ((c >= 'A') && (c <= 'Z')) ? (int)(c + 32) : (int)c;
		int	want_upper = ((c >= 'a') && (c <= 'z')) ? (int)(c - 32) : (int)c;

		if (c == 0x7f) continue;

		if (twostep_username_normalise(out, sizeof(out), in, LOWER, false) != 1 ||
		    (unsigned char)out[0] != want_lower) {
			fail_msg("lower byte 0x%02x: got 0x%02x, want 0x%02x", c, (unsigned char)out[0], want_lower);
		}
		if (twostep_username_normalise(out, sizeof(out), in, UPPER, false) != 1 ||
		    (unsigned char)out[0] != want_upper) {
			fail_msg("upper byte 0x%02x: got 0x%02x, want 0x%02x", c, (unsigned char)out[0], want_upper);
		}
	}
}

typedef struct {
	char const	*value;
	int		ret;
	twostep_case_t	want;		//!< Only checked when ret is 0.
} parse_case_case_t;

static parse_case_case_t const parse_case_cases[] = {
	{ "keep",	0,	KEEP },
	{ "lower",	0,	LOWER },
	{ "upper",	0,	UPPER },
	{ "Lower",	-1,	KEEP },
	{ "UPPER",	-1,	KEEP },
	{ "",		-1,	KEEP },
	{ " lower",	-1,	KEEP },
	{ "lower ",	-1,	KEEP },
	{ "lowercase",	-1,	KEEP },
	{ "low",	-1,	KEEP },
	{ "none",	-1,	KEEP },
	{ "0",		-1,	KEEP },
};

static void test_parse_case_table(void **state)
{
	size_t i;

	(void)state;

	for (i = 0; i < sizeof(parse_case_cases) / sizeof(parse_case_cases[0]); i++) {
		parse_case_case_t const	*c = &parse_case_cases[i];
		twostep_case_t		out = (twostep_case_t)99;
		int			ret;

		ret = twostep_username_parse_case(&out, c->value);
		if (ret != c->ret) fail_msg("value \"%s\": got %d, want %d", c->value, ret, c->ret);

		/* A rejected value leaves out as it was. */
		if (c->ret != 0) {
			if (out != (twostep_case_t)99) fail_msg("value \"%s\": out changed to %d", c->value, (int)out);
			continue;
		}
		if (out != c->want) fail_msg("value \"%s\": got rule %d, want %d", c->value, (int)out, (int)c->want);
	}
}

static void test_parse_case_null(void **state)
{
	twostep_case_t out = LOWER;

	(void)state;

	assert_int_equal(twostep_username_parse_case(&out, NULL), -1);
	assert_int_equal(out, LOWER);
	assert_int_equal(twostep_username_parse_case(NULL, "lower"), -1);
}

int main(void)
{
	struct CMUnitTest const tests[] = {
		cmocka_unit_test(test_normalise_table),
		cmocka_unit_test(test_normalise_sizes),
		cmocka_unit_test(test_normalise_long_input),
		cmocka_unit_test(test_normalise_idempotent),
		cmocka_unit_test(test_normalise_degenerate),
		cmocka_unit_test(test_normalise_every_byte),
		cmocka_unit_test(test_normalise_case_bytes),
		cmocka_unit_test(test_parse_case_table),
		cmocka_unit_test(test_parse_case_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
