/*
 * sms.c: sending SMS codes through HTTP gateways with libcurl.
 *
 * Gateways are tried in order until one accepts the message, within one
 * overall send budget, so failover never outlasts a NAS's retransmit timer.
 * Each gateway keeps a pool of curl handles, and a handle keeps its
 * connection open between requests, so a burst of sign-ins does not pay a
 * TLS handshake per message. Nothing sent or received is logged: the body
 * contains the code, and the number appears only masked.
 */
RCSID("$Id$")

#include <curl/curl.h>
#include <pthread.h>

#include "sms.h"
#include "crypto.h"

/** Largest part of a gateway response kept for the success check. The rest is read and dropped. */
#define BODY_MAX		4096

/** Largest rendered URL, header or body. */
#define RENDER_MAX		4096

/** The sends of the last hour, for the installation-wide limit. */
struct twostep_sms_window {
	pthread_mutex_t		mutex;		//!< Guards every field below.
	time_t			*times;		//!< Ring of send times, oldest at head.
	size_t			capacity;	//!< max_per_hour_total.
	size_t			head;		//!< Oldest entry.
	size_t			count;		//!< Entries in use.
};

static const CONF_PARSER gateway_config[] = {
	{ "url", FR_CONF_OFFSET(PW_TYPE_STRING | PW_TYPE_REQUIRED, twostep_gateway_t, url), NULL },
	{ "method", FR_CONF_OFFSET(PW_TYPE_STRING, twostep_gateway_t, method_str), "POST" },
	{ "body", FR_CONF_OFFSET(PW_TYPE_STRING, twostep_gateway_t, body), NULL },
	{ "body_encoding", FR_CONF_OFFSET(PW_TYPE_STRING, twostep_gateway_t, body_encoding_str), "json" },
	{ "header", FR_CONF_OFFSET(PW_TYPE_STRING | PW_TYPE_MULTI, twostep_gateway_t, header_first), NULL },
	{ "token_file", FR_CONF_OFFSET(PW_TYPE_STRING, twostep_gateway_t, token_file), NULL },
	{ "token_env", FR_CONF_OFFSET(PW_TYPE_STRING, twostep_gateway_t, token_env), NULL },
	{ "username", FR_CONF_OFFSET(PW_TYPE_STRING, twostep_gateway_t, username), NULL },
	{ "password", FR_CONF_OFFSET(PW_TYPE_STRING | PW_TYPE_SECRET, twostep_gateway_t, password), NULL },
	{ "connect_timeout", FR_CONF_OFFSET(PW_TYPE_INTEGER, twostep_gateway_t, connect_timeout), "1500" },
	{ "timeout", FR_CONF_OFFSET(PW_TYPE_INTEGER, twostep_gateway_t, timeout), "3000" },
	{ "success_contains", FR_CONF_OFFSET(PW_TYPE_STRING, twostep_gateway_t, success_contains), NULL },
	{ "failure_contains", FR_CONF_OFFSET(PW_TYPE_STRING, twostep_gateway_t, failure_contains), NULL },
	{ "ca_file", FR_CONF_OFFSET(PW_TYPE_FILE_INPUT, twostep_gateway_t, ca_file), NULL },
	{ "tls_verify", FR_CONF_OFFSET(PW_TYPE_BOOLEAN, twostep_gateway_t, tls_verify), "yes" },
	{ "follow_redirects", FR_CONF_OFFSET(PW_TYPE_BOOLEAN, twostep_gateway_t, follow_redirects), "no" },
	CONF_PARSER_TERMINATOR
};

/** One pooled curl handle. */
typedef struct {
	CURL			*handle;	//!< Easy handle; keeps its connection between uses.
} gateway_conn_t;

/** Response body, bounded. */
typedef struct {
	char			data[BODY_MAX];	//!< First BODY_MAX bytes of the body.
	size_t			len;		//!< Bytes kept.
} body_t;

static int gateway_conn_free(gateway_conn_t *conn)
{
	if (conn->handle) curl_easy_cleanup(conn->handle);
	return 0;
}

