/*
 * ldap.c: LDAP connection pools, the user search and the password bind.
 *
 * Two pools of connections are kept. Connections of the search pool stay
 * bound as the service account; connections of the bind pool are re-bound
 * as each user whose password is checked. Keeping them apart means no
 * search ever waits for a rebind to the service account.
 */
RCSID("$Id$")

#include "ldap.h"
#include "escape.h"
#include "crypto.h"

/** Longest attribute value read, in bytes: seeds, flags, times, phone numbers and group DNs. */
#define VALUE_MAX_LEN		1024

static int conn_free(twostep_ldap_conn_t *conn)
{
	if (conn->handle) ldap_unbind_ext_s(conn->handle, NULL, NULL);
	conn->handle = NULL;
	return 0;
}

/*
 *	Set one libldap option, naming it in the error when it fails.
 */
#define SET_OPTION(_ld, _opt, _val) do { \
	if (ldap_set_option(_ld, _opt, _val) != LDAP_OPT_SUCCESS) { \
		ERROR("rlm_twostep (%s): setting %s on %s failed", inst->name, #_opt, uri); \
		goto error; \
	} \
} while (0)

/** Open one server: connect, StartTLS if configured, bind as the service account.
 *
 * @return a bound handle, or NULL (the reason is logged).
 */
