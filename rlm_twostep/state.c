/*
 * state.c: the State token that carries a challenge from round 1 to round 2.
 *
 * See state.h for the layout. Sealing is AES-256-GCM with a random 96-bit
 * nonce; the 17 header bytes are authenticated as AAD, the claims are
 * encrypted. Nothing in the claims is looked at before the tag has been
 * checked, and every buffer that held plaintext is wiped before returning.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "state.h"

/** method (1), issue time (8), and the five length bytes. */
#define CLAIMS_FIXED_LEN	(1 + 8 + 1 + 1 + 1 + 1 + 1)

/** Token bytes that are not claims. */
#define TOKEN_OVERHEAD		(TWOSTEP_STATE_HEADER_LEN + TWOSTEP_STATE_TAG_LEN)

#define TOKEN_MIN_LEN		(TOKEN_OVERHEAD + CLAIMS_FIXED_LEN)
#define CLAIMS_MAX_LEN		(TWOSTEP_STATE_MAX_LEN - TOKEN_OVERHEAD)

char const *twostep_state_strerror(twostep_state_rcode_t rcode)
{
	switch (rcode) {
	case TWOSTEP_STATE_OK:		return "ok";
	case TWOSTEP_STATE_NOT_OURS:	return "not ours";
	case TWOSTEP_STATE_MALFORMED:	return "malformed";
	case TWOSTEP_STATE_UNKNOWN_KEY:	return "unknown key id";
	case TWOSTEP_STATE_FORGED:	return "bad tag (forged, damaged or wrong key)";
	case TWOSTEP_STATE_EXPIRED:	return "expired";
	case TWOSTEP_STATE_FUTURE:	return "issued in the future";
	case TWOSTEP_STATE_WRONG_USER:	return "issued for another user";
	case TWOSTEP_STATE_TOO_LONG:	return "too long";
	case TWOSTEP_STATE_ERROR:	return "crypto error";
	}
	return "unknown result";
}

int twostep_state_is_ours(uint8_t const *in, size_t inlen)
{
	if (!in || inlen < TWOSTEP_STATE_MAGIC_LEN) return 0;
	return memcmp(in, TWOSTEP_STATE_MAGIC, TWOSTEP_STATE_MAGIC_LEN) == 0;
}

/*
 *	Sealing.
 */
static int gcm_seal(uint8_t *ct, uint8_t *tag, uint8_t const *key, uint8_t const *nonce,
		    uint8_t const *aad, size_t aadlen, uint8_t const *pt, size_t ptlen)
{
	EVP_CIPHER_CTX	*ctx;
	int		len, ret = -1;

	ctx = EVP_CIPHER_CTX_new();
	if (!ctx) return -1;

	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1) goto done;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, TWOSTEP_STATE_NONCE_LEN, NULL) != 1) goto done;
	if (EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) != 1) goto done;
	if (EVP_EncryptUpdate(ctx, NULL, &len, aad, (int)aadlen) != 1) goto done;
	if (EVP_EncryptUpdate(ctx, ct, &len, pt, (int)ptlen) != 1) goto done;
	if ((size_t)len != ptlen) goto done;
	if (EVP_EncryptFinal_ex(ctx, ct + len, &len) != 1) goto done;
	if (len != 0) goto done;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TWOSTEP_STATE_TAG_LEN, tag) != 1) goto done;
	ret = 0;

done:
	EVP_CIPHER_CTX_free(ctx);	/* cleanses the key schedule */
	return ret;
}

/** Open a sealed token. @return 0 when the tag is good, 1 when it is not, -1 on library failure. */
static int gcm_open(uint8_t *pt, uint8_t const *key, uint8_t const *nonce,
		    uint8_t const *aad, size_t aadlen, uint8_t const *ct, size_t ctlen, uint8_t const *tag)
{
	EVP_CIPHER_CTX	*ctx;
	int		len, ret = -1;
	uint8_t		tagbuf[TWOSTEP_STATE_TAG_LEN];

	memcpy(tagbuf, tag, sizeof(tagbuf));

	ctx = EVP_CIPHER_CTX_new();
	if (!ctx) return -1;

	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1) goto done;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, TWOSTEP_STATE_NONCE_LEN, NULL) != 1) goto done;
	if (EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) != 1) goto done;
	if (EVP_DecryptUpdate(ctx, NULL, &len, aad, (int)aadlen) != 1) goto done;
	if (EVP_DecryptUpdate(ctx, pt, &len, ct, (int)ctlen) != 1) goto done;
	if ((size_t)len != ctlen) goto done;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TWOSTEP_STATE_TAG_LEN, tagbuf) != 1) goto done;

	/*
	 *	The tag is compared here, in constant time. A failure is
	 *	not a library error: the token is not what we sealed.
	 */
	ret = (EVP_DecryptFinal_ex(ctx, pt + len, &len) == 1) ? 0 : 1;

