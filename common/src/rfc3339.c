#include "common/rfc3339.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

const char *rfc3339_strerror(int code)
{
	switch (code) {
	case RFC3339_OK:
		return "ok";
	case RFC3339_ERR_SYNTAX:
		return "not an RFC 3339 date-time";
	case RFC3339_ERR_DATE:
		return "date or time field out of range";
	case RFC3339_ERR_RANGE:
		return "outside years 0000..9999";
	case RFC3339_ERR_BUFFER:
		return "buffer too small";
	}
	return "unknown";
}

/* Floor division and its non-negative remainder (C's / truncates toward zero). */
static int64_t floor_div(int64_t a, int64_t b, int64_t *rem)
{
	int64_t q = a / b, r = a % b;
	if (r < 0) {
		q--;
		r += b;
	}
	*rem = r;
	return q;
}

int rfc3339_format(int64_t us, rfc3339_precision p, char *buf, size_t len)
{
	if (!buf || len < RFC3339_LEN) {
		if (buf && len)
			buf[0] = '\0';
		return RFC3339_ERR_BUFFER;
	}
	buf[0] = '\0';
	if (us < RFC3339_MIN_US || us > RFC3339_MAX_US)
		return RFC3339_ERR_RANGE;
	int64_t frac;
	time_t secs = (time_t)floor_div(us, 1000000, &frac);
	struct tm tm;
	if (!gmtime_r(&secs, &tm))
		return RFC3339_ERR_RANGE;
	/* %Y does not pad years below 1000; the year is written by hand, the rest by
	 * strftime. */
	char rest[16];
	if (strftime(rest, sizeof(rest), "-%m-%dT%H:%M:%S", &tm) == 0)
		return RFC3339_ERR_BUFFER;
	int n;
	if (p == RFC3339_EXACT && frac % 1000 != 0)
		n = snprintf(buf, len, "%04d%s.%06dZ", tm.tm_year + 1900, rest, (int)frac);
	else
		n = snprintf(buf, len, "%04d%s.%03dZ", tm.tm_year + 1900, rest, (int)(frac / 1000));
	return n;
}

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (**p < '0' || **p > '9')
			return -1;
		v = v * 10 + (**p - '0');
		(*p)++;
	}
	*out = v;
	return 0;
}

int rfc3339_parse(const char *s, int64_t *out_us)
{
	int Y, M, D, h, m, sec;
	const char *p = s;
	if (!s || digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) || *p++ != '-' ||
	    digits(&p, 2, &D) || (*p != 'T' && *p != 't' && *p != ' '))
		return RFC3339_ERR_SYNTAX;
	p++;
	if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &m) || *p++ != ':' ||
	    digits(&p, 2, &sec))
		return RFC3339_ERR_SYNTAX;
	int64_t frac_us = 0;
	if (*p == '.') {
		p++;
		int nd = 0;
		int64_t scale = 100000;
		while (*p >= '0' && *p <= '9') {
			if (nd < 6)
				frac_us += (*p - '0') * scale;
			scale /= 10;
			nd++;
			p++;
		}
		if (nd == 0)
			return RFC3339_ERR_SYNTAX;
	}
	int off_min = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, oh, om;
		if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om))
			return RFC3339_ERR_SYNTAX;
		if (oh > 23 || om > 59)
			return RFC3339_ERR_DATE;
		off_min = sign * (oh * 60 + om);
	} else {
		return RFC3339_ERR_SYNTAX;
	}
	if (*p != '\0')
		return RFC3339_ERR_SYNTAX;
	if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return RFC3339_ERR_DATE;
	struct tm tm = {.tm_year = Y - 1900,
	                .tm_mon = M - 1,
	                .tm_mday = D,
	                .tm_hour = h,
	                .tm_min = m,
	                .tm_sec = sec};
	time_t t = timegm(&tm);
	/* timegm normalises 31 February into March: refuse dates that moved (a leap
	 * second, :60, moves into the next minute and is accepted as such). */
	struct tm back;
	if (!gmtime_r(&t, &back) || (back.tm_mday != D && sec != 60))
		return RFC3339_ERR_DATE;
	int64_t us = ((int64_t)t - (int64_t)off_min * 60) * 1000000 + frac_us;
	if (us < RFC3339_MIN_US || us > RFC3339_MAX_US)
		return RFC3339_ERR_RANGE;
	*out_us = us;
	return RFC3339_OK;
}

char *time_iso8601(int64_t us, char *buf, size_t len)
{
	if (rfc3339_format(us, RFC3339_MS, buf, len) < 0 && buf && len)
		buf[0] = '\0';
	return buf;
}

int time_parse_iso8601(const char *s, int64_t *out_us)
{
	return rfc3339_parse(s, out_us) == RFC3339_OK ? 0 : -1;
}