static LDAP *conn_open_uri(rlm_twostep_t const *inst, char const *uri)
{
	LDAP		*ld = NULL;
	int		rc;
	int		version = LDAP_VERSION3;
	struct timeval	net_timeout = { .tv_sec = inst->ldap.net_timeout };
	struct timeval	op_timeout = { .tv_sec = inst->ldap.timeout };
	bool		ldaps = (strncasecmp(uri, "ldaps://", 8) == 0);
	struct berval	cred;

	rc = ldap_initialize(&ld, uri);
	if (rc != LDAP_SUCCESS) {
		ERROR("rlm_twostep (%s): LDAP URI \"%s\" is invalid: %s", inst->name, uri, ldap_err2string(rc));
		return NULL;
	}

	SET_OPTION(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
	SET_OPTION(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
	SET_OPTION(ld, LDAP_OPT_NETWORK_TIMEOUT, &net_timeout);
	SET_OPTION(ld, LDAP_OPT_TIMEOUT, &op_timeout);

	if (ldaps || inst->ldap.start_tls) {
		int newctx = 0;

		if (inst->ldap.tls_ca_file) SET_OPTION(ld, LDAP_OPT_X_TLS_CACERTFILE, inst->ldap.tls_ca_file);
		if (inst->ldap.tls_ca_path) SET_OPTION(ld, LDAP_OPT_X_TLS_CACERTDIR, inst->ldap.tls_ca_path);
		SET_OPTION(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &inst->ldap.tls_require_cert);
		/* Apply the TLS options above to this handle alone. */
		SET_OPTION(ld, LDAP_OPT_X_TLS_NEWCTX, &newctx);
	}

	if (inst->ldap.start_tls && !ldaps) {
		rc = ldap_start_tls_s(ld, NULL, NULL);
		if (rc != LDAP_SUCCESS) {
			ERROR("rlm_twostep (%s): StartTLS with %s failed: %s", inst->name, uri, ldap_err2string(rc));
			goto error;
		}
	}

	/* The bind also opens the TCP connection, so a dead server fails here. */
	cred.bv_val = (char *) (uintptr_t) (inst->ldap.password ? inst->ldap.password : "");
	cred.bv_len = strlen(cred.bv_val);
	rc = ldap_sasl_bind_s(ld, inst->ldap.identity ? inst->ldap.identity : "", LDAP_SASL_SIMPLE,
			      &cred, NULL, NULL, NULL);
	if (rc != LDAP_SUCCESS) {
		ERROR("rlm_twostep (%s): service account bind to %s failed: %s", inst->name, uri, ldap_err2string(rc));
		goto error;
	}

	return ld;

error:
	ldap_unbind_ext_s(ld, NULL, NULL);
	return NULL;
}

/** Pool callback: open a connection to the first server that accepts the service account's bind. */
static void *mod_conn_create(TALLOC_CTX *ctx, void *instance)
{
	rlm_twostep_t const	*inst = instance;
	twostep_ldap_conn_t	*conn;
	size_t			i, num = talloc_array_length(inst->ldap.server);

	for (i = 0; i < num; i++) {
		LDAP *ld = conn_open_uri(inst, inst->ldap.server[i]);

		if (!ld) continue;

		conn = talloc_zero(ctx, twostep_ldap_conn_t);
		conn->handle = ld;
		conn->uri = inst->ldap.server[i];
		talloc_set_destructor(conn, conn_free);
		DEBUG2("rlm_twostep (%s): connected to %s", inst->name, conn->uri);
		return conn;
	}

	ERROR("rlm_twostep (%s): none of the %zu LDAP servers could be reached", inst->name, num);
	return NULL;
}

/** Create the search and bind pools.
 *
 * @return 0 on success, -1 on error.
 */
int twostep_ldap_init(rlm_twostep_t *inst)
{
	CONF_SECTION	*bind_cs;
	char		prefix[128];

	snprintf(prefix, sizeof(prefix), "rlm_twostep (%s) search", inst->name);
	inst->search_pool = fr_connection_pool_module_init(inst->cs, inst, mod_conn_create, NULL, prefix);
	if (!inst->search_pool) return -1;

	/* The "bind" sub-section contains the bind pool's own "pool" section. */
	bind_cs = cf_section_sub_find(inst->cs, "bind");
	if (!bind_cs) {
		bind_cs = cf_section_alloc(inst->cs, "bind", NULL);
		cf_section_add(inst->cs, bind_cs);
	}
	snprintf(prefix, sizeof(prefix), "rlm_twostep (%s) bind", inst->name);
	inst->bind_pool = fr_connection_pool_module_init(bind_cs, inst, mod_conn_create, NULL, prefix);
	if (!inst->bind_pool) return -1;

	return 0;
}

/** Free both pools, closing their connections. */
void twostep_ldap_free(rlm_twostep_t *inst)
{
	if (inst->bind_pool) fr_connection_pool_free(inst->bind_pool);
	if (inst->search_pool) fr_connection_pool_free(inst->search_pool);
	inst->bind_pool = inst->search_pool = NULL;
}

/** xlat escape callback: RFC 4515 escaping of every value put into the filter. */
static size_t filter_escape(UNUSED REQUEST *request, char *out, size_t outlen, char const *in, UNUSED void *arg)
{
	ssize_t len = twostep_ldap_escape_filter(out, outlen, in);

	if (len < 0) {
		/* Too long to escape: an empty value makes the filter invalid, so the search fails. */
		if (outlen) out[0] = '\0';
		return 0;
	}
	return len;
}

/** Copy one LDAP value into a talloc string, refusing empty, long and NUL-carrying values. */
static char *value_to_string(TALLOC_CTX *ctx, struct berval const *value)
{
	if (value->bv_len == 0 || value->bv_len > VALUE_MAX_LEN) return NULL;
	if (memchr(value->bv_val, '\0', value->bv_len)) return NULL;
	return talloc_strndup(ctx, value->bv_val, value->bv_len);
}

/** Return the first value of an attribute as a talloc string, or NULL when absent or unusable.
 *
 * The library's copy of every value is wiped, since the attribute may be a seed.
 */
char *twostep_ldap_first_value(TALLOC_CTX *ctx, LDAP *handle, LDAPMessage *entry, char const *attr)
{
	struct berval	**values;
	char		*out = NULL;

	if (!attr || !*attr) return NULL;
	values = ldap_get_values_len(handle, entry, attr);
	if (!values) return NULL;

	if (values[0]) out = value_to_string(ctx, values[0]);

	for (size_t i = 0; values[i]; i++) twostep_wipe(values[i]->bv_val, values[i]->bv_len);
	ldap_value_free_len(values);
	return out;
}

/** Return every usable value of an attribute as a talloc array of strings (empty when absent). */
char **twostep_ldap_all_values(TALLOC_CTX *ctx, LDAP *handle, LDAPMessage *entry, char const *attr)
{
	struct berval	**values = NULL;
	char		**out;
	size_t		i, num = 0;

	if (attr && *attr) values = ldap_get_values_len(handle, entry, attr);
	if (values) while (values[num]) num++;

	out = talloc_zero_array(ctx, char *, num);
	for (i = 0; i < num; i++) out[i] = value_to_string(out, values[i]);
	if (values) ldap_value_free_len(values);
	return out;
}

/** Return a short name of an LDAP step result, for log lines. */
char const *twostep_ldap_rcode_name(twostep_ldap_rcode_t rcode)
{
	switch (rcode) {
	case TWOSTEP_LDAP_OK:		return "ok";
	case TWOSTEP_LDAP_NOT_FOUND:	return "not found";
	case TWOSTEP_LDAP_AMBIGUOUS:	return "more than one entry";
	case TWOSTEP_LDAP_REJECT:	return "rejected";
	case TWOSTEP_LDAP_CONFLICT:	return "changed by another writer";
	case TWOSTEP_LDAP_UNAVAILABLE:	return "unavailable";
	case TWOSTEP_LDAP_ERROR:	return "error";
	}
	return "unknown";
}

/** Return a search connection to its pool. */
void twostep_ldap_release(rlm_twostep_t const *inst, twostep_ldap_conn_t *conn)
{
	fr_connection_release(inst->search_pool, conn);
}

/** Search with the service account, expecting exactly one entry.
 *
 * A connection found dead is replaced once, so a restarted server costs one
 * retry, not a failed request.
 *
 * @param[in] inst	Module instance.
 * @param[in] request	Current request, for logging.
 * @param[out] pconn	On TWOSTEP_LDAP_OK, the connection: give it back with twostep_ldap_release().
 * @param[in] base	Search base.
 * @param[in] scope	LDAP_SCOPE_BASE or LDAP_SCOPE_SUBTREE.
 * @param[in] filter	Filter, already escaped.
 * @param[in] attrs	Attributes to return, NULL-terminated.
 * @param[out] result	On TWOSTEP_LDAP_OK, the result with one entry: free it with ldap_msgfree().
 * @return
 *	- TWOSTEP_LDAP_OK one entry; *pconn and *result are set.
 *	- TWOSTEP_LDAP_NOT_FOUND no entry, or the base does not exist.
 *	- TWOSTEP_LDAP_AMBIGUOUS more than one entry.
 *	- TWOSTEP_LDAP_UNAVAILABLE no server, or a timeout.
 *	- TWOSTEP_LDAP_ERROR any other failure.
 *	On every result but OK, the connection and the result are already released.
 */
twostep_ldap_rcode_t twostep_ldap_search(rlm_twostep_t const *inst, REQUEST *request, twostep_ldap_conn_t **pconn,
					 char const *base, int scope, char const *filter,
					 char const * const *attrs, LDAPMessage **result)
{
	twostep_ldap_conn_t	*conn;
	struct timeval		timeout = { .tv_sec = inst->ldap.timeout };
	twostep_ldap_rcode_t	rcode;
	int			rc, count, tries;

	*pconn = NULL;
	*result = NULL;

	conn = fr_connection_get(inst->search_pool);
	if (!conn) {
		REDEBUG("No LDAP connection available for a search");
		return TWOSTEP_LDAP_UNAVAILABLE;
	}

	for (tries = 0; ; tries++) {
		RDEBUG3("Searching %s with filter %s", base, filter);
		rc = ldap_search_ext_s(conn->handle, base, scope, filter, (char **) (uintptr_t) attrs,
				       0, NULL, NULL, &timeout, 2, result);
		if (rc != LDAP_SERVER_DOWN || tries > 0) break;

		/* The connection died since its last use: open a fresh one, once. */
		if (*result) ldap_msgfree(*result);
		*result = NULL;
		RWDEBUG("LDAP connection to %s is down, reconnecting", conn->uri);
		conn = fr_connection_reconnect(inst->search_pool, conn);
		if (!conn) {
			REDEBUG("Reconnecting to LDAP failed");
			return TWOSTEP_LDAP_UNAVAILABLE;
		}
	}

	switch (rc) {
	case LDAP_SUCCESS:
	case LDAP_SIZELIMIT_EXCEEDED:
		count = ldap_count_entries(conn->handle, *result);
		if (rc == LDAP_SIZELIMIT_EXCEEDED || count > 1) {
			rcode = TWOSTEP_LDAP_AMBIGUOUS;
		} else if (count < 1) {
			rcode = TWOSTEP_LDAP_NOT_FOUND;
		} else {
			*pconn = conn;
			return TWOSTEP_LDAP_OK;
		}
		break;

	case LDAP_NO_SUCH_OBJECT:
		rcode = TWOSTEP_LDAP_NOT_FOUND;
		break;

	case LDAP_SERVER_DOWN:
	case LDAP_TIMEOUT:
	case LDAP_CONNECT_ERROR:
		/* A timed-out operation may still get a result later: never reuse that connection. */
		REDEBUG("Search of %s on %s failed: %s", base, conn->uri, ldap_err2string(rc));
		if (*result) ldap_msgfree(*result);
		*result = NULL;
		fr_connection_close(inst->search_pool, conn, "operation failed");
		return TWOSTEP_LDAP_UNAVAILABLE;

	default:
		REDEBUG("Search of %s on %s failed: %s", base, conn->uri, ldap_err2string(rc));
		rcode = TWOSTEP_LDAP_ERROR;
		break;
	}

	if (*result) ldap_msgfree(*result);
	*result = NULL;
	fr_connection_release(inst->search_pool, conn);
	return rcode;
}

/** Copy the 2SV attributes of a user's entry into user, under the request. */
static void read_user_values(rlm_twostep_t const *inst, REQUEST *request, LDAP *handle, LDAPMessage *entry,
			     twostep_ldap_user_t *user)
{
	twostep_ldap_attrs_t const *a = &inst->attrs;

	user->totp_secret = twostep_ldap_first_value(request, handle, entry, a->totp_secret);
	user->method = twostep_ldap_first_value(request, handle, entry, a->method);
	user->exempt = twostep_ldap_first_value(request, handle, entry, a->exempt);
	user->exempt_until = twostep_ldap_first_value(request, handle, entry, a->exempt_until);
	user->phone = twostep_ldap_first_value(request, handle, entry, a->phone);
	user->member_of = twostep_ldap_all_values(request, handle, entry, a->member_of);
	user->sms_sent = twostep_ldap_all_values(request, handle, entry, inst->sms.sent_attr);
	user->last_step = twostep_ldap_first_value(request, handle, entry, a->last_step);
	user->fail_count = twostep_ldap_first_value(request, handle, entry, a->fail_count);
	user->locked_until = twostep_ldap_first_value(request, handle, entry, a->locked_until);
	user->last_challenge = twostep_ldap_first_value(request, handle, entry, a->last_challenge);
}

/** Read the 2SV attributes of a user whose DN is known (round 2: a new SMS code).
 *
 * @return a result of twostep_ldap_search(); NOT_FOUND when the entry is gone.
 */
twostep_ldap_rcode_t twostep_ldap_read_user(rlm_twostep_t const *inst, REQUEST *request, char const *dn,
					    twostep_ldap_user_t *user)
{
	twostep_ldap_attrs_t const *a = &inst->attrs;
	char const		*attrs[] = { a->totp_secret, a->method, a->exempt, a->exempt_until,
					     a->phone, a->member_of, inst->sms.sent_attr, a->last_step, a->fail_count,
					     a->locked_until, a->last_challenge, NULL };
	twostep_ldap_conn_t	*conn;
	LDAPMessage		*result;
	twostep_ldap_rcode_t	rcode;

	memset(user, 0, sizeof(*user));
	rcode = twostep_ldap_search(inst, request, &conn, dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, &result);
	if (rcode != TWOSTEP_LDAP_OK) return rcode;

	user->dn = talloc_typed_strdup(request, dn);
	read_user_values(inst, request, conn->handle, ldap_first_entry(conn->handle, result), user);
	ldap_msgfree(result);
	twostep_ldap_release(inst, conn);
	return TWOSTEP_LDAP_OK;
}

/** Modify an entry with the service account, optionally under an RFC 4528 assertion.
 *
 * A modify that deletes a value another writer removed (noSuchAttribute),
 * adds one that exists (attributeOrValueExists), or whose assertion no longer
 * holds (assertionFailed) changes nothing, so callers use it as
 * compare-and-swap.
 *
 * @param[in] inst		Module instance.
 * @param[in] request		Current request.
 * @param[in] dn		Entry to modify.
 * @param[in] mods		Modifications, NULL-terminated.
 * @param[in] assertion		Filter the entry must match, or NULL.
 * @return
 *	- TWOSTEP_LDAP_OK the entry was changed.
 *	- TWOSTEP_LDAP_CONFLICT another writer got there first; nothing changed.
 *	- TWOSTEP_LDAP_NOT_FOUND the entry was deleted.
 *	- TWOSTEP_LDAP_UNAVAILABLE no server, or a timeout.
 *	- TWOSTEP_LDAP_ERROR any other failure (access denied...).
 */
twostep_ldap_rcode_t twostep_ldap_modify(rlm_twostep_t const *inst, REQUEST *request, char const *dn,
					 LDAPMod **mods, char const *assertion)
{
	twostep_ldap_conn_t	*conn;
	LDAPControl		*control = NULL;
	LDAPControl		*controls[2] = { NULL, NULL };
	int			rc, tries;

	conn = fr_connection_get(inst->search_pool);
	if (!conn) {
		REDEBUG("No LDAP connection available for a modify");
		return TWOSTEP_LDAP_UNAVAILABLE;
	}

	if (assertion) {
		rc = ldap_create_assertion_control(conn->handle, (char *) (uintptr_t) assertion, 1, &control);
		if (rc != LDAP_SUCCESS) {
			REDEBUG("Building the assertion control %s failed: %s", assertion, ldap_err2string(rc));
			fr_connection_release(inst->search_pool, conn);
			return TWOSTEP_LDAP_ERROR;
		}
		controls[0] = control;
	}

	for (tries = 0; ; tries++) {
		rc = ldap_modify_ext_s(conn->handle, dn, mods, controls, NULL);
		if (tries > 0) break;
		if (rc != LDAP_SERVER_DOWN && rc != LDAP_UNWILLING_TO_PERFORM && rc != LDAP_REFERRAL) break;

		/*
		 *	Down, or a read-only replica that a failover left this
		 *	connection on: a new connection starts again from the
		 *	first server of the list, the provider.
		 */
		RWDEBUG("LDAP modify on %s failed (%s), reconnecting", conn->uri, ldap_err2string(rc));
		conn = fr_connection_reconnect(inst->search_pool, conn);
		if (!conn) {
			if (control) ldap_control_free(control);
			REDEBUG("Reconnecting to LDAP failed");
			return TWOSTEP_LDAP_UNAVAILABLE;
		}
	}
	if (control) ldap_control_free(control);

	switch (rc) {
	case LDAP_SUCCESS:
		fr_connection_release(inst->search_pool, conn);
		return TWOSTEP_LDAP_OK;

	case LDAP_NO_SUCH_OBJECT:
		REDEBUG("Modify of %s failed: the entry no longer exists", dn);
		fr_connection_release(inst->search_pool, conn);
		return TWOSTEP_LDAP_NOT_FOUND;

	case LDAP_NO_SUCH_ATTRIBUTE:
	case LDAP_TYPE_OR_VALUE_EXISTS:
	case LDAP_ASSERTION_FAILED:
		RDEBUG2("Modify of %s lost to another writer: %s", dn, ldap_err2string(rc));
		fr_connection_release(inst->search_pool, conn);
		return TWOSTEP_LDAP_CONFLICT;

	case LDAP_SERVER_DOWN:
	case LDAP_TIMEOUT:
	case LDAP_CONNECT_ERROR:
		REDEBUG("Modify of %s on %s failed: %s", dn, conn->uri, ldap_err2string(rc));
		fr_connection_close(inst->search_pool, conn, "operation failed");
		return TWOSTEP_LDAP_UNAVAILABLE;

	default:
		/* Refused even on a new connection: do not keep this one for writes either. */
		REDEBUG("Modify of %s on %s failed: %s", dn, conn->uri, ldap_err2string(rc));
		fr_connection_close(inst->search_pool, conn, "modify refused");
		return TWOSTEP_LDAP_ERROR;
	}
}

/** Find the user's entry with the service account, and read the 2SV attributes on it.
 *
 * The filter is expanded with every value escaped as RFC 4515 requires. The
 * search must match exactly one entry.
 *
 * @param[in] inst	Module instance.
 * @param[in] request	Current request; the strings in user are allocated under it.
 * @param[out] user	The DN and attributes on TWOSTEP_LDAP_OK.
 * @return a result of twostep_ldap_search().
 */
twostep_ldap_rcode_t twostep_ldap_find_user(rlm_twostep_t const *inst, REQUEST *request,
					    twostep_ldap_user_t *user)
{
	twostep_ldap_attrs_t const *a = &inst->attrs;
	twostep_ldap_conn_t	*conn;
	char			*filter = NULL;
	char const		*attrs[] = { a->totp_secret, a->method, a->exempt, a->exempt_until,
					     a->phone, a->member_of, inst->sms.sent_attr, a->last_step, a->fail_count,
					     a->locked_until, a->last_challenge, NULL };
	LDAPMessage		*result, *entry;
	twostep_ldap_rcode_t	rcode;
	char			*dn;

	memset(user, 0, sizeof(*user));

	if (radius_axlat(&filter, request, inst->ldap.filter, filter_escape, NULL) < 0) {
		REDEBUG("Expanding the user filter failed");
		return TWOSTEP_LDAP_ERROR;
	}

	RDEBUG2("Searching for the user in %s with filter %s", inst->ldap.base_dn, filter);
	rcode = twostep_ldap_search(inst, request, &conn, inst->ldap.base_dn, LDAP_SCOPE_SUBTREE, filter,
				    attrs, &result);
	switch (rcode) {
	case TWOSTEP_LDAP_OK:
		break;

	case TWOSTEP_LDAP_AMBIGUOUS:
		REDEBUG("User filter %s matches more than one entry", filter);
		talloc_free(filter);
		return rcode;

	case TWOSTEP_LDAP_NOT_FOUND:
		RDEBUG2("No entry matches %s", filter);
		talloc_free(filter);
		return rcode;

	default:
		talloc_free(filter);
		return rcode;
	}
	talloc_free(filter);

	entry = ldap_first_entry(conn->handle, result);
	dn = entry ? ldap_get_dn(conn->handle, entry) : NULL;
	if (!dn) {
		REDEBUG("Reading the DN of the user's entry failed");
		rcode = TWOSTEP_LDAP_ERROR;
		goto finish;
	}
	user->dn = talloc_typed_strdup(request, dn);
	ldap_memfree(dn);

	read_user_values(inst, request, conn->handle, entry, user);
	RDEBUG2("Found %s (%s)", user->dn, user->totp_secret ? "TOTP seed on file" : "no TOTP seed");

finish:
	ldap_msgfree(result);
	twostep_ldap_release(inst, conn);
	return rcode;
}

/** Check a password with a simple bind as the user's DN.
 *
 * Exactly one bind reaches a server for a wrong password: a bind that gets an
 * answer is never retried, so directory lock-out counters count it once. Only
 * a connection found dead before the bind was answered is replaced and the
 * bind sent again.
 *
 * @param[in] inst		Module instance.
 * @param[in] request		Current request.
 * @param[in] dn		DN from the user search.
 * @param[in] password		Password bytes, never empty (an empty one would be an anonymous bind).
 * @param[in] password_len	Their length.
 * @return
 *	- TWOSTEP_LDAP_OK the password is right.
 *	- TWOSTEP_LDAP_REJECT wrong password, or the directory refused the account.
 *	- TWOSTEP_LDAP_UNAVAILABLE no server, or a timeout.
 *	- TWOSTEP_LDAP_ERROR any other failure.
 */
twostep_ldap_rcode_t twostep_ldap_check_password(rlm_twostep_t const *inst, REQUEST *request,
						 char const *dn, char const *password, size_t password_len)
{
	twostep_ldap_conn_t	*conn;
	struct berval		cred;
	int			rc, tries;

	/* An empty password makes a simple bind anonymous, which "succeeds". */
	if (!password || password_len == 0) {
		REDEBUG("Refusing to bind with an empty password");
		return TWOSTEP_LDAP_REJECT;
	}

	conn = fr_connection_get(inst->bind_pool);
	if (!conn) {
		REDEBUG("No LDAP connection available for the password check");
		return TWOSTEP_LDAP_UNAVAILABLE;
	}

	cred.bv_val = (char *) (uintptr_t) password;
	cred.bv_len = password_len;

	for (tries = 0; ; tries++) {
		RDEBUG2("Binding as %s", dn);
		rc = ldap_sasl_bind_s(conn->handle, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
		if (rc != LDAP_SERVER_DOWN || tries > 0) break;

		RWDEBUG("LDAP connection to %s is down, reconnecting", conn->uri);
		conn = fr_connection_reconnect(inst->bind_pool, conn);
		if (!conn) {
			REDEBUG("Reconnecting to LDAP failed");
			return TWOSTEP_LDAP_UNAVAILABLE;
		}
	}

	switch (rc) {
	case LDAP_SUCCESS:
		fr_connection_release(inst->bind_pool, conn);
		return TWOSTEP_LDAP_OK;

	case LDAP_INVALID_CREDENTIALS:
		fr_connection_release(inst->bind_pool, conn);
		RDEBUG2("Bind as %s rejected: invalid credentials", dn);
		return TWOSTEP_LDAP_REJECT;

	case LDAP_UNWILLING_TO_PERFORM:
	case LDAP_CONSTRAINT_VIOLATION:
	case LDAP_INAPPROPRIATE_AUTH:
		/* Account disabled or locked by the directory's password policy. */
		fr_connection_release(inst->bind_pool, conn);
		REDEBUG("Bind as %s refused by the directory: %s", dn, ldap_err2string(rc));
		return TWOSTEP_LDAP_REJECT;

	case LDAP_SERVER_DOWN:
	case LDAP_TIMEOUT:
	case LDAP_CONNECT_ERROR:
		REDEBUG("Bind on %s failed: %s", conn->uri, ldap_err2string(rc));
		fr_connection_close(inst->bind_pool, conn, "bind failed");
		return TWOSTEP_LDAP_UNAVAILABLE;

	default:
		fr_connection_release(inst->bind_pool, conn);
		REDEBUG("Bind as %s failed: %s", dn, ldap_err2string(rc));
		return TWOSTEP_LDAP_ERROR;
	}
}