done:
	EVP_CIPHER_CTX_free(ctx);
	return ret;
}

twostep_state_rcode_t twostep_state_create(uint8_t *out, size_t *outlen,
					   twostep_state_key_t const *key,
					   twostep_state_claims_t const *claims)
{
	uint8_t		pt[CLAIMS_MAX_LEN];
	uint8_t		token[TWOSTEP_STATE_MAX_LEN];
	size_t		user_len, dn_len, ptlen, p = 0;
	uint64_t	issued;
	int		i;
	twostep_state_rcode_t rcode = TWOSTEP_STATE_ERROR;

	if (!out || !outlen || !key || !claims) return TWOSTEP_STATE_ERROR;
	*outlen = 0;

	if (key->id == 0) return TWOSTEP_STATE_ERROR;
	if ((claims->method != TWOSTEP_METHOD_TOTP) && (claims->method != TWOSTEP_METHOD_SMS)) {
		return TWOSTEP_STATE_ERROR;
	}

	/*
	 *	Each field must fit its own length byte and array, and the
	 *	whole token one RADIUS attribute.
	 */
	user_len = strnlen(claims->user, sizeof(claims->user));
	dn_len = strnlen(claims->dn, sizeof(claims->dn));
	if ((user_len > TWOSTEP_STATE_NAME_MAX) || (dn_len > TWOSTEP_STATE_NAME_MAX) ||
	    (claims->seed_len > TWOSTEP_SEED_MAX) ||
	    (claims->code_hash_len > TWOSTEP_STATE_CODE_HASH_MAX)) return TWOSTEP_STATE_TOO_LONG;

	ptlen = CLAIMS_FIXED_LEN + user_len + dn_len + claims->seed_len + claims->code_hash_len +
		(claims->snapshot.flags ? TWOSTEP_STATE_SNAPSHOT_LEN : 0);
	if (ptlen > CLAIMS_MAX_LEN) return TWOSTEP_STATE_TOO_LONG;

	pt[p++] = (uint8_t)claims->method;
	issued = (uint64_t)claims->issued;
	for (i = 7; i >= 0; i--) pt[p++] = (uint8_t)(issued >> (i * 8));
	pt[p++] = (uint8_t)user_len;
	memcpy(pt + p, claims->user, user_len);
	p += user_len;
	pt[p++] = (uint8_t)dn_len;
	memcpy(pt + p, claims->dn, dn_len);
	p += dn_len;
	pt[p++] = (uint8_t)claims->seed_len;
	memcpy(pt + p, claims->seed, claims->seed_len);
	p += claims->seed_len;
	pt[p++] = (uint8_t)claims->code_hash_len;
	memcpy(pt + p, claims->code_hash, claims->code_hash_len);
	p += claims->code_hash_len;
	if (claims->snapshot.flags) {
		pt[p++] = TWOSTEP_STATE_SNAPSHOT_LEN;
		pt[p++] = claims->snapshot.flags;
		for (i = 7; i >= 0; i--) pt[p++] = (uint8_t)(claims->snapshot.last_step >> (i * 8));
		for (i = 3; i >= 0; i--) pt[p++] = (uint8_t)(claims->snapshot.fail_count >> (i * 8));
		memcpy(pt + p, claims->snapshot.last_nonce, TWOSTEP_STATE_NONCE_LEN);
		p += TWOSTEP_STATE_NONCE_LEN;
	} else {
		pt[p++] = 0;
	}

	memcpy(token, TWOSTEP_STATE_MAGIC, TWOSTEP_STATE_MAGIC_LEN);
	token[TWOSTEP_STATE_MAGIC_LEN] = TWOSTEP_STATE_VERSION;
	token[TWOSTEP_STATE_MAGIC_LEN + 1] = key->id;
	if (RAND_bytes(token + TWOSTEP_STATE_MAGIC_LEN + 2, TWOSTEP_STATE_NONCE_LEN) != 1) goto done;

	if (gcm_seal(token + TWOSTEP_STATE_HEADER_LEN,
		     token + TWOSTEP_STATE_HEADER_LEN + ptlen,
		     key->key, token + TWOSTEP_STATE_MAGIC_LEN + 2,
		     token, TWOSTEP_STATE_HEADER_LEN, pt, ptlen) < 0) goto done;

	memcpy(out, token, TOKEN_OVERHEAD + ptlen);
	*outlen = TOKEN_OVERHEAD + ptlen;
	rcode = TWOSTEP_STATE_OK;

done:
	OPENSSL_cleanse(pt, sizeof(pt));
	OPENSSL_cleanse(token, sizeof(token));
	return rcode;
}

