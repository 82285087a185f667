/* config_priv.h - the field table of config.c, which config_out.c writes
 * out (the snapshot's CONFIG, `cvisor info`, the usage synopsis). */
#ifndef CVISOR_CONFIG_PRIV_H
#define CVISOR_CONFIG_PRIV_H

#include <stddef.h>

#include "cvisor/config.h"

/* Setters shared by the flags, the file and the snapshot: `what` is
 * "--memory" for a flag and "FILE: memory" for a key, so that messages
 * name either. -EINVAL or -ENOMEM with e filled. */
typedef int (*setter_fn)(struct vm_config *cfg, const char *what, const char *v,
			 struct cv_error *e);

/* How a field is stored in struct vm_config and written out. */
enum ftype {
	F_STR,	 /* char *, NULL when unset */
	F_CHARS, /* char[]: the command line */
	F_UINT,	 /* unsigned int; an integer in JSON */
	F_SIZE,	 /* uint64_t bytes; a size string or a number of MiB in JSON */
	F_BOOL,	 /* bool; true or false in JSON, a flag without value */
	F_ENUM,	 /* an enum, by the names in `names` */
};

/* Where a field appears, besides the command line. */
#define IN_FILE 1u /* a config file key */
#define IN_SNAP 2u /* the snapshot's CONFIG */
#define IN_INFO 4u /* `cvisor info` */

struct field {
	const char *key;   /* the config key; the flag is --KEY with '-' for '_' */
	const char *usage; /* in the synopsis, or NULL */
	enum ftype type;
	size_t off;		  /* in struct vm_config */
	setter_fn set;		  /* not for F_BOOL (a flag) or F_ENUM (set from names) */
	const char *const *names; /* F_ENUM */
	unsigned int in;
};

/* The table (config.c), in the order of the synopsis and the JSON. */
extern const struct field config_fields[];
extern const size_t config_nfields;

#define FIELD(cfg, f, type) ((type *)((char *)(cfg) + (f)->off))
#define CFIELD(cfg, f, type) ((const type *)((const char *)(cfg) + (f)->off))

#endif