static void *gateway_conn_create(TALLOC_CTX *ctx, UNUSED void *opaque)
{
	gateway_conn_t *conn;

	conn = talloc_zero(ctx, gateway_conn_t);
	conn->handle = curl_easy_init();
	if (!conn->handle) {
		talloc_free(conn);
		return NULL;
	}
	talloc_set_destructor(conn, gateway_conn_free);
	return conn;
}

static size_t body_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	body_t	*body = userdata;
	size_t	len = size * nmemb;
	size_t	room = sizeof(body->data) - body->len;
	size_t	keep = len < room ? len : room;

	memcpy(body->data + body->len, ptr, keep);
	body->len += keep;
	return len;
}

/** Read a token from a file (first line) or an environment variable. */
static int load_token(rlm_twostep_t *inst, twostep_gateway_t *gw)
{
	char	buf[1024];
	FILE	*fp;
	size_t	len;

	if (gw->token_env) {
		char const *value = getenv(gw->token_env);

		if (!value || !*value) {
			ERROR("rlm_twostep (%s): gateway %s: environment variable %s is not set", inst->name,
			      gw->name, gw->token_env);
			return -1;
		}
		gw->token = talloc_typed_strdup(inst->sms.gateways, value);
		return 0;
	}
	if (!gw->token_file) return 0;

	fp = fopen(gw->token_file, "r");
	if (!fp) {
		ERROR("rlm_twostep (%s): gateway %s: cannot open token_file %s: %s", inst->name, gw->name,
		      gw->token_file, fr_syserror(errno));
		return -1;
	}
	if (!fgets(buf, sizeof(buf), fp)) buf[0] = '\0';
	fclose(fp);
	len = strcspn(buf, "\r\n");
	buf[len] = '\0';
	if (!len) {
		ERROR("rlm_twostep (%s): gateway %s: token_file %s is empty", inst->name, gw->name, gw->token_file);
		return -1;
	}
	gw->token = talloc_typed_strdup(inst->sms.gateways, buf);
	twostep_wipe(buf, sizeof(buf));
	return 0;
}

/** Parse one gateway section and create its pool of curl handles. */
static int gateway_init(rlm_twostep_t *inst, CONF_SECTION *cs, twostep_gateway_t *gw)
{
	CONF_PAIR	*cp;
	CONF_SECTION	*pool_cs;
	char		prefix[128];
	size_t		num = 0, i = 0;

	gw->name = cf_section_name2(cs) ? cf_section_name2(cs) : "gateway";
	if (cf_section_parse(cs, gw, gateway_config) < 0) return -1;

	if (strcasecmp(gw->method_str, "POST") == 0) {
		gw->post = true;
	} else if (strcasecmp(gw->method_str, "GET") != 0) {
		cf_log_err_cs(cs, "Invalid method \"%s\": use POST or GET", gw->method_str);
		return -1;
	}
	if (gw->post && !gw->body) {
		cf_log_err_cs(cs, "Gateway %s uses POST but has no body", gw->name);
		return -1;
	}
	if (strcasecmp(gw->body_encoding_str, "json") == 0) {
		gw->body_encoding = TWOSTEP_ENCODE_JSON;
	} else if (strcasecmp(gw->body_encoding_str, "form") == 0) {
		gw->body_encoding = TWOSTEP_ENCODE_FORM;
	} else {
		cf_log_err_cs(cs, "Invalid body_encoding \"%s\": use json or form", gw->body_encoding_str);
		return -1;
	}
	if (gw->connect_timeout < 100 || gw->connect_timeout > 30000 || gw->timeout < 100 || gw->timeout > 60000) {
		cf_log_err_cs(cs, "Gateway %s: connect_timeout must be 100..30000 ms and timeout 100..60000 ms",
			      gw->name);
		return -1;
	}
	if (strncasecmp(gw->url, "https://", 8) != 0) {
		if (strncasecmp(gw->url, "http://", 7) != 0) {
			cf_log_err_cs(cs, "Gateway %s: url must start with https:// or http://", gw->name);
			return -1;
		}
		WARN("rlm_twostep (%s): gateway %s uses plain http: codes and numbers cross the network unencrypted",
		     inst->name, gw->name);
	}
	if (!gw->tls_verify) {
		WARN("rlm_twostep (%s): gateway %s: tls_verify = no lets anyone in the path read the codes",
		     inst->name, gw->name);
	}

	for (cp = cf_pair_find(cs, "header"); cp; cp = cf_pair_find_next(cs, cp, "header")) num++;
	gw->headers = talloc_zero_array(inst->sms.gateways, char const *, num);
	for (cp = cf_pair_find(cs, "header"); cp; cp = cf_pair_find_next(cs, cp, "header")) {
		gw->headers[i++] = cf_pair_value(cp);
	}

	if (load_token(inst, gw) < 0) return -1;

	/* Without a pool section the pool would hold at most 10 handles, fewer than radiusd's threads. */
	pool_cs = cf_section_sub_find(cs, "pool");
	if (!pool_cs) {
		pool_cs = cf_section_alloc(cs, "pool", NULL);
		cf_section_add(cs, pool_cs);
		cf_pair_add(pool_cs, cf_pair_alloc(pool_cs, "start", "0", T_OP_EQ, T_BARE_WORD, T_BARE_WORD));
		cf_pair_add(pool_cs, cf_pair_alloc(pool_cs, "min", "0", T_OP_EQ, T_BARE_WORD, T_BARE_WORD));
		cf_pair_add(pool_cs, cf_pair_alloc(pool_cs, "max", "32", T_OP_EQ, T_BARE_WORD, T_BARE_WORD));
		cf_pair_add(pool_cs, cf_pair_alloc(pool_cs, "spare", "4", T_OP_EQ, T_BARE_WORD, T_BARE_WORD));
	}
	snprintf(prefix, sizeof(prefix), "rlm_twostep (%s) gateway %s", inst->name, gw->name);
	gw->pool = fr_connection_pool_module_init(cs, gw, gateway_conn_create, NULL, prefix);
	return gw->pool ? 0 : -1;
}