/*
 *	Opening.
 */

/** Read one length-prefixed string field that must not contain NUL. */
static int parse_name(char *dst, uint8_t const *pt, size_t ptlen, size_t *p)
{
	size_t len;

	if (*p >= ptlen) return -1;
	len = pt[(*p)++];
	if (len > ptlen - *p) return -1;
	if (len > TWOSTEP_STATE_NAME_MAX) return -1;
	if (memchr(pt + *p, '\0', len)) return -1;

	memcpy(dst, pt + *p, len);
	dst[len] = '\0';
	*p += len;
	return 0;
}

/** Parse decrypted claims, strictly: every length checked, nothing left over. */
static int parse_claims(twostep_state_claims_t *claims, uint8_t const *pt, size_t ptlen)
{
	size_t		p = 0, seed_len, hash_len, snapshot_len;
	uint64_t	issued = 0;
	int		i;

	if (ptlen < CLAIMS_FIXED_LEN) return -1;

	switch (pt[p]) {
	case TWOSTEP_METHOD_TOTP:
		claims->method = TWOSTEP_METHOD_TOTP;
		break;

	case TWOSTEP_METHOD_SMS:
		claims->method = TWOSTEP_METHOD_SMS;
		break;

	default:
		return -1;
	}
	p++;

	for (i = 0; i < 8; i++) issued = (issued << 8) | pt[p++];
	claims->issued = (int64_t)issued;

	if (parse_name(claims->user, pt, ptlen, &p) < 0) return -1;
	if (parse_name(claims->dn, pt, ptlen, &p) < 0) return -1;

	if (p >= ptlen) return -1;
	seed_len = pt[p++];
	if (seed_len > TWOSTEP_SEED_MAX) return -1;
	if (seed_len > ptlen - p) return -1;
	memcpy(claims->seed, pt + p, seed_len);
	claims->seed_len = seed_len;
	p += seed_len;

	if (p >= ptlen) return -1;
	hash_len = pt[p++];
	if (hash_len > TWOSTEP_STATE_CODE_HASH_MAX) return -1;
	if (hash_len > ptlen - p) return -1;
	memcpy(claims->code_hash, pt + p, hash_len);
	claims->code_hash_len = hash_len;
	p += hash_len;

	if (p >= ptlen) return -1;
	snapshot_len = pt[p++];
	if (snapshot_len != 0 && snapshot_len != TWOSTEP_STATE_SNAPSHOT_LEN) return -1;
	if (snapshot_len > ptlen - p) return -1;
	if (snapshot_len) {
		claims->snapshot.flags = pt[p++];
		if (!claims->snapshot.flags) return -1;
		for (i = 0; i < 8; i++) claims->snapshot.last_step = (claims->snapshot.last_step << 8) | pt[p++];
		for (i = 0; i < 4; i++) claims->snapshot.fail_count = (claims->snapshot.fail_count << 8) | pt[p++];
		memcpy(claims->snapshot.last_nonce, pt + p, TWOSTEP_STATE_NONCE_LEN);
		p += TWOSTEP_STATE_NONCE_LEN;
	}

	if (p != ptlen) return -1;	/* trailing bytes */
	return 0;
}

