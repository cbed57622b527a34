/*
 * directory.c: the organisation policy of a user, and group membership.
 *
 * The policy of a user is on the nearest ancestor of the user's entry that
 * has the policy object class, so an OU overrides its organisation. Policy
 * and group entries change rarely and are read on every sign-in, so they
 * are cached for policy.cache_ttl seconds: an admin's change takes effect
 * within that time. User entries are never cached.
 */
RCSID("$Id$")

#include <ctype.h>
#include <pthread.h>

#include "directory.h"
#include "escape.h"

/** Kind of a cache entry. */
typedef enum {
	DIR_POLICY = 0,		//!< An ancestor of some user: its policy, or none.
	DIR_GROUP		//!< A configured group: its members.
} dir_kind_t;

/** One cached LDAP entry. Immutable once inserted: a refresh replaces it. */
typedef struct {
	dir_kind_t		kind;		//!< Policy or group.
	char			*key;		//!< Normalised DN, lower case.
	time_t			expires;	//!< Time after which it is read again.
	bool			found;		//!< Policy: the entry has the policy class. Group: it exists.
	twostep_policy_t	policy;		//!< Policy values, when found.
	char			*dn;		//!< DN as the server wrote it (policy.source_dn points here).
	char			**members;	//!< Group: normalised member DNs, sorted.
} dir_entry_t;

struct twostep_dir_cache {
	pthread_mutex_t		mutex;		//!< Guards tree.
	rbtree_t		*tree;		//!< dir_entry_t by kind and key.
};

static int entry_cmp(void const *one, void const *two)
{
	dir_entry_t const *a = one, *b = two;

	if (a->kind != b->kind) return (a->kind < b->kind) ? -1 : 1;
	return strcmp(a->key, b->key);
}

static void entry_free(void *data)
{
	talloc_free(data);
}

static int cache_free(twostep_dir_cache_t *cache)
{
	/* Freeing the tree's memory alone would not free the entries. */
	rbtree_free(cache->tree);
	pthread_mutex_destroy(&cache->mutex);
	return 0;
}

/** Create the cache. @return 0, or -1 when memory is short. */
int twostep_dir_init(rlm_twostep_t *inst)
{
	twostep_dir_cache_t *cache;

	cache = talloc_zero(inst, twostep_dir_cache_t);
	if (!cache) return -1;
	cache->tree = rbtree_create(cache, entry_cmp, entry_free, RBTREE_FLAG_REPLACE);
	if (!cache->tree) {
		talloc_free(cache);
		return -1;
	}
	pthread_mutex_init(&cache->mutex, NULL);
	talloc_set_destructor(cache, cache_free);
	inst->dir_cache = cache;
	return 0;
}

/** Free the cache and every entry in it. */
void twostep_dir_free(rlm_twostep_t *inst)
{
	TALLOC_FREE(inst->dir_cache);
}