/** Read the gateways and create the hourly window.
 *
 * @return 0 on success, -1 on a configuration error (logged).
 */
int twostep_sms_init(rlm_twostep_t *inst, CONF_SECTION *sms_cs)
{
	twostep_sms_conf_t	*sms = &inst->sms;
	CONF_SECTION		*cs;
	size_t			num = 0, i = 0;

	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
		cf_log_err_cs(sms_cs, "Initialising libcurl failed");
		return -1;
	}

	sms->window = talloc_zero(inst, twostep_sms_window_t);
	sms->window->capacity = sms->max_per_hour_total;
	sms->window->times = talloc_zero_array(sms->window, time_t, sms->max_per_hour_total);
	pthread_mutex_init(&sms->window->mutex, NULL);

	if (!sms_cs) return 0;
	for (cs = cf_subsection_find_next(sms_cs, NULL, "gateway"); cs;
	     cs = cf_subsection_find_next(sms_cs, cs, "gateway")) num++;

	sms->gateways = talloc_zero_array(inst, twostep_gateway_t, num);
	sms->num_gateways = num;
	for (cs = cf_subsection_find_next(sms_cs, NULL, "gateway"); cs;
	     cs = cf_subsection_find_next(sms_cs, cs, "gateway")) {
		if (gateway_init(inst, cs, &sms->gateways[i++]) < 0) return -1;
	}
	return 0;
}

/** Free the gateways' pools and the window. */
void twostep_sms_free(rlm_twostep_t *inst)
{
	for (size_t i = 0; i < inst->sms.num_gateways; i++) {
		if (inst->sms.gateways[i].pool) fr_connection_pool_free(inst->sms.gateways[i].pool);
		inst->sms.gateways[i].pool = NULL;
	}
	if (inst->sms.window) pthread_mutex_destroy(&inst->sms.window->mutex);
	curl_global_cleanup();
}

/** Take one send from this radiusd's hourly allowance.
 *
 * @param[in] inst	Module instance.
 * @param[in] now	Current time.
 * @param[out] retry_at	When refused: when the oldest send leaves the window.
 * @return true when the send may go ahead (it is then counted).
 */
