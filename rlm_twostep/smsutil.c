/*
 * smsutil.c: phone numbers (E.164), masking, SMS code generation and
 * hashing, gateway request templates, and the check of a gateway's response.
 *
 * Every function that writes a string either writes it whole or leaves ""
 * in the buffer (when the buffer has at least one byte).
 */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "smsutil.h"

#define E164_DIGITS_MIN	8
#define E164_DIGITS_MAX	15
#define MASK_CLEAR_DIGITS 4	//!< Trailing digits that a masked number shows.

static char const hexdigits_upper[] = "0123456789ABCDEF";

static bool is_digit(char c)
{
	return (c >= '0') && (c <= '9');
}

/** Characters that people put between the digits of a phone number. */
static bool is_phone_separator(char c)
{
	switch (c) {
	case ' ':
	case '.':
	case '-':
	case '/':
	case '(':
	case ')':
		return true;

	default:
		return false;
	}
}

/** Check a configured country calling code: 1 to 3 digits, the first not 0. */
static bool cc_valid(char const *cc)
{
	size_t i;

	if (!cc || !is_digit(cc[0]) || (cc[0] == '0')) return false;

	for (i = 0; cc[i]; i++) {
		if ((i >= 3) || !is_digit(cc[i])) return false;
	}
	return true;
}

/** Count the digits after the '+' of a normalised number, or return 0 when it is not one. */
static size_t e164_digits(char const *e164)
{
	size_t n;

	if (!e164 || (e164[0] != '+') || !is_digit(e164[1]) || (e164[1] == '0')) return 0;

	for (n = 0; e164[n + 1]; n++) {
		if (!is_digit(e164[n + 1])) return 0;
	}
	if ((n < E164_DIGITS_MIN) || (n > E164_DIGITS_MAX)) return 0;

	return n;
}

int twostep_phone_normalise(char *out, size_t outlen, char const *in, char const *default_cc)
{
	/*
	 *	Room for an international prefix "00" or a trunk '0' on top
	 *	of the longest number. Longer input is invalid anyway.
	 */
	char		digits[E164_DIGITS_MAX + 2];
	char const	*p, *cc = "";
	size_t		num = 0, cc_len = 0, total;
	bool		plus = false;

	if (!out || !outlen) return -1;
	out[0] = '\0';
	if (!in) return -1;

	for (p = in; *p; p++) {
		if (is_phone_separator(*p)) continue;

		if (*p == '+') {
			/*
			 *	Only before the first digit, so "(+44) 20" is
			 *	accepted but "44+20" and "++44" are not.
			 */
			if (plus || (num > 0)) return -1;
			plus = true;
			continue;
		}

		if (!is_digit(*p)) return -1;
		if (num >= sizeof(digits)) return -1;
		digits[num++] = *p;
	}

	p = digits;
	if (!plus && (num >= 2) && (digits[0] == '0') && (digits[1] == '0')) {
		p += 2;
		num -= 2;
	} else if (!plus) {
		if (!default_cc || !default_cc[0] || !cc_valid(default_cc)) return -1;
		cc = default_cc;
		cc_len = strlen(cc);

		if ((num > 0) && (p[0] == '0')) {
			p++;
			num--;
		}
	}

	total = cc_len + num;
	if ((total < E164_DIGITS_MIN) || (total > E164_DIGITS_MAX)) return -1;
	if ((cc_len == 0) && (p[0] == '0')) return -1;
	if (total + 2 > outlen) return -1;	/* '+' and the NUL */

	out[0] = '+';
	memcpy(out + 1, cc, cc_len);
	memcpy(out + 1 + cc_len, p, num);
	out[1 + total] = '\0';

	return 0;
}

