/* broker: the harness's Apache Kafka cluster (tools/kafka/cluster.sh, started by
 * run-tests.sh in $KAFKA_DIR) as processes: its nodes crashed, frozen and restarted
 * on their own log dirs. Nodes are numbered from 1. Topics and leaders, which a
 * Kafka client sees, are in kafka_io.h. */
#ifndef TASKSYNC_TEST_BROKER_H
#define TASKSYNC_TEST_BROKER_H

#include <sys/types.h>

/* The number of nodes of the harness cluster ($KAFKA_NODES). */
int broker_nodes(void);
/* The PID of node i (fails the test when it has none). */
pid_t broker_pid(int node);
/* SIGKILL node i and wait for its exit: a crash. */
void broker_kill(int node);
/* SIGSTOP / SIGCONT node i: a stall (the sockets stay open, nothing answers). */
void broker_freeze(int node);
void broker_thaw(int node);
/* (Re)starts node i on its log dirs and waits until it says it has started. */
void broker_start(int node);
/* Runs `tools/kafka/cluster.sh VERB DIR [NODE]` (node 0: none) when this test
 * process ends, however it ends (a failed assertion, Check's timeout, a crash): a
 * child in a session of its own waiting for EOF on a pipe only this process
 * writes. Its output goes to DIR/guard.log. */
void broker_on_exit(const char *verb, const char *dir, int node);
/* A guard for a test that takes node i of the harness's cluster away:
 * broker_on_exit("heal", $KAFKA_DIR, i), so the next test finds the cluster whole.
 * Idempotent per test process. */
void broker_guard(int node);

#endif