bool twostep_sms_window_take(rlm_twostep_t const *inst, time_t now, time_t *retry_at)
{
	twostep_sms_window_t	*w = inst->sms.window;
	bool			ok = false;

	pthread_mutex_lock(&w->mutex);
	while (w->count > 0 && w->times[w->head] <= now - 3600) {
		w->head = (w->head + 1) % w->capacity;
		w->count--;
	}
	if (w->count < w->capacity) {
		w->times[(w->head + w->count) % w->capacity] = now;
		w->count++;
		ok = true;
	} else {
		*retry_at = w->times[w->head] + 3600;
	}
	pthread_mutex_unlock(&w->mutex);
	return ok;
}

/** Replace "{token}" in a header or password with the gateway's token. */
static char *with_token(TALLOC_CTX *ctx, twostep_gateway_t const *gw, char const *value)
{
	char const	*at = strstr(value, "{token}");

	if (!at || !gw->token) return talloc_typed_strdup(ctx, value);
	return talloc_typed_asprintf(ctx, "%.*s%s%s", (int) (at - value), value, gw->token, at + 7);
}

/*
 *	Set one curl option, naming it when it fails.
 */
#define SET_OPT(_opt, _val) do { \
	if ((cerr = curl_easy_setopt(conn->handle, _opt, _val)) != CURLE_OK) { \
		REDEBUG("Gateway %s: setting %s failed: %s", gw->name, #_opt, curl_easy_strerror(cerr)); \
		goto finish; \
	} \
} while (0)

/** Send one message through one gateway. @return true when the gateway accepted it. */
static bool gateway_send(twostep_gateway_t const *gw, REQUEST *request, char const *e164, char const *masked,
			 char const *message, char const *code, long timeout_ms)
{
	gateway_conn_t		*conn;
	struct curl_slist	*headers = NULL;
	char			url[RENDER_MAX], body[RENDER_MAX];
	body_t			*answer = NULL;
	char			*auth = NULL;
	CURLcode		cerr = CURLE_OK;
	long			status = 0;
	bool			ok = false;
	struct timeval		start, end;

	conn = fr_connection_get(gw->pool);
	if (!conn) {
		REDEBUG("Gateway %s: no HTTP handle available", gw->name);
		return false;
	}
	body[0] = '\0';

	if (twostep_template_render(url, sizeof(url), gw->url, TWOSTEP_ENCODE_URL, e164, message, code) < 0 ||
	    (gw->post && twostep_template_render(body, sizeof(body), gw->body, gw->body_encoding,
						 e164, message, code) < 0)) {
		REDEBUG("Gateway %s: the url or body template is too long or names an unknown value", gw->name);
		goto finish;
	}

	answer = talloc_zero(request, body_t);
	curl_easy_reset(conn->handle);
	SET_OPT(CURLOPT_URL, url);
	SET_OPT(CURLOPT_NOSIGNAL, 1L);
	SET_OPT(CURLOPT_PROTOCOLS_STR, "http,https");
	SET_OPT(CURLOPT_TCP_KEEPALIVE, 1L);
	SET_OPT(CURLOPT_CONNECTTIMEOUT_MS, (long) gw->connect_timeout < timeout_ms ? (long) gw->connect_timeout : timeout_ms);
	SET_OPT(CURLOPT_TIMEOUT_MS, timeout_ms);
	SET_OPT(CURLOPT_FOLLOWLOCATION, gw->follow_redirects ? 1L : 0L);
	SET_OPT(CURLOPT_SSL_VERIFYPEER, gw->tls_verify ? 1L : 0L);
	SET_OPT(CURLOPT_SSL_VERIFYHOST, gw->tls_verify ? 2L : 0L);
	if (gw->ca_file) SET_OPT(CURLOPT_CAINFO, gw->ca_file);
	SET_OPT(CURLOPT_WRITEFUNCTION, body_write);
	SET_OPT(CURLOPT_WRITEDATA, answer);

	if (gw->post) {
		headers = curl_slist_append(headers, gw->body_encoding == TWOSTEP_ENCODE_JSON ?
					    "Content-Type: application/json" :
					    "Content-Type: application/x-www-form-urlencoded");
		SET_OPT(CURLOPT_POSTFIELDSIZE, (long) strlen(body));
		SET_OPT(CURLOPT_POSTFIELDS, body);
	} else {
		SET_OPT(CURLOPT_HTTPGET, 1L);
	}
	for (size_t i = 0; i < talloc_array_length(gw->headers); i++) {
		char *header = with_token(request, gw, gw->headers[i]);

		headers = curl_slist_append(headers, header);
		twostep_wipe(header, strlen(header));
		talloc_free(header);
	}
	if (headers) SET_OPT(CURLOPT_HTTPHEADER, headers);
	if (gw->username) {
		auth = with_token(request, gw, gw->password ? gw->password : "");
		SET_OPT(CURLOPT_USERNAME, gw->username);
		SET_OPT(CURLOPT_PASSWORD, auth);
	}

	gettimeofday(&start, NULL);
	cerr = curl_easy_perform(conn->handle);
	gettimeofday(&end, NULL);
	curl_easy_getinfo(conn->handle, CURLINFO_RESPONSE_CODE, &status);

	if (cerr == CURLE_OK && twostep_gateway_success(status, answer->data, answer->len,
							 gw->success_contains, gw->failure_contains)) {
		RDEBUG2("Gateway %s accepted the message to %s (HTTP %ld, %ld ms)", gw->name, masked, status,
			(long) ((end.tv_sec - start.tv_sec) * 1000 + (end.tv_usec - start.tv_usec) / 1000));
		ok = true;
	} else {
		RERROR("Gateway %s failed for %s: HTTP %ld, curl: %s, after %ld ms", gw->name, masked, status,
		       cerr == CURLE_OK ? (status / 100 == 2 ? "answer body reports an error" : "ok") :
		       curl_easy_strerror(cerr),
		       (long) ((end.tv_sec - start.tv_sec) * 1000 + (end.tv_usec - start.tv_usec) / 1000));
	}

finish:
	/* The handle keeps pointers to the options until the next reset. */
	if (conn->handle) curl_easy_reset(conn->handle);
	if (headers) curl_slist_free_all(headers);
	twostep_wipe(body, sizeof(body));
	twostep_wipe(url, sizeof(url));
	if (auth) {
		twostep_wipe(auth, strlen(auth));
		talloc_free(auth);
	}
	talloc_free(answer);
	if (cerr == CURLE_OPERATION_TIMEDOUT || cerr == CURLE_COULDNT_CONNECT) {
		/* The connection may be half-open: do not reuse it. */
		fr_connection_close(gw->pool, conn, "request failed");
	} else {
		fr_connection_release(gw->pool, conn);
	}
	return ok;
}