/** Tell whether a code that starts with the digits first, second has two digits (ITU-T E.164 assignments). */
static bool cc_is_two_digits(unsigned int first, unsigned int second)
{
	switch (first) {
	case 2:
		return (second == 0) || (second == 7);

	case 3:
		return (second <= 4) || (second == 6) || (second == 9);

	case 4:
		return second != 2;

	case 5:
		return (second >= 1) && (second <= 8);

	case 6:
		return second <= 6;

	case 8:
		return (second == 1) || (second == 2) || (second == 4) || (second == 6);

	case 9:
		return (second <= 5) || (second == 8);

	default:
		return false;
	}
}

/*
 *	A leading '+' is skipped. Returns 0 when the text does not start
 *	with as many digits as its code needs, or starts with 0.
 */
size_t twostep_phone_cc_len(char const *e164)
{
	char const *d = e164;

	if (!d) return 0;
	if (d[0] == '+') d++;

	if (!is_digit(d[0]) || (d[0] == '0')) return 0;
	if ((d[0] == '1') || (d[0] == '7')) return 1;

	if (!is_digit(d[1])) return 0;
	if (cc_is_two_digits((unsigned int)(d[0] - '0'), (unsigned int)(d[1] - '0'))) return 2;

	if (!is_digit(d[2])) return 0;
	return 3;
}

/*
 *	List entries may be written with a leading '+' ("+44"). A number
 *	whose code cannot be read is allowed only when there is no list.
 */
bool twostep_phone_country_allowed(char const *e164, char const * const *allowed, size_t num_allowed)
{
	char const	*digits;
	size_t		cc_len, i;

	if (num_allowed == 0) return true;
	if (!allowed || !e164) return false;

	cc_len = twostep_phone_cc_len(e164);
	if (cc_len == 0) return false;
	digits = (e164[0] == '+') ? e164 + 1 : e164;

	for (i = 0; i < num_allowed; i++) {
		char const *entry = allowed[i];

		if (!entry) continue;
		if (entry[0] == '+') entry++;

		if ((strlen(entry) == cc_len) && (memcmp(entry, digits, cc_len) == 0)) return true;
	}

	return false;
}

/*
 *	mask must not be NUL, because it would end the string early.
 */
ssize_t twostep_phone_mask(char *out, size_t outlen, char const *e164, char mask)
{
	size_t	num, cc_len, national, masked, need, o = 0, i;

	if (!out || !outlen) return -1;
	out[0] = '\0';
	if (mask == '\0') return -1;

	num = e164_digits(e164);
	if (num == 0) return -1;
	cc_len = twostep_phone_cc_len(e164);
	if (cc_len == 0) return -1;

	/*
	 *	At least 8 digits and a code of at most 3 leave a national
	 *	part of 5 or more, so at least one digit is masked.
	 */
	national = num - cc_len;
	masked = national - MASK_CLEAR_DIGITS;

	/* "+", code, " ", masked digits with a space after every full group of 3, " ", last 4, NUL */
	need = 1 + cc_len + 1 + masked + (masked - 1) / 3 + 1 + MASK_CLEAR_DIGITS + 1;
	if (need > outlen) return -1;

	out[o++] = '+';
	memcpy(out + o, e164 + 1, cc_len);
	o += cc_len;
	out[o++] = ' ';

	for (i = 0; i < masked; i++) {
		if ((i > 0) && ((i % 3) == 0)) out[o++] = ' ';
		out[o++] = mask;
	}
	out[o++] = ' ';

	memcpy(out + o, e164 + 1 + num - MASK_CLEAR_DIGITS, MASK_CLEAR_DIGITS);
	o += MASK_CLEAR_DIGITS;
	out[o] = '\0';

	return (ssize_t)o;
}