twostep_state_rcode_t twostep_state_verify(twostep_state_claims_t *claims,
					   uint8_t const *in, size_t inlen,
					   twostep_state_key_t const *keys, size_t num_keys,
					   int64_t now, unsigned int lifetime, char const *user)
{
	uint8_t			pt[CLAIMS_MAX_LEN];
	uint8_t const		*ct, *tag;
	size_t			ctlen, i;
	uint8_t			key_id;
	int			found_key = 0, opened = 0;
	twostep_state_rcode_t	rcode;

	if (!claims) return TWOSTEP_STATE_ERROR;
	OPENSSL_cleanse(claims, sizeof(*claims));

	/* 1. Prefix. */
	if (!twostep_state_is_ours(in, inlen)) return TWOSTEP_STATE_NOT_OURS;

	/* 2. Version and length. */
	if ((inlen < TOKEN_MIN_LEN) || (inlen > TWOSTEP_STATE_MAX_LEN)) return TWOSTEP_STATE_MALFORMED;
	if (in[TWOSTEP_STATE_MAGIC_LEN] != TWOSTEP_STATE_VERSION) return TWOSTEP_STATE_MALFORMED;

	/* 3. Key id. */
	key_id = in[TWOSTEP_STATE_MAGIC_LEN + 1];
	if (key_id == 0 || !keys) return TWOSTEP_STATE_UNKNOWN_KEY;

	ct = in + TWOSTEP_STATE_HEADER_LEN;
	ctlen = inlen - TOKEN_OVERHEAD;
	tag = in + inlen - TWOSTEP_STATE_TAG_LEN;

	/*
	 *	4. Tag. Every key with this id is tried, so two key files
	 *	that share an id by mistake still work for their own tokens.
	 */
	for (i = 0; i < num_keys; i++) {
		int ret;

		if (keys[i].id != key_id) continue;
		found_key = 1;

		ret = gcm_open(pt, keys[i].key, in + TWOSTEP_STATE_MAGIC_LEN + 2,
			       in, TWOSTEP_STATE_HEADER_LEN, ct, ctlen, tag);
		if (ret == 0) {
			opened = 1;
			break;
		}
		OPENSSL_cleanse(pt, sizeof(pt));
		if (ret < 0) {
			rcode = TWOSTEP_STATE_ERROR;
			goto fail;
		}
	}
	if (!found_key) return TWOSTEP_STATE_UNKNOWN_KEY;
	if (!opened) {
		rcode = TWOSTEP_STATE_FORGED;
		goto fail;
	}

	/* 5. Claims layout. */
	if (parse_claims(claims, pt, ctlen) < 0) {
		rcode = TWOSTEP_STATE_MALFORMED;
		goto fail;
	}
	OPENSSL_cleanse(pt, sizeof(pt));
	memcpy(claims->nonce, in + TWOSTEP_STATE_MAGIC_LEN + 2, TWOSTEP_STATE_NONCE_LEN);

	/*
	 *	6. Issue time. Differences are taken in unsigned arithmetic
	 *	on the ordered pair, so no value of either can overflow.
	 */
	if (claims->issued <= now) {
		if ((uint64_t)now - (uint64_t)claims->issued > lifetime) return TWOSTEP_STATE_EXPIRED;
	} else {
		if ((uint64_t)claims->issued - (uint64_t)now > TWOSTEP_STATE_MAX_SKEW) return TWOSTEP_STATE_FUTURE;
	}

	/* 7. User name, exactly. */
	if (!user || strcmp(user, claims->user) != 0) return TWOSTEP_STATE_WRONG_USER;

	return TWOSTEP_STATE_OK;

fail:
	OPENSSL_cleanse(pt, sizeof(pt));
	OPENSSL_cleanse(claims, sizeof(*claims));
	return rcode;
}

/*
 *	Key files.
 */

/** Large enough for a key line and plenty of comments. */
#define KEY_FILE_MAX	8192

