/* config_out.c - a struct vm_config written out through the field table
 * of config.c (config_priv.h): the snapshot's CONFIG and the config part
 * of `cvisor info` (config_to_json), and the usage synopsis of
 * `cvisor run` (config_usage). */
#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config_priv.h"
#include "cvisor/devices.h"

/* An exact size the parsers read back: "512M", "4100K", "12345b". */
static void size_text(uint64_t v, char *buf, size_t len)
{
	static const char units[] = "GMK";

	for (int i = 0; i < 3; i++) {
		uint64_t unit = 1ULL << (30 - 10 * i);

		if (v && !(v % unit)) {
			snprintf(buf, len, "%llu%c", (unsigned long long)(v / unit), units[i]);
			return;
		}
	}
	snprintf(buf, len, "%llub", (unsigned long long)v);
}

/* One field's JSON value in a view, or NULL when it is left out. *bad
 * is set when an allocation failed. */
static struct json_object *field_json(const struct vm_config *cfg, const struct field *f,
				      enum config_view view, bool *bad)
{
	bool info = view == CONFIG_VIEW_INFO;
	struct json_object *j = NULL;
	char num[32];

	switch (f->type) {
	case F_STR:
		if (!*CFIELD(cfg, f, char *))
			return NULL; /* info: null; the snapshot: left out */
		j = json_object_new_string(*CFIELD(cfg, f, char *));
		break;
	case F_CHARS:
		j = json_object_new_string(CFIELD(cfg, f, char));
		break;
	case F_UINT:
		if (!info && !*CFIELD(cfg, f, unsigned int))
			return NULL;
		j = json_object_new_int64(*CFIELD(cfg, f, unsigned int));
		break;
	case F_SIZE:
		if (info) {
			j = json_object_new_uint64(*CFIELD(cfg, f, uint64_t));
			break;
		}
		if (!*CFIELD(cfg, f, uint64_t))
			return NULL;
		size_text(*CFIELD(cfg, f, uint64_t), num, sizeof(num));
		j = json_object_new_string(num);
		break;
	case F_BOOL:
		j = json_object_new_boolean(*CFIELD(cfg, f, bool));
		break;
	case F_ENUM:
		if (!*CFIELD(cfg, f, int))
			return NULL; /* the default */
		j = json_object_new_string(f->names[*CFIELD(cfg, f, int)]);
		break;
	}
	*bad |= !j;
	return j;
}

/* The devices in the config file's form: true, "SPEC" or ["SPEC", ...]. */
static int devices_json(const struct devices_config *dc, struct json_object *o)
{
	unsigned int nt;
	const struct device_type *t = devices_table(&nt);

	for (unsigned int k = 0; k < nt; k++) {
		unsigned int n = devices_count(dc, &t[k]);
		struct json_object *j;

		if (!n)
			continue;
		if (!t[k].arg)
			j = json_object_new_boolean(true);
		else if (t[k].max == 1)
			j = json_object_new_string(devices_spec(dc, &t[k], 0));
		else if ((j = json_object_new_array()))
			for (unsigned int i = 0; i < n; i++)
				if (json_object_array_add(
					    j, json_object_new_string(devices_spec(dc, &t[k], i))))
					return json_object_put(j), -ENOMEM;
		if (!j || json_object_object_add(o, t[k].key, j))
			return json_object_put(j), -ENOMEM;
	}
	return 0;
}

int config_to_json(const struct vm_config *cfg, const struct devices_config *dc,
		   enum config_view view, struct json_object *o)
{
	unsigned int want = view == CONFIG_VIEW_INFO ? IN_INFO : IN_SNAP;
	bool bad = false;

	for (size_t i = 0; i < config_nfields; i++) {
		const struct field *f = &config_fields[i];
		struct json_object *j;

		if (!(f->in & want))
			continue;
		j = field_json(cfg, f, view, &bad);
		/* info shows an unset string as null; the snapshot leaves it out. */
		if ((j || view == CONFIG_VIEW_INFO) && json_object_object_add(o, f->key, j)) {
			json_object_put(j);
			bad = true;
		}
	}
	if (view == CONFIG_VIEW_SNAPSHOT && devices_json(dc ? dc : &cfg->devices, o))
		bad = true;
	return bad ? -ENOMEM : 0;
}

/* Append word to the synopsis in buf, wrapping at 92 columns. */
static void usage_word(char *buf, size_t len, size_t *n, size_t *col, const char *word)
{
	static const char indent[] = "\n                  ";
	size_t w = strlen(word);

	if (*col + 1 + w > 92) {
		*n += (size_t)snprintf(buf + *n, len - *n, "%s", indent);
		*col = sizeof(indent) - 2;
	} else {
		*n += (size_t)snprintf(buf + *n, len - *n, " ");
		(*col)++;
	}
	*n = *n < len ? *n : len - 1;
	*n += (size_t)snprintf(buf + *n, len - *n, "%s", word);
	*n = *n < len ? *n : len - 1;
	*col += w;
}

const char *config_usage(char *buf, size_t len)
{
	unsigned int nt;
	const struct device_type *t = devices_table(&nt);
	size_t n = (size_t)snprintf(buf, len, "usage: cvisor run"), col = n;
	char word[96];

	for (size_t i = 0; i < config_nfields; i++)
		if (config_fields[i].usage)
			usage_word(buf, len, &n, &col, config_fields[i].usage);
	for (unsigned int i = 0; i < nt; i++) {
		if (t[i].arg)
			snprintf(word, sizeof(word), "[--%s %s]%s", t[i].key, t[i].arg,
				 t[i].max > 1 ? "..." : "");
		else
			snprintf(word, sizeof(word), "[--%s]", t[i].key);
		usage_word(buf, len, &n, &col, word);
	}
	return buf;
}