int twostep_sms_code_generate(char *out, unsigned int digits)
{
	uint64_t	modulus = 1, limit, value = 0;
	unsigned char	buf[sizeof(uint64_t)];
	unsigned int	i, attempt;
	int		rcode = -1;

	if (!out) return -1;
	out[0] = '\0';
	if ((digits < 4) || (digits > TWOSTEP_CODE_MAX)) return -1;

	for (i = 0; i < digits; i++) modulus *= 10;

	/*
	 *	A 64-bit draw, because 10^10 does not fit in 32 bits. Values
	 *	at or above limit, the largest multiple of modulus that fits,
	 *	are drawn again, so every code is equally likely. A redraw
	 *	happens with probability at most 10^10 / 2^64, so 16 rejected
	 *	draws in a row are treated as a failed random source.
	 */
	limit = UINT64_MAX - (UINT64_MAX % modulus);
	for (attempt = 0; attempt < 16; attempt++) {
		if (RAND_bytes(buf, sizeof(buf)) != 1) goto done;

		value = 0;
		for (i = 0; i < sizeof(buf); i++) value = (value << 8) | buf[i];
		if (value < limit) break;
	}
	if (value >= limit) goto done;

	value %= modulus;
	for (i = digits; i > 0; i--) {
		out[i - 1] = (char)('0' + (value % 10));
		value /= 10;
	}
	out[digits] = '\0';
	rcode = 0;

done:
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(&value, sizeof(value));
	return rcode;
}

/*
 *	An empty key is rejected, because HMAC would still produce a hash
 *	that anyone can compute.
 */
int twostep_sms_code_hash(uint8_t out[TWOSTEP_CODE_HASH_LEN], uint8_t const *key, size_t keylen,
			  char const *dn, char const *code)
{
	static unsigned char const	separator = 0x00;
	EVP_MAC				*mac = NULL;
	EVP_MAC_CTX			*ctx = NULL;
	OSSL_PARAM			params[2];
	size_t				outlen = 0;
	int				rcode = -1;

	if (!out) return -1;
	if (!key || !keylen || !dn || !code) goto done;

	mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
	if (!mac) goto done;
	ctx = EVP_MAC_CTX_new(mac);
	if (!ctx) goto done;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();

	if (EVP_MAC_init(ctx, key, keylen, params) != 1) goto done;
	if (EVP_MAC_update(ctx, (unsigned char const *)dn, strlen(dn)) != 1) goto done;
	if (EVP_MAC_update(ctx, &separator, 1) != 1) goto done;
	if (EVP_MAC_update(ctx, (unsigned char const *)code, strlen(code)) != 1) goto done;
	if (EVP_MAC_final(ctx, out, &outlen, TWOSTEP_CODE_HASH_LEN) != 1) goto done;
	if (outlen != TWOSTEP_CODE_HASH_LEN) goto done;

	rcode = 0;

done:
	if (rcode < 0) OPENSSL_cleanse(out, TWOSTEP_CODE_HASH_LEN);
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return rcode;
}

/** Output position in a fixed buffer. Writes past the end only set overflow. */
typedef struct {
	char	*out;
	size_t	outlen;		//!< Size of out, the NUL included.
	size_t	pos;
	bool	overflow;
} render_buf_t;

static void render_byte(render_buf_t *buf, char c)
{
	if (buf->pos + 1 >= buf->outlen) {
		buf->overflow = true;
		return;
	}
	buf->out[buf->pos++] = c;
}

static void render_hex_byte(render_buf_t *buf, unsigned char c)
{
	render_byte(buf, hexdigits_upper[c >> 4]);
	render_byte(buf, hexdigits_upper[c & 0x0f]);
}

/** RFC 3986 section 2.3 unreserved characters. */
static bool url_unreserved(unsigned char c)
{
	return ((c >= 'A') && (c <= 'Z')) || ((c >= 'a') && (c <= 'z')) || ((c >= '0') && (c <= '9')) ||
	       (c == '-') || (c == '.') || (c == '_') || (c == '~');
}

