/* broker: the harness's Apache Kafka cluster (tools/kafka/cluster.sh, started by
 * run-tests.sh in $KAFKA_DIR) as tests see it: topics created with a chosen
 * partition count (the broker creates none by itself), and its nodes crashed,
 * frozen and restarted on their own log dirs. Nodes are numbered from 1. */
#ifndef TASKSYNC_TEST_BROKER_H
#define TASKSYNC_TEST_BROKER_H

#include <sys/types.h>

/* Creates topic with partitions partitions on $KAFKA_BROKERS (replication factor:
 * the node count, at most 3) and waits until its metadata shows every partition
 * with a leader. Fails the test on error. */
void broker_create_topic(const char *topic, int partitions);

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
/* The node id that leads partition of topic (-1 when none does). */
int broker_leader(const char *topic, int partition);

/* A guard for a test that takes a node away: a child process that, when the test
 * process ends however it ends, thaws node i and starts it if it is not running, so
 * the next test finds the cluster whole. Idempotent per test process. */
void broker_guard(int node);

#endif