/** Send a code by SMS, trying the gateways in order within the send budget.
 *
 * @param[in] inst	Module instance.
 * @param[in] request	Current request.
 * @param[in] e164	Number, normalised.
 * @param[in] masked	The same number masked, for log lines.
 * @param[in] code	The code.
 * @return TWOSTEP_SMS_SENT or TWOSTEP_SMS_FAILED (each failure is logged).
 */
twostep_sms_rcode_t twostep_sms_send(rlm_twostep_t const *inst, REQUEST *request, char const *e164,
				     char const *masked, char const *code)
{
	twostep_sms_conf_t const	*sms = &inst->sms;
	char				message[RENDER_MAX];
	struct timeval			start, now;
	twostep_sms_rcode_t		rcode = TWOSTEP_SMS_FAILED;

	if (twostep_template_render(message, sizeof(message), sms->message, TWOSTEP_ENCODE_NONE,
				    e164, NULL, code) < 0) {
		REDEBUG("sms.message is too long or names a value other than {code} and {phone}");
		return TWOSTEP_SMS_FAILED;
	}

	gettimeofday(&start, NULL);
	for (size_t i = 0; i < sms->num_gateways; i++) {
		long left;

		gettimeofday(&now, NULL);
		left = (long) sms->send_budget - ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_usec - start.tv_usec) / 1000);
		if (left < 100) {
			RERROR("SMS send budget of %u ms used up before gateway %s", sms->send_budget,
			       sms->gateways[i].name);
			break;
		}
		if (gateway_send(&sms->gateways[i], request, e164, masked, message, code,
				 left < (long) sms->gateways[i].timeout ? left : (long) sms->gateways[i].timeout)) {
			rcode = TWOSTEP_SMS_SENT;
			break;
		}
	}

	twostep_wipe(message, sizeof(message));
	return rcode;
}