/** Normalise a DN for comparison: the library's LDAPv3 form, in lower case. NULL when invalid. */
static char *dn_normalise(TALLOC_CTX *ctx, char const *dn)
{
	char	*norm = NULL, *out;

	if (ldap_dn_normalize(dn, LDAP_DN_FORMAT_LDAPV3, &norm, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS) return NULL;
	out = talloc_typed_strdup(ctx, norm);
	ldap_memfree(norm);
	for (char *p = out; *p; p++) *p = tolower((uint8_t) *p);
	return out;
}

/** Copy a DN in lower case, as the key of a DN that ldap_dn2str wrote. */
static char *dn_lower(TALLOC_CTX *ctx, char const *dn)
{
	char *out = talloc_typed_strdup(ctx, dn);

	for (char *p = out; p && *p; p++) *p = tolower((uint8_t) *p);
	return out;
}

/** Copy a fresh entry of the cache out under the lock. @return true on a hit. */
static bool cache_get(twostep_dir_cache_t *cache, TALLOC_CTX *ctx, dir_kind_t kind, char const *key,
		      time_t now, dir_entry_t *out)
{
	dir_entry_t	find = { .kind = kind, .key = (char *) (uintptr_t) key };
	dir_entry_t	*found;
	bool		hit = false;

	pthread_mutex_lock(&cache->mutex);
	found = rbtree_finddata(cache->tree, &find);
	if (found && found->expires > now) {
		*out = *found;
		out->dn = talloc_typed_strdup(ctx, found->dn);
		out->policy.source_dn = out->dn;
		out->members = NULL;
		if (found->members) {
			size_t num = talloc_array_length(found->members);

			out->members = talloc_zero_array(ctx, char *, num);
			for (size_t i = 0; i < num; i++) out->members[i] = talloc_typed_strdup(out->members, found->members[i]);
		}
		hit = true;
	}
	pthread_mutex_unlock(&cache->mutex);
	return hit;
}

/** Store a copy of an entry, replacing an older one. */
static void cache_put(rlm_twostep_t const *inst, dir_entry_t const *entry, time_t now)
{
	dir_entry_t	*copy;

	if (inst->policy.cache_ttl == 0) return;

	copy = talloc_zero(NULL, dir_entry_t);
	*copy = *entry;
	copy->key = talloc_typed_strdup(copy, entry->key);
	copy->dn = talloc_typed_strdup(copy, entry->dn);
	copy->policy.source_dn = copy->dn;
	copy->members = NULL;
	if (entry->members) {
		size_t num = talloc_array_length(entry->members);

		copy->members = talloc_zero_array(copy, char *, num);
		for (size_t i = 0; i < num; i++) copy->members[i] = talloc_typed_strdup(copy->members, entry->members[i]);
	}
	copy->expires = now + inst->policy.cache_ttl;

	pthread_mutex_lock(&inst->dir_cache->mutex);
	if (!rbtree_insert(inst->dir_cache->tree, copy)) talloc_free(copy);
	pthread_mutex_unlock(&inst->dir_cache->mutex);
}

/** Parse the policy attributes of an entry. Bad values are logged and read strictly. */
static void parse_policy(rlm_twostep_t const *inst, REQUEST *request, LDAP *handle, LDAPMessage *ldap_entry,
			 dir_entry_t *entry)
{
	twostep_ldap_attrs_t const	*a = &inst->attrs;
	twostep_policy_t		*policy = &entry->policy;
	char				*value, **values;

	value = twostep_ldap_first_value(request, handle, ldap_entry, a->enforcement);
	if (twostep_policy_parse_enforcement(&policy->enforcement, value ? value : "") < 0) {
		/* Unknown or missing: the strictest reading. */
		ERROR("rlm_twostep (%s): policy entry %s: %s \"%s\" is not required, optional or idp; "
		      "treating it as required", inst->name, entry->dn, a->enforcement, value ? value : "");
		policy->enforcement = TWOSTEP_ENFORCE_REQUIRED;
		policy->enforcement_invalid = true;
	}

	value = twostep_ldap_first_value(request, handle, ldap_entry, a->enroll_deadline);
	if (value && twostep_policy_parse_time(&policy->enroll_deadline, value) < 0) {
		/* No deadline means enrollment cannot be put off: the stricter reading. */
		ERROR("rlm_twostep (%s): policy entry %s: %s \"%s\" is not a GeneralizedTime; ignoring it",
		      inst->name, entry->dn, a->enroll_deadline, value);
		policy->enroll_deadline = 0;
	}

	values = twostep_ldap_all_values(request, handle, ldap_entry, a->allowed_methods);
	if (talloc_array_length(values) == 0) {
		policy->allowed_methods = TWOSTEP_POLICY_METHOD_ALL;
	} else {
		policy->allowed_methods = TWOSTEP_POLICY_METHOD_NONE;
		for (size_t i = 0; i < talloc_array_length(values); i++) {
			twostep_policy_method_t method = values[i] ? twostep_policy_parse_method(values[i]) :
								     TWOSTEP_POLICY_METHOD_NONE;

			if (method == TWOSTEP_POLICY_METHOD_NONE) {
				RWDEBUG("Policy entry %s: ignoring unknown %s value \"%s\"", entry->dn,
					a->allowed_methods, values[i] ? values[i] : "");
			}
			policy->allowed_methods |= method;
		}
	}
	talloc_free(values);
}

/** Read one ancestor: does it carry a policy, and which. */
static twostep_ldap_rcode_t fetch_policy(rlm_twostep_t const *inst, REQUEST *request, char const *dn,
					 dir_entry_t *entry)
{
	twostep_ldap_attrs_t const	*a = &inst->attrs;
	char const			*attrs[] = { a->enforcement, a->enroll_deadline, a->allowed_methods, NULL };
	char				class[256], filter[300];
	twostep_ldap_conn_t		*conn;
	LDAPMessage			*result;
	twostep_ldap_rcode_t		rcode;

	if (twostep_ldap_escape_filter(class, sizeof(class), a->policy_object_class) < 0) return TWOSTEP_LDAP_ERROR;
	snprintf(filter, sizeof(filter), "(objectClass=%s)", class);

	rcode = twostep_ldap_search(inst, request, &conn, dn, LDAP_SCOPE_BASE, filter, attrs, &result);
	if (rcode == TWOSTEP_LDAP_NOT_FOUND) {
		entry->found = false;
		return TWOSTEP_LDAP_OK;
	}
	if (rcode != TWOSTEP_LDAP_OK) return rcode;

	entry->found = true;
	parse_policy(inst, request, conn->handle, ldap_first_entry(conn->handle, result), entry);
	ldap_msgfree(result);
	twostep_ldap_release(inst, conn);
	return TWOSTEP_LDAP_OK;
}

/** Find the policy that applies to a user: the nearest ancestor entry with the policy class.
 *
 * @param[in] inst	Module instance.
 * @param[in] request	Current request; policy->source_dn is allocated under it.
 * @param[in] user_dn	DN of the user's entry.
 * @param[out] policy	The policy, or the configured default with source_dn NULL.
 * @return TWOSTEP_LDAP_OK, or the result of a failed search (the caller fails closed).
 */
twostep_ldap_rcode_t twostep_dir_policy(rlm_twostep_t const *inst, REQUEST *request, char const *user_dn,
					twostep_policy_t *policy)
{
	LDAPDN			ldn = NULL;
	time_t			now = time(NULL);
	twostep_ldap_rcode_t	rcode = TWOSTEP_LDAP_OK;

	memset(policy, 0, sizeof(*policy));

	if (ldap_str2dn(user_dn, &ldn, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS) {
		REDEBUG("The user's DN \"%s\" is not a valid DN", user_dn);
		return TWOSTEP_LDAP_ERROR;
	}

	/* ldn[0] is the user's own RDN; ldn + i is the DN of the i-th ancestor. */
	for (size_t i = 1; ldn[i]; i++) {
		dir_entry_t	entry = { .kind = DIR_POLICY };
		char		*ancestor = NULL;

		if (ldap_dn2str(ldn + i, &ancestor, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS) {
			rcode = TWOSTEP_LDAP_ERROR;
			break;
		}
		entry.dn = talloc_typed_strdup(request, ancestor);
		ldap_memfree(ancestor);
		/* ldap_dn2str already wrote the LDAPv3 form: lower case is all the key needs. */
		entry.key = dn_lower(request, entry.dn);
		if (!entry.key) {
			rcode = TWOSTEP_LDAP_ERROR;
			break;
		}

		if (!cache_get(inst->dir_cache, request, DIR_POLICY, entry.key, now, &entry)) {
			rcode = fetch_policy(inst, request, entry.dn, &entry);
			if (rcode != TWOSTEP_LDAP_OK) break;
			cache_put(inst, &entry, now);
		}
		if (!entry.found) continue;

		*policy = entry.policy;
		policy->source_dn = entry.dn;
		RDEBUG2("Policy from %s", entry.dn);
		ldap_dnfree(ldn);
		return TWOSTEP_LDAP_OK;
	}
	ldap_dnfree(ldn);
	if (rcode != TWOSTEP_LDAP_OK) {
		REDEBUG("Reading the policy of %s failed", user_dn);
		return rcode;
	}

	policy->enforcement = inst->policy.default_enforcement;
	policy->allowed_methods = TWOSTEP_POLICY_METHOD_ALL;
	RDEBUG2("No ancestor of %s has a policy, using the default (%s)", user_dn, inst->policy.default_str);
	return TWOSTEP_LDAP_OK;
}

static int str_cmp(void const *one, void const *two)
{
	return strcmp(*(char * const *) one, *(char * const *) two);
}

/** Read a group's members, normalised and sorted. */
static twostep_ldap_rcode_t fetch_group(rlm_twostep_t const *inst, REQUEST *request, dir_entry_t *entry)
{
	char const		*attrs[] = { inst->attrs.group_member, NULL };
	twostep_ldap_conn_t	*conn;
	LDAPMessage		*result;
	twostep_ldap_rcode_t	rcode;
	char			**values;
	size_t			num, used = 0;

	rcode = twostep_ldap_search(inst, request, &conn, entry->dn, LDAP_SCOPE_BASE, "(objectClass=*)", attrs, &result);
	if (rcode == TWOSTEP_LDAP_NOT_FOUND) {
		RWDEBUG("Group %s not found: no user is a member of it", entry->dn);
		entry->found = false;
		entry->members = talloc_zero_array(request, char *, 0);
		return TWOSTEP_LDAP_OK;
	}
	if (rcode != TWOSTEP_LDAP_OK) return rcode;

	values = twostep_ldap_all_values(request, conn->handle, ldap_first_entry(conn->handle, result),
					 inst->attrs.group_member);
	ldap_msgfree(result);
	twostep_ldap_release(inst, conn);

	num = talloc_array_length(values);
	entry->members = talloc_zero_array(request, char *, num);
	for (size_t i = 0; i < num; i++) {
		char *norm = values[i] ? dn_normalise(entry->members, values[i]) : NULL;

		if (norm) entry->members[used++] = norm;
	}
	entry->members = talloc_realloc(request, entry->members, char *, used);
	qsort(entry->members, used, sizeof(entry->members[0]), str_cmp);
	entry->found = true;
	talloc_free(values);
	return TWOSTEP_LDAP_OK;
}

/** Tell whether a user belongs to a group.
 *
 * The user's member-of values are checked first, at no LDAP cost; then the
 * group's own member list, from the cache or from LDAP.
 *
 * @param[in] inst		Module instance.
 * @param[in] request		Current request.
 * @param[in] group_dn		The group.
 * @param[in] user_dn		The user's DN.
 * @param[in] member_of		The user's member-of values (a talloc array, may be NULL).
 * @param[out] is_member	Whether the user is a member, on TWOSTEP_LDAP_OK.
 * @return TWOSTEP_LDAP_OK, or the result of a failed search (the caller fails closed).
 */
twostep_ldap_rcode_t twostep_dir_is_member(rlm_twostep_t const *inst, REQUEST *request, char const *group_dn,
					   char const *user_dn, char * const *member_of, bool *is_member)
{
	dir_entry_t		entry = { .kind = DIR_GROUP };
	char			*user_key;
	time_t			now = time(NULL);
	twostep_ldap_rcode_t	rcode;

	*is_member = false;
	entry.dn = talloc_typed_strdup(request, group_dn);
	entry.key = dn_normalise(request, group_dn);
	user_key = dn_normalise(request, user_dn);
	if (!entry.key || !user_key) {
		REDEBUG("Group DN \"%s\" or user DN \"%s\" is not a valid DN", group_dn, user_dn);
		return TWOSTEP_LDAP_ERROR;
	}

	for (size_t i = 0; member_of && i < talloc_array_length(member_of); i++) {
		char *norm;

		if (!member_of[i]) continue;
		norm = dn_normalise(request, member_of[i]);
		if (norm && strcmp(norm, entry.key) == 0) {
			*is_member = true;
			return TWOSTEP_LDAP_OK;
		}
	}

	if (!cache_get(inst->dir_cache, request, DIR_GROUP, entry.key, now, &entry)) {
		rcode = fetch_group(inst, request, &entry);
		if (rcode != TWOSTEP_LDAP_OK) return rcode;
		cache_put(inst, &entry, now);
	}

	*is_member = bsearch(&user_key, entry.members, talloc_array_length(entry.members),
			     sizeof(entry.members[0]), str_cmp) != NULL;
	return TWOSTEP_LDAP_OK;
}
