#include "proc.h"

#include "common/util.h"
#include "http_client.h"
#include "runner.h"

#include <arpa/inet.h>
#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* 1 when a socket can bind 127.0.0.1:port (nothing holds it now). */
static int bindable(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		return 0;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)); /* as the services do */
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* 1 when port is one of $KAFKA_BROKERS' (free while a test has a broker down). */
static int broker_port(int port)
{
	const char *b = getenv("KAFKA_BROKERS");
	char want[16];
	snprintf(want, sizeof(want), ":%d", port);
	size_t n = strlen(want);
	for (const char *q = b; q && (q = strstr(q, want)); q += n)
		if (q[n] == '\0' || q[n] == ',')
			return 1;
	return 0;
}

/* Below the kernel's ephemeral range, as tools/lib.sh's free_port: a port from
 * that range (what bind to port 0 gives) can be taken by any outgoing connection
 * between the pick and the service's bind, and the service then fails to start. */
int free_port(void)
{
	int lo = 32768, hi;
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	if (f) {
		if (fscanf(f, "%d %d", &lo, &hi) != 2)
			lo = 32768;
		fclose(f);
	}
	if (lo <= 12000)
		lo = 32768;
	static unsigned seed;
	static pid_t seeded_in; /* each forked test draws its own ports */
	if (seeded_in != getpid()) {
		seeded_in = getpid();
		seed = (unsigned)getpid() ^ (unsigned)mono_ms();
	}
	for (int i = 0; i < 200; i++) {
		int p = 10000 + (int)(rand_r(&seed) % (unsigned)(lo - 10000));
		if (bindable(p) && !broker_port(p))
			return p;
	}
	return -1;
}

static const char *run_dir(void)
{
	const char *d = getenv("TEST_RUN_DIR");
	return d && *d ? d : "/tmp";
}

static void apply_env(const char *const *env)
{
	for (size_t i = 0; env && env[i]; i++) {
		const char *eq = strchr(env[i], '=');
		if (!eq)
			continue;
		char *name = xstrndup(env[i], (size_t)(eq - env[i]));
		setenv(name, eq + 1, 1);
		free(name);
	}
}

/* Forks bin; the child gets env, its output in log and dies with the parent. */
static pid_t spawn(const char *bin, const char *const *args, const char *const *env,
                   const char *log)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	apply_env(env);
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
	const char *argv[32] = {bin};
	size_t n = 1;
	for (size_t i = 0; args && args[i] && n < ARRAY_LEN(argv) - 1; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	execv(bin, (char *const *)argv);
	_exit(127);
}

void proc_start(proc *p, const char *bin, const char *const *args, const char *const *env,
                const char *wait_path, int wait_status)
{
	static int seq;
	memset(p, 0, sizeof(*p));
	p->port = free_port();
	ck_assert_int_gt(p->port, 0);
	const char *base = strrchr(bin, '/') ? strrchr(bin, '/') + 1 : bin;
	snprintf(p->log, sizeof(p->log), "%s/%s-%d-%d-%d.log", run_dir(), base, (int)getpid(),
	         ++seq, p->port);
	size_t ne = 0;
	while (env && env[ne])
		ne++;
	const char **all = xcalloc(ne + 2, sizeof(*all));
	char port[32];
	snprintf(port, sizeof(port), "PORT=%d", p->port);
	all[0] = port;
	for (size_t i = 0; i < ne; i++)
		all[i + 1] = env[i];
	pid_t pid = spawn(bin, args, all, p->log);
	free(all);
	ck_assert_int_gt(pid, 0);
	p->pid = pid;
	if (!wait_path)
		return;
	int64_t deadline = mono_ms() + 60000;
	for (;;) {
		char *body = NULL;
		int st = http_get(p->port, wait_path, &body);
		free(body);
		if (st >= 0 && (wait_status == 0 || st == wait_status))
			return;
		if (!proc_alive(p))
			ck_abort_msg("%s exited during start-up (log %s)", base, p->log);
		if (mono_ms() > deadline) {
			proc_kill(p);
			ck_abort_msg("%s: %s not %d within 60 s (last %d; log %s)", base, wait_path,
			             wait_status, st, p->log);
		}
		usleep(50000);
	}
}

static int wait_exit(pid_t pid, int timeout_ms, int *ws)
{
	int64_t deadline = mono_ms() + timeout_ms;
	for (;;) {
		pid_t r = waitpid(pid, ws, WNOHANG);
		if (r == pid)
			return 1;
		if (r < 0)
			return -1;
		if (mono_ms() > deadline)
			return 0;
		usleep(10000);
	}
}

int proc_stop(proc *p, long *ms)
{
	if (p->pid <= 0)
		return -1;
	int64_t t0 = mono_ms();
	kill(p->pid, SIGTERM);
	int ws = 0, rc = -1;
	int r = wait_exit(p->pid, 20000, &ws);
	if (r == 1)
		rc = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
	else if (r == 0) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &ws, 0);
	}
	if (ms)
		*ms = (long)(mono_ms() - t0);
	p->pid = 0;
	return rc;
}

void proc_kill(proc *p)
{
	if (p->pid <= 0)
		return;
	kill(p->pid, SIGKILL);
	waitpid(p->pid, NULL, 0);
	p->pid = 0;
}

int proc_alive(proc *p)
{
	if (p->pid <= 0)
		return 0;
	int ws;
	pid_t r = waitpid(p->pid, &ws, WNOHANG);
	if (r == p->pid || r < 0) {
		p->pid = 0;
		return 0;
	}
	return 1;
}

int proc_run(const char *bin, const char *const *args, const char *const *env, const char *log,
             int timeout_ms)
{
	char def[512];
	if (!log) {
		snprintf(def, sizeof(def), "%s/run.log", run_dir());
		log = def;
	}
	pid_t pid = spawn(bin, args, env, log);
	if (pid < 0)
		return -1;
	int ws = 0;
	int r = wait_exit(pid, timeout_ms, &ws);
	if (r != 1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
}

char *read_text_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return xstrdup("");
	size_t cap = 65536, len = 0;
	char *b = xmalloc(cap);
	size_t r;
	while ((r = fread(b + len, 1, cap - len - 1, f)) > 0) {
		len += r;
		if (cap - len < 4096)
			b = xrealloc(b, cap *= 2);
	}
	fclose(f);
	b[len] = 0;
	return b;
}
