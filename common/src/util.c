#include "common/util.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

static void oom(size_t n)
{
	fprintf(stderr, "{\"level\":\"fatal\",\"msg\":\"out of memory\",\"bytes\":%zu}\n", n);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *xcalloc(size_t count, size_t n)
{
	void *p = calloc(count ? count : 1, n ? n : 1);
	if (!p)
		oom(count * n);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

void *xgrow(void *p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return p;
	size_t n = *cap ? *cap * 2 : 16;
	if (n < need)
		n = need;
	*cap = n;
	return xrealloc(p, n * elem);
}

char *xstrdup(const char *s)
{
	if (!s)
		return NULL;
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static int64_t clock_us(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t mono_us(void)
{
	return clock_us(CLOCK_MONOTONIC);
}
int64_t mono_ms(void)
{
	return clock_us(CLOCK_MONOTONIC) / 1000;
}
int64_t wall_us(void)
{
	return clock_us(CLOCK_REALTIME);
}

char *time_iso8601(int64_t us, char *buf, size_t len)
{
	time_t secs = (time_t)(us / 1000000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	char base[24];
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03dZ", base, (int)((us % 1000000) / 1000));
	return buf;
}

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)**p))
			return -1;
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	*out = v;
	return 0;
}

int time_parse_iso8601(const char *s, int64_t *out_us)
{
	int Y, M, D, h, m, sec;
	const char *p = s;
	if (!s || digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) || *p++ != '-' ||
	    digits(&p, 2, &D) || (*p != 'T' && *p != 't' && *p != ' '))
		return -1;
	p++;
	if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &m) || *p++ != ':' ||
	    digits(&p, 2, &sec))
		return -1;
	if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return -1;
	int64_t frac_us = 0;
	if (*p == '.') {
		p++;
		int nd = 0;
		int64_t scale = 100000;
		while (isdigit((unsigned char)*p)) {
			if (nd < 6)
				frac_us += (*p - '0') * scale;
			scale /= 10;
			nd++;
			p++;
		}
		if (nd == 0)
			return -1;
	}
	int off_min = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, oh, om;
		if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
			return -1;
		off_min = sign * (oh * 60 + om);
	} else {
		return -1;
	}
	if (*p != '\0')
		return -1;
	struct tm tm = {.tm_year = Y - 1900,
	                .tm_mon = M - 1,
	                .tm_mday = D,
	                .tm_hour = h,
	                .tm_min = m,
	                .tm_sec = sec};
	time_t t = timegm(&tm);
	/* timegm normalises 31 February into March: refuse dates that moved. */
	struct tm back;
	gmtime_r(&t, &back);
	if (back.tm_mday != D && sec != 60)
		return -1;
	*out_us = ((int64_t)t - (int64_t)off_min * 60) * 1000000 + frac_us;
	return 0;
}

int user_id_valid(const char *s)
{
	if (!s)
		return 0;
	size_t n = 0;
	for (const char *p = s; *p; p++, n++) {
		unsigned char c = (unsigned char)*p;
		if (n >= USER_ID_MAX)
			return 0;
		if (!(isalnum(c) || c == '.' || c == '_' || c == '@' || c == ':' || c == '-'))
			return 0;
	}
	return n > 0;
}

void uuid_new(char out[UUID_STR_LEN])
{
	uuid_t u;
	uuid_generate_random(u);
	uuid_unparse_lower(u, out);
}

int uuid_valid(const char *s)
{
	if (!s || strlen(s) != 36)
		return 0;
	uuid_t u;
	return uuid_parse(s, u) == 0;
}

void signals_take_over(sigset_t *stop)
{
	sigemptyset(stop);
	sigaddset(stop, SIGTERM);
	sigaddset(stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, stop, NULL);
	signal(SIGPIPE, SIG_IGN);
}
