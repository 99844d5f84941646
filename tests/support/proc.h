/* proc: runs a service binary as a child of the test on a free loopback port, with
 * its log in $TEST_RUN_DIR, and stops it by pid. The child dies with the test
 * process (PR_SET_PDEATHSIG), even when a failed assertion ends the test. */
#ifndef TASKSYNC_TEST_PROC_H
#define TASKSYNC_TEST_PROC_H

#include <sys/types.h>

typedef struct proc {
	pid_t pid;     /* 0 when not running */
	int port;      /* the PORT it was given */
	char log[512]; /* stdout and stderr of the child */
} proc;

/* A TCP port on 127.0.0.1 nothing listens on (-1 on error). */
int free_port(void);

/* Starts bin (a path) with argv args (NULL-terminated, may be NULL) and the
 * environment of the test plus PORT=<free port> plus env ("NAME=value",
 * NULL-terminated, may be NULL; later entries win). When wait_path is not NULL,
 * waits up to 60 s until GET wait_path answers wait_status (0: any HTTP answer);
 * fails the test with the log's path when the child exits first or the time runs
 * out. */
void proc_start(proc *p, const char *bin, const char *const *args, const char *const *env,
                const char *wait_path, int wait_status);
/* SIGTERM, wait up to 20 s (then SIGKILL). Returns the exit status (-1 when killed
 * by a signal) and the time it took in *ms (may be NULL). No-op (-1) when not
 * running. */
int proc_stop(proc *p, long *ms);
/* SIGKILL and reap. */
void proc_kill(proc *p);
/* 1 while the child has not exited (reaps it when it has). */
int proc_alive(proc *p);
/* Runs bin with args and env to completion (at most timeout_ms, then SIGKILL);
 * output appended to log (may be NULL: $TEST_RUN_DIR/run.log). Returns the exit
 * status, -1 when killed. */
int proc_run(const char *bin, const char *const *args, const char *const *env, const char *log,
             int timeout_ms);

/* The full text of a file (caller frees; "" when unreadable). */
char *read_text_file(const char *path);

#endif
