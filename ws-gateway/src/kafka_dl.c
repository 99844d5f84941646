/* The table is filled through the real names: the renaming macros stay off here. */
#define KAFKA_DL_NO_RENAME
#include "kafka_dl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

kafka_dl kafka_api;

static pthread_mutex_t load_mu = PTHREAD_MUTEX_INITIALIZER;
static int loaded;

int kafka_dl_load(char *err, size_t errlen)
{
	int rc = -1;
	pthread_mutex_lock(&load_mu);
	if (loaded) {
		rc = 0;
		goto out;
	}
	/* Never closed: librdkafka's threads may outlive any owner we could name. */
	void *h = dlopen("librdkafka.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(err, errlen, "could not load librdkafka: %s", dlerror());
		goto out;
	}
	kafka_dl t;
	memset(&t, 0, sizeof(t));
	/* dlsym returns void *; the copy through memcpy avoids the object-to-function
	 * pointer conversion ISO C leaves undefined (POSIX guarantees it works). */
#define KAFKA_DL_RESOLVE(f)                                                                        \
	{                                                                                          \
		void *p = dlsym(h, #f);                                                            \
		if (!p) {                                                                          \
			snprintf(err, errlen, "librdkafka has no %s", #f);                         \
			goto out;                                                                  \
		}                                                                                  \
		memcpy(&t.f, &p, sizeof(p));                                                       \
	}
	KAFKA_DL_FUNCS(KAFKA_DL_RESOLVE)
#undef KAFKA_DL_RESOLVE
	kafka_api = t;
	loaded = 1;
	rc = 0;
out:
	pthread_mutex_unlock(&load_mu);
	return rc;
}