static void render_json_byte(render_buf_t *buf, unsigned char c)
{
	char short_form = 0;

	switch (c) {
	case '"':	short_form = '"'; break;
	case '\\':	short_form = '\\'; break;
	case '\b':	short_form = 'b'; break;
	case '\f':	short_form = 'f'; break;
	case '\n':	short_form = 'n'; break;
	case '\r':	short_form = 'r'; break;
	case '\t':	short_form = 't'; break;
	default:	break;
	}

	if (short_form) {
		render_byte(buf, '\\');
		render_byte(buf, short_form);
		return;
	}

	/* RFC 8259 requires escaping only '"', '\\' and bytes below 0x20. UTF-8 sequences pass as they are. */
	if (c < 0x20) {
		render_byte(buf, '\\');
		render_byte(buf, 'u');
		render_byte(buf, '0');
		render_byte(buf, '0');
		render_hex_byte(buf, c);
		return;
	}

	render_byte(buf, (char)c);
}

static void render_value(render_buf_t *buf, char const *value, twostep_encoding_t encoding)
{
	char const *p;

	for (p = value; *p; p++) {
		unsigned char c = (unsigned char)*p;

		switch (encoding) {
		case TWOSTEP_ENCODE_NONE:
			render_byte(buf, (char)c);
			break;

		case TWOSTEP_ENCODE_FORM:
			if (c == ' ') {
				render_byte(buf, '+');
				break;
			}
			/* FALL-THROUGH */

		case TWOSTEP_ENCODE_URL:
			if (url_unreserved(c)) {
				render_byte(buf, (char)c);
			} else {
				render_byte(buf, '%');
				render_hex_byte(buf, c);
			}
			break;

		case TWOSTEP_ENCODE_JSON:
			render_json_byte(buf, c);
			break;
		}
	}
}

/** Match a placeholder at tmpl, and return its length, or 0 when there is none. */
static size_t placeholder_match(char const *tmpl, char const *name)
{
	size_t len = strlen(name);

	return (strncmp(tmpl, name, len) == 0) ? len : 0;
}

/*
 *	Values are not scanned for placeholders, so a message that contains
 *	"{code}" is sent as it is. On failure the whole buffer is wiped,
 *	because the part already written may contain the code.
 */
ssize_t twostep_template_render(char *out, size_t outlen, char const *tmpl, twostep_encoding_t encoding,
				char const *phone, char const *message, char const *code)
{
	render_buf_t	buf = { .out = out, .outlen = outlen };
	char const	*p;

	if (!out || !outlen) return -1;
	out[0] = '\0';
	if (!tmpl) return -1;

	switch (encoding) {
	case TWOSTEP_ENCODE_NONE:
	case TWOSTEP_ENCODE_URL:
	case TWOSTEP_ENCODE_FORM:
	case TWOSTEP_ENCODE_JSON:
		break;

	default:
		return -1;
	}

	p = tmpl;
	while (*p && !buf.overflow) {
		char const	*value = NULL;
		size_t		len = 0;

		if (*p == '{') {
			if ((len = placeholder_match(p, "{phone}")) > 0) {
				value = phone;
			} else if ((len = placeholder_match(p, "{message}")) > 0) {
				value = message;
			} else if ((len = placeholder_match(p, "{code}")) > 0) {
				value = code;
			}
		}

		if (len == 0) {
			render_byte(&buf, *p++);
			continue;
		}

		if (!value) goto fail;
		render_value(&buf, value, encoding);
		p += len;
	}
	if (buf.overflow) goto fail;

	out[buf.pos] = '\0';
	return (ssize_t)buf.pos;

fail:
	OPENSSL_cleanse(out, outlen);
	out[0] = '\0';
	return -1;
}

/*
 *	An empty pattern counts as no pattern, because a must_not_contain of
 *	"" would otherwise match every body.
 */
bool twostep_gateway_success(long status, char const *body, size_t body_len,
			     char const *must_contain, char const *must_not_contain)
{
	if ((status < 200) || (status > 299)) return false;
	if (!body) body_len = 0;

	if (must_contain && must_contain[0]) {
		if (!body_len || !memmem(body, body_len, must_contain, strlen(must_contain))) return false;
	}

	if (must_not_contain && must_not_contain[0]) {
		if (body_len && memmem(body, body_len, must_not_contain, strlen(must_not_contain))) return false;
	}

	return true;
}