static int hexval(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

static int is_blank(char c)
{
	return (c == ' ') || (c == '\t') || (c == '\r');
}

/** Parse one key line (NUL-terminated, no newline). @return 0 or -1 with err filled. */
static int parse_key_line(twostep_state_key_t *key, char const *line, char const *path,
			  unsigned int lineno, char *err, size_t errlen)
{
	char const	*p = line, *hex;
	unsigned int	id = 0;
	size_t		hexlen, i;
	int		digits = 0;

	while (is_blank(*p)) p++;

	while (*p >= '0' && *p <= '9') {
		id = id * 10 + (unsigned int)(*p - '0');
		if (id > 255) break;
		p++;
		digits++;
	}
	if (!digits || id < 1 || id > 255 || !is_blank(*p)) {
		snprintf(err, errlen, "%s line %u: key id must be a decimal number from 1 to 255, "
			 "followed by white space and the key", path, lineno);
		return -1;
	}
	while (is_blank(*p)) p++;

	hex = p;
	while (*p && !is_blank(*p)) p++;
	hexlen = (size_t)(p - hex);
	while (is_blank(*p)) p++;
	if (*p) {
		snprintf(err, errlen, "%s line %u: unexpected text after the key", path, lineno);
		return -1;
	}
	if (hexlen != TWOSTEP_STATE_KEY_LEN * 2) {
		snprintf(err, errlen, "%s line %u: key must be %d hexadecimal digits (%d bytes), found %zu characters",
			 path, lineno, TWOSTEP_STATE_KEY_LEN * 2, TWOSTEP_STATE_KEY_LEN, hexlen);
		return -1;
	}

	for (i = 0; i < TWOSTEP_STATE_KEY_LEN; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			snprintf(err, errlen, "%s line %u: key contains a character that is not a hexadecimal digit",
				 path, lineno);
			return -1;
		}
		key->key[i] = (uint8_t)((hi << 4) | lo);
	}
	key->id = (uint8_t)id;

	return 0;
}

int twostep_state_key_load(twostep_state_key_t *key, char const *path, char *err, size_t errlen)
{
	char			buf[KEY_FILE_MAX + 1];
	twostep_state_key_t	tmp;
	size_t			len = 0;
	ssize_t			n;
	int			fd, ret = -1, found = 0;
	unsigned int		lineno = 0, key_lineno = 0;
	char			*line, *next;
	struct stat		st;
	char			dummy[1];

	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';

	if (!key || !path) {
		snprintf(err, errlen, "no key file given");
		return -1;
	}

	/*
	 *	Plain read(2) rather than stdio, so no copy of the key is
	 *	left in a library buffer that is freed without being wiped.
	 */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(err, errlen, "cannot open key file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "cannot stat key file %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "key file %s is not a regular file", path);
		close(fd);
		return -1;
	}

	for (;;) {
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0) {
			if (errno == EINTR) continue;
			snprintf(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
			close(fd);
			goto done;
		}
		if (n == 0) break;
		len += (size_t)n;
		if (len == sizeof(buf) - 1) {
			/* Full: one more byte means the file is too large. */
			char extra;

			do {
				n = read(fd, &extra, 1);
			} while (n < 0 && errno == EINTR);
			if (n != 0) {
				snprintf(err, errlen, "key file %s is larger than %d bytes", path, KEY_FILE_MAX);
				close(fd);
				goto done;
			}
			break;
		}
	}
	close(fd);
	buf[len] = '\0';

	if (memchr(buf, '\0', len)) {
		snprintf(err, errlen, "key file %s contains a NUL byte", path);
		goto done;
	}

	for (line = buf; line; line = next) {
		char *p;

		lineno++;
		next = strchr(line, '\n');
		if (next) *next++ = '\0';

		for (p = line; is_blank(*p); p++);
		if (*p == '\0' || *p == '#') continue;

		if (found) {
			snprintf(err, errlen, "%s line %u: more than one key line (the key is on line %u); "
				 "use one file per key", path, lineno, key_lineno);
			goto done;
		}
		if (parse_key_line(&tmp, line, path, lineno, err, errlen) < 0) goto done;
		found = 1;
		key_lineno = lineno;
	}

	if (!found) {
		snprintf(err, errlen, "key file %s holds no key line (expected \"ID HEX64\")", path);
		goto done;
	}

	*key = tmp;
	ret = 0;

done:
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(&tmp, sizeof(tmp));
	return ret;
}
