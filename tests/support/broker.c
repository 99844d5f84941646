#include "broker.h"

#include "common/util.h"
#include "proc.h"
#include "runner.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *cluster_sh(void)
{
	static char path[1024];
	snprintf(path, sizeof(path), "%s/tools/kafka/cluster.sh", test_env("TASKSYNC_ROOT"));
	return path;
}

int broker_nodes(void)
{
	long n = strtol(test_env("KAFKA_NODES"), NULL, 10);
	ck_assert_msg(n >= 1 && n <= 9, "KAFKA_NODES=%s", test_env("KAFKA_NODES"));
	return (int)n;
}

pid_t broker_pid(int node)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/node-%d/pid", test_env("KAFKA_DIR"), node);
	char *s = read_text_file(path);
	long pid = strtol(s, NULL, 10);
	free(s);
	ck_assert_msg(pid > 0, "kafka node %d has no pid (%s)", node, path);
	return (pid_t)pid;
}

void broker_kill(int node)
{
	pid_t pid = broker_pid(node);
	ck_assert_int_eq(kill(pid, SIGKILL), 0);
	/* not our child: wait until it is gone */
	for (int64_t end = mono_ms() + 10000; kill(pid, 0) == 0 && mono_ms() < end;)
		usleep(20000);
	ck_assert_msg(kill(pid, 0) != 0, "kafka node %d (%d) survived SIGKILL", node, (int)pid);
}

void broker_freeze(int node)
{
	ck_assert_int_eq(kill(broker_pid(node), SIGSTOP), 0);
}

void broker_thaw(int node)
{
	ck_assert_int_eq(kill(broker_pid(node), SIGCONT), 0);
}

void broker_start(int node)
{
	char n[16], log[1024];
	snprintf(n, sizeof(n), "%d", node);
	snprintf(log, sizeof(log), "%s/kafka-restart.log", test_env("TEST_RUN_DIR"));
	const char *args[] = {cluster_sh(), "start", test_env("KAFKA_DIR"), n, NULL};
	int rc = proc_run("/bin/bash", args, NULL, log, 180000);
	ck_assert_msg(rc == 0, "could not restart kafka node %d (see %s)", node, log);
}

void broker_on_exit(const char *verb, const char *dir, int node)
{
	char n[16], log[1024];
	snprintf(n, sizeof(n), "%d", node);
	snprintf(log, sizeof(log), "%s/guard.log", dir);
	const char *sh = cluster_sh();
	int fds[2];
	ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* A session of its own: Check kills the test's process group when the
		 * test ends, and the guard must outlive it. When the test process ends,
		 * however it ends, the pipe's only writer is gone. O_CLOEXEC keeps the
		 * services the test starts from holding it. */
		(void)setsid();
		close(fds[1]);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		char c;
		ssize_t r;
		while ((r = read(fds[0], &c, 1)) > 0 || (r < 0 && errno == EINTR))
			;
		execl("/bin/bash", "bash", sh, verb, dir, node > 0 ? n : (char *)NULL,
		      (char *)NULL);
		_exit(127);
	}
	close(fds[0]);
	/* fds[1] stays open (and leaks on purpose) for the life of the test process. */
}

void broker_guard(int node)
{
	static int guarded[16];
	ck_assert(node >= 1 && node < 16);
	if (guarded[node])
		return;
	broker_on_exit("heal", test_env("KAFKA_DIR"), node);
	guarded[node] = 1;
}
